"""The conftest of the report tests' pytester directory (copied there as text).

It replaces the catalogue by a few policies with the real IDs and makes two
running machines out of nothing: ``192.0.2.10`` is a well-prepared image whose
checks all pass, ``192.0.2.20`` one that breaks SSH-PASSWORD and AWS-KEYS and
whose UPDATES check cannot decide. Opening a target and gathering its facts
are replaced; the plugin's own runtime, items and reports run as they are.

Never import it into the project's own session: it replaces the catalogue.
"""

from __future__ import annotations

import logging
from typing import Any

from pytest_amipolicy import catalogue, runtime
from pytest_amipolicy.facts import Facts, Section
from pytest_amipolicy.targets import Connection
from pytest_amipolicy.targets.host import HostTarget
from pytest_amipolicy.verdicts import Evidence, Outcome, Verdict, failed, passed

GOOD = "192.0.2.10"
BAD = "192.0.2.20"

# Strings a leaky check could put in its evidence; the tests' amipolicy_redact
# removes the first two, the plugin always removes the key.
PLANTED_SECRET = "PLANTED-SECRET-7f3a9c"
ACCOUNT_ID = "123456789012"
# Shaped like an AWS access key id, which the plugin always removes.
ACCESS_KEY_ID = "AKIAZ3MPLESCENAR1O7Q"
PRIVATE_KEY = (
    "-----BEGIN OPENSSH PRIVATE KEY-----\n"
    "b3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQAAAAAAAAABAAAAMwAAAAtzc2gtZW\n"
    "-----END OPENSSH PRIVATE KEY-----"
)

# Longer than an evidence output is trimmed to (4000 characters): it must be
# redacted whole before the cut, never cut first.
LONG_KEY_LINE = "QkxPTkct" * 8
LONG_PRIVATE_KEY = (
    "-----BEGIN RSA PRIVATE KEY-----\n"
    + "\n".join(f"{number:04d}{LONG_KEY_LINE[4:]}" for number in range(96))
    + "\n-----END RSA PRIVATE KEY-----\n"
)

IMAGES = {
    GOOD: {
        "ImageId": "ami-0a1b2c3d4e5f60718",
        "Name": "acme-appliance-2.4.1",
        "OwnerId": ACCOUNT_ID,
        "CreationDate": "2025-05-02T09:14:00.000Z",
        "Architecture": "x86_64",
    },
    BAD: {
        "ImageId": "ami-0f9e8d7c6b5a40312",
        "Name": "acme-appliance-2.4.0-rc1",
        "OwnerId": ACCOUNT_ID,
        "CreationDate": "2025-04-11T16:40:00.000Z",
        "Architecture": "x86_64",
    },
}
INSTANCES = {GOOD: "i-0c0ffee0c0ffee001", BAD: "i-0badc0de0badc0de2"}

OS_RELEASE = 'PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"\nNAME="Debian GNU/Linux"\n'

catalogue.FAMILY_MODULES = ()


def _address(facts: Facts) -> str:
    return facts.target.rsplit("@", 1)[-1]


def _sshd(facts: Facts) -> Evidence:
    value = "yes" if _address(facts) == BAD else "no"
    return Evidence(
        label="effective sshd settings",
        command="sudo sshd -T -C user=root,host=scanner,addr=198.51.100.7",
        output=f"passwordauthentication {value}\nkbdinteractiveauthentication no\n"
        "permitemptypasswords no",
    )


@catalogue.policy(
    "AMI-ARCH",
    family="ami",
    platforms=("ami",),
    summary="The architecture is x86_64 or arm64.",
    remediation="Build the image for x86_64 or arm64.",
)
def ami_arch(facts: Facts) -> Outcome:
    return passed("x86_64")


@catalogue.policy(
    "SSH-PASSWORD",
    family="ssh",
    platforms=("linux",),
    summary="sshd allows no password login.",
    remediation="Set 'PasswordAuthentication no' in /etc/ssh/sshd_config and "
    "in every Match block, then rebuild the image.",
)
def ssh_password(facts: Facts) -> Outcome:
    evidence = _sshd(facts)
    if _address(facts) == BAD:
        return failed(
            "sshd accepts passwords for every user",
            evidence,
            Evidence(
                label="the setting comes from",
                source="/etc/ssh/sshd_config.d/50-cloud-init.conf:1",
                output="PasswordAuthentication yes",
            ),
            findings=("PasswordAuthentication yes (global)",),
        )
    return passed("PasswordAuthentication no", evidence)


@catalogue.policy(
    "SSH-ROOT",
    family="ssh",
    platforms=("linux",),
    summary="root cannot log in with a password.",
    remediation="Set 'PermitRootLogin prohibit-password'.",
)
def ssh_root(facts: Facts) -> Outcome:
    return passed("PermitRootLogin without-password", _sshd(facts))


@catalogue.policy(
    "AWS-KEYS",
    family="secrets",
    platforms=("linux",),
    summary="No AWS access keys on disk; access comes from an instance role.",
    remediation="Delete the key file, rotate the key in IAM and give the "
    "instance a role instead.",
)
def aws_keys(facts: Facts) -> Outcome:
    if _address(facts) == BAD:
        # What testinfra logs at debug level: the repr of a command's output,
        # where a tab before the key id reads "\\tAKIA...".
        logging.getLogger("testinfra").debug(
            "RUN %r", f"aws-access-key-id\t{ACCESS_KEY_ID}\t{PLANTED_SECRET}"
        )

        # A careless check that leaks what it found; the report must not.
        return failed(
            "an AWS access key is stored on disk",
            Evidence(
                label="credentials file",
                command="sudo grep -rIl aws_access_key_id /root /home /etc",
                output=f"/root/.aws/credentials\n# written by <provisioner> & co\n"
                f"aws_secret_access_key = {PLANTED_SECRET}\n"
                f"role_arn = arn:aws:iam::{ACCOUNT_ID}:role/build\n{PRIVATE_KEY}",
            ),
            Evidence(
                label="a key file next to it",
                command="sudo cat /root/.ssh/id_rsa",
                output=LONG_PRIVATE_KEY,
            ),
            findings=(
                "aws access key at /root/.aws/credentials:2, fingerprint "
                "sha256:4be1c9a0e2",
            ),
        )
    return passed("no AWS key found in 3 places searched")


@catalogue.policy(
    "UPDATES",
    family="system",
    platforms=("linux",),
    summary="No security updates are pending.",
    remediation="Run the package manager's upgrade and rebuild the image.",
)
def updates(facts: Facts) -> Outcome:
    if _address(facts) == BAD:
        return Outcome(
            Verdict.ERROR,
            "apt could not reach its mirrors; pending updates are unknown",
            (
                Evidence(
                    label="apt-get update",
                    command="sudo apt-get update",
                    output="Err:1 http://deb.debian.org/debian bookworm InRelease\n"
                    "  Temporary failure resolving 'deb.debian.org'",
                ),
            ),
        )
    return passed("0 security updates pending")


@catalogue.policy(
    "WIN-GUEST",
    family="windows",
    platforms=("windows",),
    summary="The built-in guest account is disabled.",
    remediation="Disable the guest account.",
)
def win_guest(facts: Facts) -> Outcome:
    return passed("disabled")


@catalogue.policy(
    "MANUAL-CONSENT",
    family="manual",
    platforms=("manual",),
    summary="No customer registration or data collection without consent.",
    remediation="Confirm the software collects nothing about the buyer unasked.",
)
def manual_consent(facts: Facts) -> Outcome:
    return Outcome(Verdict.MANUAL, "only a person can confirm this")


@catalogue.policy(
    "MANUAL-LIMITS",
    family="manual",
    platforms=("manual",),
    summary="No time or user limits on the software.",
    remediation="Confirm the product has no trial period or seat limit.",
)
def manual_limits(facts: Facts) -> Outcome:
    return Outcome(Verdict.MANUAL, "only a person can confirm this")


def _open(self: HostTarget, progress: Any) -> Connection:
    address = self.label.rsplit("@", 1)[-1]
    return Connection(
        host=None,
        platform="linux",
        login_user="admin",
        details={
            "instance_id": INSTANCES[address],
            "instance_type": "t3.micro",
            "image": IMAGES[address],
            "region": "us-east-1",
        },
    )


def _gather(run: Any, progress: Any) -> Facts:
    facts = Facts(target=run.label, platform="linux", login_user="admin")
    facts.sections["os-release"] = Section(
        "os-release", "cat /etc/os-release", 0, OS_RELEASE
    )
    facts.remote_commands = 2
    return facts


HostTarget.open = _open  # type: ignore[method-assign]
runtime.gather_facts = _gather
