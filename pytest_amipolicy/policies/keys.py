"""Key policies: no authorized key but the launch key, host keys made at boot."""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
from dataclasses import dataclass

from pytest_amipolicy.catalogue import policy
from pytest_amipolicy.facts import Facts, MissingFact, Section, linux
from pytest_amipolicy.verdicts import Evidence, Outcome, failed, passed, undecided

FAMILY = "keys"

_KEY = re.compile(
    r"(?:^|[\s,])(?P<type>(?:ssh|ecdsa|sk)-[A-Za-z0-9@.-]+)\s+"
    r"(?P<blob>AAAA[A-Za-z0-9+/]+={0,3})(?:\s+(?P<comment>.*))?$"
)


@dataclass(frozen=True)
class AuthorizedKey:
    account: str
    path: str
    line: int
    type: str
    blob: str
    comment: str

    @property
    def fingerprint(self) -> str:
        try:
            raw = base64.b64decode(self.blob)
        except (binascii.Error, ValueError):
            return "SHA256:(undecodable)"
        digest = base64.b64encode(hashlib.sha256(raw).digest()).decode()
        return "SHA256:" + digest.rstrip("=")

    def describe(self) -> str:
        return (
            f"{self.path}:{self.line} ({self.account}) {self.type} "
            f"{self.fingerprint} {self.comment}".rstrip()
        )


def parse_key(text: str) -> tuple[str, str, str] | None:
    """Return (type, base64 material, comment) of a key line, options skipped."""
    match = _KEY.search(text.strip())
    if not match:
        return None
    return match["type"], match["blob"], (match["comment"] or "").strip()


def authorized_keys(section: Section) -> tuple[list[AuthorizedKey], list[str]]:
    """Keys in the ``authorized-keys`` section, and files that were unreadable."""
    keys: list[AuthorizedKey] = []
    unreadable: list[str] = []
    account = path = ""

    for line in section.output.splitlines():
        marker = re.match(r"^@@([a-z-]+)(?: (.*))?@@$", line)
        if marker:
            kind, value = marker[1], marker[2] or ""
            if kind == "account":
                account = value.split(" ")[0]
            elif kind == "keyfile":
                path = value
            elif kind == "keyfile-unreadable":
                unreadable.append(value)
            continue

        number, _, text = line.partition(":")
        if not path or not number.isdigit() or text.lstrip().startswith("#"):
            continue
        parsed = parse_key(text)
        if parsed:
            keys.append(AuthorizedKey(account, path, int(number), *parsed))
    return keys, unreadable


@policy(
    "AUTHORIZED-KEYS",
    family=FAMILY,
    platforms=("linux",),
    summary="no SSH key is baked in: every key sshd would accept is the launch key",
    remediation=(
        "Empty every authorized_keys and authorized_keys2 file (root's, the "
        "default user's, service accounts') before creating the image; cloud-init "
        "installs the buyer's key at launch."
    ),
)
def check_authorized_keys(facts: Facts) -> Outcome:
    try:
        section = facts.section("authorized-keys")
    except MissingFact as error:
        return undecided(f"authorized keys were not gathered: {error.why}")
    if not section.ok:
        return undecided("listing authorized keys failed", section.evidence())

    keys, unreadable = authorized_keys(section)
    files = linux.markers(section, "keyfile")
    evidence = [
        Evidence(
            label="keys sshd would accept",
            command=section.command,
            output="\n".join(k.describe() for k in keys)
            or f"no key in {len(files)} file(s)",
        )
    ]
    if facts.has("sshd-root"):
        command = linux.sshd_settings(facts.section("sshd-root")).get(
            "authorizedkeyscommand"
        )
        if command and command[0] != "none":
            evidence.append(
                Evidence(
                    "AuthorizedKeysCommand (keys it returns are not checked)",
                    output=command[0],
                )
            )

    if unreadable:
        return undecided(
            f"key files could not be read: {', '.join(unreadable)}", *evidence
        )
    if not keys and linux.markers(section, "akf-default"):
        # sshd -T did not say where it looks for keys, so only the default
        # files were read: a custom AuthorizedKeysFile may hold keys.
        return undecided(
            "sshd did not report its AuthorizedKeysFile, so only the default "
            "files were read and none held a key",
            *evidence,
        )
    if not keys:
        return passed("no authorized key on the image", *evidence)

    launch = parse_key(facts.launch_public_key or "")
    if launch is None:
        return undecided(
            "keys were found but the launch key is unknown, so none can be told apart",
            *evidence,
        )
    baked = [k for k in keys if (k.type, k.blob) != launch[:2]]
    if baked:
        found = tuple(k.describe() for k in baked)
        return failed(
            f"{len(baked)} key(s) other than the launch key: " + "; ".join(found),
            *evidence,
            findings=found,
        )
    return passed("the only authorized key is the launch key", *evidence)


@dataclass(frozen=True)
class HostKeyTimes:
    keys: list[tuple[str, int]]
    boot: float | None


def host_key_times(section: Section) -> HostKeyTimes:
    """Host key paths with their earliest known time, and PID 1's start."""
    keys = []
    for line in section.output.splitlines():
        fields = line.split(" ", 3)
        if fields[0] == "hostkey" and len(fields) == 4:
            # a copied key may get a new mtime but keeps its old birth, or
            # the other way round: the earlier of the two is the honest one;
            # a stat without birth times prints 0, "-" or "?" for it
            stamps = [int(t) for t in fields[1:3] if t.isdigit()]
            times = [t for t in stamps if t > 0]
            keys.append((fields[3], min(times) if times else 0))

    return HostKeyTimes(keys, linux.boot_time(section))


@policy(
    "HOST-KEYS",
    family=FAMILY,
    platforms=("linux",),
    summary="SSH host keys are generated at first boot, not shipped in the image",
    remediation=(
        "Delete /etc/ssh/ssh_host_* before creating the image; cloud-init or "
        "sshd-keygen generates new keys at first boot."
    ),
)
def check_host_keys(facts: Facts) -> Outcome:
    try:
        section = facts.section("host-keys")
    except MissingFact as error:
        return undecided(f"host key times were not gathered: {error.why}")

    times = host_key_times(section)
    evidence = section.evidence("host key times (epoch seconds) and boot of PID 1")
    if not section.ok or times.boot is None:
        return undecided("the boot time of PID 1 could not be read", evidence)
    if not times.keys:
        return undecided("no host key file was found", evidence)
    if any(t == 0 for _, t in times.keys):
        return undecided("a host key's file times could not be read", evidence)

    limit = times.boot - linux.BOOT_TOLERANCE_SECONDS
    old = [
        f"{path} ({int(times.boot - t)} s before boot)"
        for path, t in times.keys
        if t < limit
    ]
    if old:
        return failed(
            "host keys older than this boot were shipped: " + ", ".join(old),
            evidence,
            findings=tuple(old),
        )
    return passed(
        f"all {len(times.keys)} host keys were made after PID 1 started", evidence
    )
