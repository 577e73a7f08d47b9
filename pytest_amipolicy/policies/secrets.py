"""Secret policies: no private keys, credentials or AWS keys left on disk.

The scan runs on the machine and sends back only kind, path, line and a
fingerprint (the first 16 hex digits of the secret's sha256); an AWS access key
ID, which is not secret, is sent as is. AWS's published documentation keys are
recognised here by ID and fingerprint and are not findings.
"""

from __future__ import annotations

import fnmatch
import hashlib
from collections.abc import Callable

from pytest_amipolicy.catalogue import policy
from pytest_amipolicy.facts import Facts, MissingFact, Section, linux
from pytest_amipolicy.verdicts import Evidence, Outcome, failed, passed, undecided

FAMILY = "secrets"
# The AWS access keys themselves: AWS-KEYS' business alone.
AWS_KEY_KINDS = {"aws-access-key-id", "aws-secret-access-key", "aws-env"}
# AWS's credentials file is a cloud credentials file (CREDENTIALS) that holds
# AWS keys (AWS-KEYS): both report it.
AWS_CREDENTIALS_FILE = "aws-credentials-file"
AWS_KINDS = AWS_KEY_KINDS | {AWS_CREDENTIALS_FILE}
HOST_KEY_GLOB = "/etc/ssh/ssh_host_*key"
MAX_SHOWN = 60
# Directories the scan prunes on every mount (linux.sh, scan_files), in words.
PRUNED = (
    "/proc, /sys, /dev and /run, package lists and caches, documentation that "
    "packages installed, man pages, locales, icons, time zones, headers, kernel "
    "modules and sources, container images and snaps"
)
SERVICE_FILES = (
    "systemd units and drop-ins, their EnvironmentFile= files, /etc/environment, "
    "/etc/default, /etc/sysconfig and /etc/profile.d"
)


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


def counted(number: int, one: str, many: str = "") -> str:
    """``1 key``, ``3 keys``: a count with its noun."""
    return f"{number} {one if number == 1 else (many or one + 's')}"


def scan_summary(scan: Section) -> list[str]:
    """What the secrets scan read and left out, in words, from its markers."""
    said = dict(
        word.split("=", 1)
        for marker in linux.markers(scan, "scanned")
        for word in marker.split()
        if "=" in word
    )
    mounts = [m.partition(" ") for m in linux.markers(scan, "scan-mount")]
    pseudo = [m.partition(" ")[2] for m in linux.markers(scan, "scan-pseudo")]
    roots = linux.markers(scan, "scan-root")
    absent = linux.markers(scan, "scan-root-missing")
    inside = [m.partition(" ")[0] for m in linux.markers(scan, "scan-inside-skipped")]
    volumes = linux.markers(scan, "scan-volumes")
    docs = linux.markers(scan, "scan-doc")
    lines = []

    if mounts:
        read = ", ".join(f"{path} ({kind})" for path, _, kind in mounts)
        lines.append(f"filesystems read: {read}")
    elif said.get("mounts") == "0":
        lines.append("mounted filesystems: not read, only the directories below")
    if pseudo:
        kinds = ", ".join(dict.fromkeys(pseudo))
        lines.append(
            f"skipped: {counted(len(pseudo), 'pseudo-filesystem')} (kernel, "
            f"memory and network filesystems: {kinds})"
        )
    if inside:
        lines.append(
            f"skipped: {counted(len(inside), 'mount')} inside /proc, /sys, /dev or "
            f"/run, such as a container manager's (/run/host): {', '.join(inside)}"
        )
    if mounts:
        lines.append(f"skipped on every filesystem: {PRUNED}")
    if volumes:
        lines.append(f"container volumes read: {', '.join(volumes)}")
    if docs:
        lines.append(f"documentation no package owns, read: {', '.join(docs)}")
    if roots:
        lines.append(f"directories read: {', '.join(roots)}")
    if absent:
        lines.append(f"directories asked for but absent: {', '.join(absent)}")
    lines.append(
        "also read: shell histories and credential files (.git-credentials, "
        ".docker/config.json, .netrc, .pgpass, cloud credentials) of every home "
        "directory; symbolic links are not followed"
    )

    files, examined = said.get("files"), said.get("candidates")
    cap = said.get("max_kb", "?")
    if files is not None:
        lines.append(
            f"{files} files of at most {cap} KiB searched (larger files are not "
            f"read); {examined} matched a secret's pattern and were examined line by "
            "line"
        )
    else:
        lines.append(f"files larger than {cap} KiB are not read")

    deadline = said.get("timeout")
    truncated = any(
        line.startswith("@@truncated after ") for line in scan.output.splitlines()
    )
    if truncated or scan.status == 124:
        lines.append(
            f"the {deadline or '?'} s deadline was hit: files not reached by then "
            "were not searched"
        )
    elif deadline is not None:
        lines.append(
            f"finished in {said.get('seconds', '?')} s, within its {deadline} s "
            "deadline"
        )
    return lines


def _scan(facts: Facts) -> tuple[list[linux.Finding], bool, list[Evidence]]:
    """All real findings, whether the scan finished, and what was scanned."""
    scan = facts.section("secrets")
    found = linux.findings(scan)
    evidence = [
        Evidence(
            "what the secrets scan read", scan.command, "\n".join(scan_summary(scan))
        )
    ]
    if facts.has("service-env"):
        env = facts.section("service-env")
        found += linux.findings(env)
        read = linux.markers(env, "read")
        evidence.append(
            Evidence(
                "secrets and AWS variables set for services",
                env.command,
                (f"{read[0]} files read: " if read else "read: ") + SERVICE_FILES,
            )
        )

    host_keys = _host_keys(facts)
    real = [
        f
        for f in found
        if not is_example(f)
        and f.path not in host_keys
        and not fnmatch.fnmatchcase(f.path, HOST_KEY_GLOB)
    ]
    examples = [f for f in found if is_example(f)]
    if examples:
        places = dict.fromkeys(
            f"{f.path}:{f.line}" if f.line else f.path for f in examples
        )
        evidence.append(
            Evidence(
                f"{counted(len(examples), 'AWS documentation example key')} ignored",
                output="AKIAIOSFODNN7EXAMPLE and the other published dummy keys "
                "are documentation, not credentials; found at:\n" + "\n".join(places),
            )
        )
    return real, scan.status == 0, evidence


def _judge(
    facts: Facts,
    belongs: Callable[[linux.Finding], bool],
    noun: tuple[str, str],
    clean: str,
) -> Outcome:
    """The verdict on the findings that ``belongs`` picks; ``noun`` is (one, many)."""
    try:
        findings, complete, evidence = _scan(facts)
    except MissingFact as error:
        return undecided(f"the secrets scan did not run: {error.why}")

    one, many = noun
    mine = [f for f in findings if belongs(f)]
    lines = [f.describe() for f in mine]
    shown = lines[:MAX_SHOWN] + (
        [f"... and {len(lines) - MAX_SHOWN} more"] if len(lines) > MAX_SHOWN else []
    )
    evidence.insert(
        0,
        Evidence(
            f"{many} found (kind, place, and the first 16 hex digits of the "
            "secret's sha256; the secret never leaves the machine)",
            output="\n".join(shown) or "none",
        ),
    )

    if mine:
        first = "; ".join(lines[:3]) + (" ..." if len(lines) > 3 else "")
        return failed(
            f"{counted(len(mine), one, many)} found on disk: {first}",
            *evidence,
            findings=tuple(lines),
        )
    if not complete:
        return undecided(
            "the secrets scan stopped at its deadline before searching every "
            f"file, and found no {many} in the files it searched",
            *evidence,
        )
    return passed(clean, *evidence)


@policy(
    "CREDENTIALS",
    family=FAMILY,
    platforms=("linux",),
    summary="no private keys, service credentials or secrets in shell history on disk",
    remediation=(
        "Delete private keys (PEM and PuTTY), tokens, .git-credentials, "
        ".docker/config.json auths, .netrc/.pgpass passwords, cloud credentials "
        "files (~/.aws/credentials, gcloud, Azure) and shell history files "
        "before creating the image, and take secrets out of service "
        "environments (Environment=, EnvironmentFile=, /etc/default, "
        "/etc/sysconfig); generate keys and fetch secrets at first boot instead."
    ),
)
def check_credentials(facts: Facts) -> Outcome:
    return _judge(
        facts,
        lambda finding: finding.kind not in AWS_KEY_KINDS,
        ("credential", "credentials"),
        "found no private key, token, cloud credentials file, service secret or "
        "secret in a shell history; AWS access keys are judged by AWS-KEYS",
    )


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
    return _judge(
        facts,
        lambda finding: finding.kind in AWS_KINDS,
        ("AWS key or credentials file", "AWS keys or credentials files"),
        "found no AWS access key or AWS credentials file, on disk or set for a service",
    )
