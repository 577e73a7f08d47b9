"""The exceptions the plugin raises for problems with a target or the cloud.

Anything the user can fix on the command line is a ``pytest.UsageError`` raised
while options are validated; everything that goes wrong later derives from
:class:`AmiPolicyError`, so one ``except`` catches the plugin's own failures.
"""

from __future__ import annotations


class AmiPolicyError(Exception):
    """Base class of every error the plugin raises after option validation."""


class TargetError(AmiPolicyError):
    """A target could not be prepared, reached or logged into.

    The message names the target and says what to do; it is shown as one line.
    """

    def __init__(self, target: str, message: str) -> None:
        super().__init__(f"{target}: {message}")
        self.target = target
        self.message = message


class CloudError(AmiPolicyError):
    """An AWS call failed in a way the user has to act on."""


class ImageError(AmiPolicyError):
    """A local image could not be opened, built or booted."""
