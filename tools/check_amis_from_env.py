"""Check the AMIs named in an environment variable, or say why there are none.

The tox environments per OS family call this with the variable that holds
their AMI ids (separated by commas or spaces), for example::

    AMIPOLICY_AMI_UBUNTU=ami-0123456789abcdef0 tox -e ubuntu

With the variable unset or empty, nothing is launched: the reason and the way
to set it are printed and the exit status is 0, so that ``tox`` over every
family passes on a machine without AWS credentials. Arguments after the
variable name go to pytest unchanged.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Sequence

_AMI_ID = re.compile(r"^ami-[0-9a-f]{8,17}$")


def main(argv: Sequence[str]) -> int:
    if not argv or argv[0].startswith("-"):
        sys.stderr.write(
            "usage: check_amis_from_env.py VARIABLE [pytest arguments...]\n"
        )
        return 2

    variable, pytest_args = argv[0], list(argv[1:])
    amis = os.environ.get(variable, "").replace(",", " ").split()

    if not amis:
        # tox names the environment it runs in; outside tox, a generic hint.
        rerun = (
            f"tox -e {os.environ['TOX_ENV_NAME']}"
            if "TOX_ENV_NAME" in os.environ
            else "tox -e <env>"
        )
        sys.stdout.write(
            f"SKIPPED: {variable} is not set, so there is no AMI to check.\n"
            f"  Set it to one or more AMI ids to run this environment, e.g.\n"
            f"  {variable}=ami-0123456789abcdef0 {rerun}\n"
        )
        return 0

    bad = [ami for ami in amis if not _AMI_ID.match(ami)]
    if bad:
        sys.stderr.write(
            f"{variable} holds {', '.join(repr(b) for b in bad)}, which is not an "
            "AMI id (ami- followed by 8 or 17 hex digits).\n"
        )
        return 2

    command = [
        sys.executable,
        "-m",
        "pytest",
        *(f"--ami={ami}" for ami in amis),
        *pytest_args,
    ]
    sys.stdout.write(f"running {' '.join(command[2:])}\n")
    sys.stdout.flush()
    return subprocess.call(command)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
