"""Everything the ``--ami`` path asks of AWS, one module per concern.

Only :mod:`pytest_amipolicy.targets.ec2` and the cleanup option use this
package; every call goes through a client made by :mod:`.session`, so errors
reach the user as one line naming the missing permission or the fix.
"""
