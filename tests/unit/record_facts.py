"""Record ``recorded/debian12-root.txt``: linux.sh's real output on a booted image.

Run as root, from the repository, whenever the script's output changes::

    python -m tests.unit.record_facts

It boots the cached Debian 12 test image (built on first use), plants fake
secrets in a directory of its own, runs the fast script through sudo as the
login user with the secrets scan limited to that directory, and writes what
came back. The fakes are made up here; the scan reports them as fingerprints.
"""

from __future__ import annotations

import logging
import shlex
import subprocess
import sys
from pathlib import Path

from pytest_amipolicy.facts import linux
from pytest_amipolicy.imaging.boot import booted
from pytest_amipolicy.imaging.build import build_debian_image
from pytest_amipolicy.targets.ssh import LaunchKey

logger = logging.getLogger(__name__)

RECORDED = Path(__file__).with_name("recorded") / "debian12-root.txt"
PLANT = "/srv/amipolicy-plant"
# Not a key: 300 bytes of base64 in a PEM frame, as the scan recognises one.
FAKE_KEY_BODY = "QUJD" * 75
FAKE_FILES = {
    ".aws/credentials": (
        "[default]\n"
        "aws_access_key_id = AKIAZZZZZZZZZZZZZZZ1\n"
        "aws_secret_access_key = abcdEFGHijklMNOPqrstUVWXyz0123456789ABCD\n"
    ),
    "example.json": (
        '{"AccessKeyId": "AKIAIOSFODNN7EXAMPLE", '
        '"SecretAccessKey": "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"}\n'
    ),
    "id_fake": (
        "-----BEGIN OPENSSH PRIVATE KEY-----\n"
        + "\n".join(FAKE_KEY_BODY[i : i + 70] for i in range(0, 300, 70))
        + "\n-----END OPENSSH PRIVATE KEY-----\n"
    ),
}


def plant(root: Path) -> None:
    for name, text in FAKE_FILES.items():
        path = root / PLANT.lstrip("/") / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)


def record() -> str:
    image = build_debian_image()
    key = LaunchKey()
    try:
        with booted(
            image, login_user="admin", public_key=key.public_line, prepare=plant
        ) as machine:
            command = linux.command_line(
                {"user": "admin", "roots": (PLANT,), "mounts": False}, sudo=True
            )
            ssh = [
                "ssh",
                "-F",
                str(key.ssh_config),
                "-i",
                str(key.path),
                f"admin@{machine.address}",
                command,
            ]
            logger.info("running the fact script: %s", shlex.join(ssh[:-1]))
            run = subprocess.run(ssh, capture_output=True, text=True, timeout=300)
    finally:
        key.remove()

    if run.returncode != 0 or not linux.parse(run.stdout):
        raise SystemExit(f"the fact script failed: {run.stderr.strip()}")
    return run.stdout


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    RECORDED.write_text(record(), encoding="utf-8")
    logger.info("wrote %s", RECORDED)


if __name__ == "__main__":
    sys.exit(main())
