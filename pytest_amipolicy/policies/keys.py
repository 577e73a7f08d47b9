"""Key policies: no authorized key but the launch key, host keys made at boot."""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
from dataclasses import dataclass

from pytest_amipolicy.catalogue import policy
from pytest_amipolicy.facts import Facts, MissingFact, Section, bootclock, linux
from pytest_amipolicy.verdicts import Evidence, Outcome, failed, passed, undecided

FAMILY = "keys"

# A key line: options, a type token, the base64 key blob, a comment. sshd
# reads the type from inside the blob; the token may be a signature name
# (rsa-sha2-512, webauthn-sk-ecdsa-sha2-nistp256@openssh.com) or anything else.
_KEY = re.compile(
    r"(?:^|[\s,])(?P<type>[A-Za-z0-9][A-Za-z0-9@._+-]*)\s+"
    r"(?P<blob>AAAA[A-Za-z0-9+/]+={0,3})(?:\s+(?P<comment>.*))?$"
)
# The AuthorizedKeysCommand of EC2 Instance Connect: it returns the key pushed
# for one user through the EC2 API for 60 seconds, nothing baked in.
EC2_INSTANCE_CONNECT = (
    "/opt/aws/bin/eic_run_authorized_keys",
    "/usr/share/ec2-instance-connect/eic_run_authorized_keys",
)


def _material(blob: str) -> bytes | None:
    try:
        return base64.b64decode(blob, validate=True)
    except (binascii.Error, ValueError):
        return None


def _inner_type(material: bytes | None) -> str | None:
    """The key type a public key blob names in its first field (RFC 4253)."""
    if material is None or len(material) < 4:
        return None
    length = int.from_bytes(material[:4], "big")
    name = material[4 : 4 + length]
    if not 0 < length <= 64 or len(name) != length or not name.isascii():
        return None
    return name.decode()


@dataclass(frozen=True)
class AuthorizedKey:
    account: str
    path: str
    line: int
    type: str
    blob: str
    comment: str
    # What precedes the key on its line: command="...", from="...", restrict.
    options: str = ""

    @property
    def material(self) -> bytes:
        """The decoded key blob, or the text itself when it does not decode."""
        return _material(self.blob) or self.blob.encode()

    @property
    def fingerprint(self) -> str:
        if _material(self.blob) is None:
            return "SHA256:(undecodable)"
        digest = base64.b64encode(hashlib.sha256(self.material).digest()).decode()
        return "SHA256:" + digest.rstrip("=")

    def describe(self) -> str:
        # A forced command limits what the key runs, not who may log in with
        # it; its text stays out, as a command line may carry a secret.
        forced = re.search(r'(?:^|,)command="', self.options)
        limited = (
            " (restricted by command=, still a key that logs in)" if forced else ""
        )
        return (
            f"{self.path}:{self.line} ({self.account}) {self.type} "
            f"{self.fingerprint} {self.comment}".rstrip()
            + limited
        )


def parse_key(text: str) -> tuple[str, str, str] | None:
    """Return (type, base64 material, comment) of a key line, options skipped.

    The type is the one inside the key material when it decodes, whatever
    the line's type token says.
    """
    match = _KEY.search(text.strip())
    if not match:
        return None
    kind = _inner_type(_material(match["blob"])) or match["type"]
    return kind, match["blob"], (match["comment"] or "").strip()


def key_options(text: str) -> str:
    """The options before the key type on an authorized_keys line, or ''."""
    match = _KEY.search(text.strip())
    return text.strip()[: match.start("type")].strip(" ,") if match else ""


@dataclass
class KeyListing:
    """What the ``authorized-keys`` section holds."""

    keys: list[AuthorizedKey]
    unreadable: list[str]
    # Keys of TrustedUserCAKeys files: certificates they sign are accepted.
    user_ca_keys: list[AuthorizedKey]
    user_ca_files: list[str]


def authorized_keys(section: Section) -> tuple[list[AuthorizedKey], list[str]]:
    """Keys in the ``authorized-keys`` section, and files that were unreadable."""
    listing = read_listing(section)
    return listing.keys, listing.unreadable


def read_listing(section: Section) -> KeyListing:
    listing = KeyListing([], [], [], [])
    account = path = ""
    into = listing.keys

    for line in section.output.splitlines():
        marker = re.match(r"^@@([a-z-]+)(?: (.*))?@@$", line)
        if marker:
            kind, value = marker[1], marker[2] or ""
            if kind == "account":
                account, path, into = value.split(" ")[0], "", listing.keys
            elif kind == "keyfile":
                path, into = value, listing.keys
            elif kind == "user-ca":
                account, path, into = "any user", value, listing.user_ca_keys
                listing.user_ca_files.append(value)
            elif kind in ("keyfile-unreadable", "user-ca-unreadable"):
                listing.unreadable.append(value)
            elif kind == "user-ca-missing":
                listing.user_ca_files.append(f"{value} (absent)")
            continue

        number, _, text = line.partition(":")
        if not path or not number.isdigit() or text.lstrip().startswith("#"):
            continue
        parsed = parse_key(text)
        if parsed:
            into.append(
                AuthorizedKey(
                    account, path, int(number), *parsed, options=key_options(text)
                )
            )
    return listing


def _sshd_values(facts: Facts, keyword: str) -> list[str]:
    """Every value sshd -T gave ``keyword``, server-wide and per account."""
    values: list[str] = []
    if facts.has("sshd-root"):
        values += linux.sshd_settings(facts.section("sshd-root")).get(keyword, [])
    if facts.has("sshd-contexts"):
        for context in linux.sshd_contexts(facts.section("sshd-contexts")) or []:
            values += context.settings.get(keyword, [])
    return [v for v in dict.fromkeys(values) if v and v != "none"]


def _is_instance_connect(command: str) -> bool:
    return command.split()[0] in EC2_INSTANCE_CONNECT


@policy(
    "AUTHORIZED-KEYS",
    family=FAMILY,
    platforms=("linux",),
    summary="no SSH key is baked in: every key sshd would accept is the launch key",
    remediation=(
        "Empty every authorized_keys and authorized_keys2 file (root's, the "
        "default user's, service accounts') before creating the image; cloud-init "
        "installs the buyer's key at launch. Remove TrustedUserCAKeys and any "
        "AuthorizedKeysCommand other than EC2 Instance Connect's."
    ),
)
def check_authorized_keys(facts: Facts) -> Outcome:
    try:
        section = facts.section("authorized-keys")
    except MissingFact as error:
        return undecided(f"authorized keys were not gathered: {error.why}")
    if not section.ok:
        return undecided("listing authorized keys failed", section.evidence())

    listing = read_listing(section)
    keys = listing.keys
    files = linux.markers(section, "keyfile")
    launch = parse_key(facts.launch_public_key or "")
    launch_material = _material(launch[1]) if launch else None

    def shown(key: AuthorizedKey) -> str:
        is_launch = launch is not None and key.material == (launch_material or b"")
        return key.describe() + (" (the launch key)" if is_launch else "")

    patterns = " / ".join(dict.fromkeys(linux.markers(section, "akf")))
    accounts = len(linux.markers(section, "account"))
    searched = (
        f"searched: {patterns or 'the default AuthorizedKeysFile'} of "
        f"{accounts} accounts; {_files(len(files))} exist"
        + (f": {', '.join(files)}" if files else "")
    )
    evidence = [
        Evidence(
            label="keys sshd would accept (file:line, account, type, fingerprint)",
            command=section.command,
            output="\n".join([shown(k) for k in keys] or ["none"]) + "\n\n" + searched,
        )
    ]
    commands = _sshd_values(facts, "authorizedkeyscommand")
    unknown_commands = [c for c in commands if not _is_instance_connect(c)]
    if commands:
        evidence.append(
            Evidence(
                "AuthorizedKeysCommand",
                output="\n".join(
                    f"{c} (unknown: its keys cannot be checked)"
                    if c in unknown_commands
                    else f"{c} (EC2 Instance Connect)"
                    for c in commands
                ),
            )
        )
    principals = _sshd_values(facts, "authorizedprincipalsfile") + _sshd_values(
        facts, "authorizedprincipalscommand"
    )
    if listing.user_ca_files or principals:
        evidence.append(
            Evidence(
                "user certificate authorities (TrustedUserCAKeys) and principals",
                output="\n".join(
                    [f"TrustedUserCAKeys {f}" for f in listing.user_ca_files]
                    + [k.describe() for k in listing.user_ca_keys]
                    + [f"principals from {p}" for p in principals]
                ),
            )
        )

    baked = [
        k for k in keys if launch is None or k.material != (launch_material or b"")
    ]
    problems = [k.describe() for k in baked] if launch else []
    problems += [
        f"TrustedUserCAKeys {k.path}:{k.line} {k.type} {k.fingerprint}: a "
        "certificate this CA signs logs in as any principal it names"
        for k in listing.user_ca_keys
    ]
    if problems:
        many = len(problems) != 1
        return failed(
            f"sshd would accept {len(problems)} key{'s' if many else ''} other than "
            "the launch key: " + "; ".join(problems),
            *evidence,
            findings=tuple(problems),
        )

    if listing.unreadable:
        return undecided(
            f"key files could not be read: {', '.join(listing.unreadable)}",
            *evidence,
        )
    if unknown_commands:
        return undecided(
            "sshd asks AuthorizedKeysCommand "
            + ", ".join(repr(c) for c in unknown_commands)
            + " for more keys; the keys it returns cannot be checked here",
            *evidence,
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
        return passed(
            f"sshd would accept no key: none in the {_files(len(files))} it reads",
            *evidence,
        )
    if launch is None:
        return undecided(
            "keys were found but the launch key is unknown, so none can be told apart",
            *evidence,
        )
    return passed("the only authorized key is the launch key", *evidence)


def _files(number: int) -> str:
    return f"{number} key file{'' if number == 1 else 's'}"


@dataclass(frozen=True)
class HostKeyTimes:
    keys: list[tuple[str, int]]
    clock: bootclock.BootClock | None

    @property
    def boot(self) -> float | None:
        return self.clock.pid1_start if self.clock else None


def host_key_times(section: Section) -> HostKeyTimes:
    """Host key paths with their earliest known time, and the boot's clock."""
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

    return HostKeyTimes(keys, bootclock.boot_clock(section))


def _readable_times(times: HostKeyTimes) -> str:
    """The times in words, above the script's raw lines they come from."""
    if times.clock is None:
        return ""
    lines = times.clock.describe()
    for path, made in times.keys:
        if made <= 0:
            lines.append(f"{path}: no file time could be read")
            continue
        _, why = times.clock.judge(made)
        lines.append(f"{path}: made {bootclock.utc(made)}, {why}")
    return (
        "\n".join(lines)
        + "\n\nraw: hostkey MTIME BIRTH PATH in epoch seconds; PID 1 started at "
        "btime + pid1_start_ticks / clk_tck; bootmark is a file PID 1 made at boot\n"
    )


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
    evidence = section.evidence(
        "host key times against the start of PID 1 (this boot)",
        _readable_times(times) + section.output,
    )
    clock = times.clock
    if not section.ok or clock is None:
        return undecided("the boot time of PID 1 could not be read", evidence)
    if not times.keys:
        return undecided("no host key file was found", evidence)
    if any(t == 0 for _, t in times.keys):
        return undecided("a host key's file times could not be read", evidence)

    judged = [(path, made, *clock.judge(made)) for path, made in times.keys]
    old = [
        f"{path} (made {why})" for path, _, this_boot, why in judged if not this_boot
    ]
    if old:
        return failed(
            "host keys older than this boot were shipped: " + ", ".join(old),
            evidence,
            findings=tuple(old),
        )

    count = len(times.keys)
    early = [path for path, made, _, _ in judged if made < clock.pid1_start]
    if not early:
        return passed(f"all {count} host keys were made after PID 1 started", evidence)
    stepped = any(
        made < clock.pid1_start - bootclock.BOOT_TIME_SLACK_SECONDS
        for path, made, _, _ in judged
    )
    if stepped:
        how = (
            f"after PID 1's first files, the clock being put forward "
            f"{bootclock.span(clock.put_forward)} since"
        )
    else:
        how = (
            f"within the {bootclock.BOOT_TIME_SLACK_SECONDS} s by which whole-second "
            "times can differ"
        )
    return passed(
        f"all {count} host keys were made during this boot ({len(early)} of them "
        f"before PID 1's start as read now, {how})",
        evidence,
    )
