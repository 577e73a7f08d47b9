"""Secret policies: no private keys, credentials or AWS keys left on disk.

The scan runs on the machine and sends back only kind, path, line and a
fingerprint (the first 16 hex digits of the secret's sha256); an AWS access key
ID, which is not secret, is sent as is. AWS's published documentation keys are
recognised here by ID and fingerprint and are not findings.
"""

from __future__ import annotations

import fnmatch
import hashlib

from pytest_amipolicy.catalogue import policy
from pytest_amipolicy.facts import Facts, MissingFact, linux
from pytest_amipolicy.verdicts import Evidence, Outcome, failed, passed, undecided

FAMILY = "secrets"
AWS_KINDS = {
    "aws-access-key-id",
    "aws-secret-access-key",
    "aws-env",
    "aws-credentials-file",
}
HOST_KEY_GLOB = "/etc/ssh/ssh_host_*key"
MAX_SHOWN = 60


def fingerprint(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()[:16]


# The secret halves of the key pairs in AWS documentation and SDK examples.
EXAMPLE_SECRETS = frozenset(
    fingerprint(s)
    for s in (
        "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
        "je7MtGbClwBF/2Zp9Utk/h3yCo8nvbEXAMPLEKEY",
        "wJalrXUtnFEMI/K7MDENG/bPxRfiCYzEXAMPLEKEY",
    )
)


def is_example(finding: linux.Finding) -> bool:
    if finding.key_id and finding.key_id.upper().endswith("EXAMPLE"):
        return True
    return finding.fingerprint in EXAMPLE_SECRETS


def _host_keys(facts: Facts) -> set[str]:
    paths: set[str] = set()
    if facts.has("host-keys"):
        for line in facts.section("host-keys").output.splitlines():
            if line.startswith("hostkey "):
                paths.add(line.split(" ", 3)[-1])
    return paths


def _scan(facts: Facts) -> tuple[list[linux.Finding], bool, list[Evidence]]:
    """All real findings, whether the scan finished, and what was scanned."""
    scan = facts.section("secrets")
    found = linux.findings(scan)
    evidence = [
        Evidence(
            "secrets scan", scan.command, "\n".join(linux.markers(scan, "scanned"))
        )
    ]
    if facts.has("service-env"):
        env = facts.section("service-env")
        found += linux.findings(env)
        evidence.append(
            Evidence("secrets and AWS variables in service environments", env.command)
        )

    host_keys = _host_keys(facts)
    real = [
        f
        for f in found
        if not is_example(f)
        and f.path not in host_keys
        and not fnmatch.fnmatchcase(f.path, HOST_KEY_GLOB)
    ]
    examples = len([f for f in found if is_example(f)])
    if examples:
        evidence.append(
            Evidence(f"{examples} AWS documentation example key(s) ignored")
        )
    return real, scan.status == 0, evidence


def _judge(facts: Facts, kinds: set[str], inside: bool, what: str) -> Outcome:
    try:
        findings, complete, evidence = _scan(facts)
    except MissingFact as error:
        return undecided(f"the secrets scan did not run: {error.why}")

    mine = [f for f in findings if (f.kind in kinds) == inside]
    lines = [f.describe() for f in mine]
    shown = lines[:MAX_SHOWN] + (
        [f"... and {len(lines) - MAX_SHOWN} more"] if len(lines) > MAX_SHOWN else []
    )
    evidence.insert(0, Evidence(f"{what} found", output="\n".join(shown) or "none"))

    if mine:
        first = "; ".join(lines[:3]) + (" ..." if len(lines) > 3 else "")
        return failed(
            f"{len(mine)} {what} found on disk: {first}",
            *evidence,
            findings=tuple(lines),
        )
    if not complete:
        return undecided(
            f"the secrets scan did not finish, and found no {what} so far", *evidence
        )
    return passed(f"no {what} found", *evidence)


@policy(
    "CREDENTIALS",
    family=FAMILY,
    platforms=("linux",),
    summary="no private keys, service credentials or secrets in shell history on disk",
    remediation=(
        "Delete private keys (PEM and PuTTY), tokens, .git-credentials, "
        ".docker/config.json auths, .netrc/.pgpass passwords and shell history "
        "files before creating the image, and take secrets out of service "
        "environments (Environment=, EnvironmentFile=, /etc/default, "
        "/etc/sysconfig); generate keys and fetch secrets at first boot instead."
    ),
)
def check_credentials(facts: Facts) -> Outcome:
    return _judge(facts, AWS_KINDS, False, "credential(s)")


@policy(
    "AWS-KEYS",
    family=FAMILY,
    platforms=("linux",),
    summary="no AWS access keys on disk or in service environments",
    remediation=(
        "Remove AWS keys from files and service environments and give the "
        "instance an IAM role instead."
    ),
)
def check_aws_keys(facts: Facts) -> Outcome:
    return _judge(facts, AWS_KINDS, True, "AWS key(s)")
