"""Gathering the facts of a Linux machine in one remote command.

``linux.sh`` (shipped next to this module, exposed as :data:`SCRIPT`) prints
every fast fact as a section between marker lines::

    @@amipolicy-begin NAME@@ COMMAND
    ...output (stdout and stderr)...
    @@amipolicy-end NAME STATUS@@

:func:`gather` runs it (through ``sudo -n`` when asked) and :func:`parse` turns
the output into :class:`~pytest_amipolicy.facts.Section` objects. Parameters
go to the script as ``KEY=VALUE`` words after ``sh -c SCRIPT amipolicy``:
``user`` (login user), ``roots`` (extra scan directories, ``:``-separated),
``max_kb`` (largest file the secrets scan reads), ``mounts`` (``0`` limits the
scan to ``roots``), ``scan_timeout`` (seconds), ``install`` (malware mode may
install ClamAV) and ``mode`` (``fast``, ``updates`` or ``malware``).

Sections of the fast script:

============================  ================================================
``sudo``                      ``sudo -n true`` as the login user
``sudo-list``                 ``sudo -n -l -U USER``
``os-release``, ``usr-lib-os-release``, ``system-release``,
``redhat-release``, ``lsb-release``, ``uname``   OS identification
``sshd-root``, ``sshd-login``, ``sshd-user``  ``sshd -T -C user=...,host=
                              scanner.invalid,addr=203.0.113.10`` for root, the
                              login user and an ordinary user (with ``lport``
                              and ``laddr`` when a Match line asks about them)
``sshd-contexts``             ``@@no-match@@`` when the configuration has no
                              Match line; else, for every account sshd could
                              let in (and every port and local address, when
                              Match asks), ``@@context user=U [lport=P
                              laddr=A]@@`` and the password and key keywords
                              of sshd -T, or ``@@context-failed STATUS@@``
``sshd-config``               sshd_config and every file it includes, each
                              after ``@@file PATH@@``
``user-groups``               ``USER:GROUPS`` of root, the login user and (with
                              Match lines) every account, for Match Group in
                              the evidence
``cloud-init``                ``ssh_pwauth`` lines of cloud.cfg(.d), ``grep -n``
``passwd``                    /etc/passwd with field 2 reduced to a class
``shadow``                    ``user:class`` of /etc/shadow (never a hash)
``authorized-keys``           per account: ``@@account NAME UID HOME SHELL
                              shell=0|1 home=0|1@@``, ``@@akf PATTERNS@@``,
                              then ``@@keyfile PATH@@`` and ``grep -n`` lines,
                              or ``@@keyfile-unreadable PATH@@``; first
                              ``@@akf-default@@`` if sshd -T said nothing;
                              last, each TrustedUserCAKeys file: ``@@user-ca
                              PATH@@`` and its lines, or ``@@user-ca-missing
                              PATH@@``, ``@@user-ca-unreadable PATH@@``
``host-keys``                 ``hostkey MTIME BIRTH PATH``, ``now``, ``btime``,
                              ``clk_tck``, ``pid1_start_ticks``, ``run_fs
                              TYPE`` (of /run) and ``bootmark MTIME BIRTH
                              PATH`` (PID 1's notify socket, made at boot)
``secrets``                   ``kind TAB path TAB line TAB fingerprint TAB id
                              TAB label``: the label says how a history secret
                              was typed (``sshpass -p``, a variable's name) or
                              that a private key is PuTTY's; what was read:
                              ``@@scan-mount PATH TYPE@@``, ``@@scan-pseudo
                              PATH TYPE@@`` and ``@@scan-inside-skipped PATH
                              TYPE@@`` (skipped), ``@@scan-volumes PATH@@``,
                              ``@@scan-doc PATH@@``, ``@@scan-root PATH@@``,
                              ``@@scan-root-missing PATH@@``, ``@@truncated
                              after Ns@@`` and ``@@scanned mounts= max_kb=
                              timeout= files= candidates= seconds=@@``
``service-env``               the same, kinds ``aws-env`` and ``service-secret``
                              (a secret-named variable set for a service), with
                              the variable's name as label; ``@@read N@@``
                              counts the files read
``mounts``, ``lsblk``, ``dmcrypt``, ``fscrypt``  filesystems
``listeners``                 ``ss -Hltnup``
``remote-agents``             ``binary|unit|enabled|inetd|xinetd ...`` lines
``region``                    ``path:line:match`` of region names and AMI ids
============================  ================================================

Password classes are ``@blank``, ``@locked``, ``@x``, ``@hash/ID`` (``ID`` is
the crypt scheme, ``des`` for the old 13-character form) and ``@other``.
"""

from __future__ import annotations

import importlib.resources
import logging
import re
import shlex
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Callable

from pytest_amipolicy.errors import AmiPolicyError
from pytest_amipolicy.facts import MissingFact, Section

logger = logging.getLogger(__name__)

Runner = Callable[[str], tuple[int, str, str]]

SCRIPT: str = (
    importlib.resources.files("pytest_amipolicy.facts")
    .joinpath("linux.sh")
    .read_text(encoding="utf-8")
)

# The slow facts, fetched on first use by load_slow: name -> what it does.
SLOW_SECTIONS: dict[str, str] = {
    "updates": "refresh package lists if stale, then list pending security updates",
    "malware": "ClamAV scan of the real filesystems (installed only when allowed)",
}

_BEGIN = re.compile(r"^@@amipolicy-begin (?P<name>[A-Za-z0-9_.-]+)@@ ?(?P<command>.*)$")
_END = re.compile(r"^@@amipolicy-end (?P<name>[A-Za-z0-9_.-]+) (?P<status>-?\d+)@@$")

# Password field classes as the script prints them.
BLANK, LOCKED, SHADOWED, OTHER = "@blank", "@locked", "@x", "@other"
_DES = re.compile(r"^[./0-9A-Za-z]{13}$")


def parse(output: str) -> dict[str, Section]:
    """Split the script's output into sections; unterminated ones get status -1."""
    sections: dict[str, Section] = {}
    name: str | None = None
    command = ""
    lines: list[str] = []

    for line in output.splitlines():
        if name is None:
            begin = _BEGIN.match(line)
            if begin:
                name, command, lines = begin["name"], begin["command"], []
            continue

        end = _END.match(line)
        if end and end["name"] == name:
            sections[name] = Section(name, command, int(end["status"]), _joined(lines))
            name = None
            continue
        # The script shifts output lines that look like markers by one space.
        lines.append(line[1:] if line.startswith(" @@amipolicy-") else line)

    if name is not None:
        # The connection dropped or the script was killed inside a section.
        sections[name] = Section(name, command, -1, _joined(lines))
    return sections


def _joined(lines: list[str]) -> str:
    return "\n".join(lines) + ("\n" if lines else "")


def command_line(params: dict[str, object], *, sudo: bool, mode: str = "fast") -> str:
    """Return the command string that runs the script with ``params``."""
    words = [f"mode={mode}"]
    for key, value in params.items():
        if value is None:
            continue
        if isinstance(value, (list, tuple)):
            value = ":".join(str(v) for v in value)
        if isinstance(value, bool):
            value = int(value)
        words.append(f"{key}={value}")

    tail = " ".join(shlex.quote(w) for w in words)
    command = f"sh -c {shlex.quote(SCRIPT)} amipolicy {tail}"
    return f"sudo -n {command}" if sudo else command


def gather(
    run: Runner,
    *,
    sudo: bool,
    user: str | None = None,
    scan_roots: Iterable[str] = (),
    max_kb: int = 1024,
    scan_timeout: int = 60,
    mounts: bool = True,
) -> dict[str, Section]:
    """Run the fast script once and return its sections.

    With ``sudo`` the script runs as root through ``sudo -n``; if sudo refuses
    (a failed command that printed nothing), the result carries a failed
    ``sudo`` section with sudo's message and the facts the login user can
    gather alone (shadow, for one, will be missing). A run that prints nothing
    and succeeds is no refusal and no fact: it raises AmiPolicyError, so every
    policy of the target is an error.
    """
    params: dict[str, object] = {
        "user": user,
        "roots": tuple(scan_roots),
        "max_kb": max_kb,
        "scan_timeout": scan_timeout,
        "mounts": mounts,
    }
    status, stdout, stderr = run(command_line(params, sudo=sudo))
    sections = parse(stdout)
    if sections:
        return sections
    if not sudo or status == 0:
        # Nothing printed, yet no refusal: no fact can be read, and sudo was
        # not refused either, so nothing may be judged on it.
        raise _printed_nothing(status, stderr, sudo=sudo)

    # sudo refused before the script started: keep its word, go on unprivileged.
    refused = Section("sudo", "sudo -n sh -c SCRIPT", status, stderr.strip() + "\n")
    logger.debug("sudo refused (%s): gathering without root", status)
    status, stdout, stderr = run(command_line(params, sudo=False))
    sections = parse(stdout)
    if not sections:
        raise _printed_nothing(status, stderr, sudo=False)
    sections["sudo"] = refused
    return sections


def _printed_nothing(status: int, stderr: str, *, sudo: bool) -> AmiPolicyError:
    said = stderr.strip().splitlines()[-1:] or ["nothing on stderr either"]
    how = "through sudo -n " if sudo else ""
    return AmiPolicyError(
        f"the Linux fact script run {how}printed no fact (exit status {status}, "
        f"{said[0]}); check that the login shell runs 'sh -c' commands and prints "
        "their output, e.g. ssh HOST "
        + ("'sudo -n sh -c \"echo ok\"'" if sudo else "'sh -c \"echo ok\"'")
    )


def ran_as_root(sections: dict[str, Section]) -> bool:
    """Whether the fast script ran as root, as its ``meta`` section reports."""
    meta = sections.get("meta")
    return meta is not None and "uid=0 " in meta.output + " "


def load_slow(
    run: Runner, name: str, *, sudo: bool, install_scanner: bool = False
) -> Section:
    """Fetch one of :data:`SLOW_SECTIONS`; raise MissingFact if it cannot be had."""
    if name not in SLOW_SECTIONS:
        raise MissingFact(name, "no such slow fact on Linux")

    status, stdout, stderr = run(
        command_line({"install": install_scanner}, sudo=sudo, mode=name)
    )
    section = parse(stdout).get(name)
    if section is None:
        why = (stderr.strip().splitlines() or [f"exit status {status}"])[-1]
        raise MissingFact(name, f"the script did not run: {why}")
    return section


# ---------------------------------------------------------------- readers


def classify_password(field: str) -> str:
    """Return what a passwd/shadow password field means, never the field."""
    if field.startswith("@"):
        return field
    if field == "":
        return BLANK
    if field[0] in "!*":
        return LOCKED
    if field == "x":
        return SHADOWED
    if field.startswith("$"):
        scheme = field.split("$")[1] if field.count("$") >= 2 else ""
        return "@hash/" + re.sub(r"[^0-9A-Za-z_-]", "", scheme)
    if _DES.match(field):
        return "@hash/des"
    if len(field) == 20 and field.startswith("_"):
        return "@hash/bsdi"
    return OTHER


def is_usable(cls: str) -> bool:
    return cls.startswith("@hash/")


@dataclass(frozen=True)
class Account:
    name: str
    uid: int
    password: str
    home: str
    shell: str


def accounts(passwd: Section) -> list[Account]:
    """Read the ``passwd`` section; password fields come back as classes."""
    result = []
    for line in passwd.output.splitlines():
        fields = line.split(":")
        if len(fields) < 7 or not fields[2].lstrip("-").isdigit():
            continue
        result.append(
            Account(
                fields[0],
                int(fields[2]),
                classify_password(fields[1]),
                fields[5],
                fields[6],
            )
        )
    return result


def shadow_classes(shadow: Section) -> dict[str, str]:
    """Read the ``shadow`` section into user -> password class."""
    result = {}
    for line in shadow.output.splitlines():
        name, sep, rest = line.partition(":")
        if sep and name and not line.startswith("/etc/shadow"):
            result[name] = classify_password(rest.split(":")[0])
    return result


def sshd_settings(section: Section) -> dict[str, list[str]]:
    """Read ``sshd -T`` output into keyword -> values (repeatable keywords)."""
    return _settings(section.output.splitlines())


@dataclass(frozen=True)
class SshdContext:
    """One ``sshd -T -C`` evaluation of the ``sshd-contexts`` section."""

    user: str
    local_port: int | None
    local_address: str | None
    settings: dict[str, list[str]]
    # sshd -T's exit status and last words when it failed, else 0 and "".
    status: int = 0
    error: str = ""

    def describe(self) -> str:
        where = f"user {self.user}"
        if self.local_port is not None:
            where += f" on local port {self.local_port}"
        if self.local_address:
            where += f" at {self.local_address}"
        return where


def sshd_contexts(section: Section) -> list[SshdContext] | None:
    """Read the ``sshd-contexts`` section; None when sshd saw no Match line."""
    if markers(section, "no-match"):
        return None

    contexts: list[SshdContext] = []
    current: dict[str, str] | None = None
    lines: list[str] = []

    def close() -> None:
        if current is None:
            return
        failed = next((m for m in map(_FAILED.match, lines) if m), None)
        port = current.get("lport", "")
        contexts.append(
            SshdContext(
                user=current.get("user", ""),
                local_port=int(port) if port.isdigit() else None,
                local_address=current.get("laddr") or None,
                settings=_settings(lines),
                status=int(failed[1]) if failed else 0,
                error="\n".join(ln for ln in lines if not _FAILED.match(ln))
                if failed
                else "",
            )
        )

    for line in section.output.splitlines():
        opening = _CONTEXT.match(line)
        if opening:
            close()
            current = dict(
                word.split("=", 1) for word in opening[1].split() if "=" in word
            )
            lines = []
        else:
            lines.append(line)
    close()
    return contexts


_CONTEXT = re.compile(r"^@@context (.*)@@$")
_FAILED = re.compile(r"^@@context-failed (\d+)@@$")


def _settings(lines: Iterable[str]) -> dict[str, list[str]]:
    result: dict[str, list[str]] = {}
    for line in lines:
        keyword, _, value = line.strip().partition(" ")
        if keyword and keyword.islower() and keyword.isalnum():
            result.setdefault(keyword, []).append(value.strip())
    return result


def config_files(section: Section) -> dict[str, str]:
    """Read a ``@@file PATH@@`` dump into path -> text, in the order read."""
    files: dict[str, list[str]] = {}
    current: list[str] | None = None
    for line in section.output.splitlines():
        match = re.match(r"^@@file (.+)@@$", line)
        if match:
            current = files.setdefault(match[1], [])
        elif current is not None:
            current.append(line)
    return {path: _joined(lines) for path, lines in files.items()}


# What each kind of finding is, in words; the secret behind it never shows.
FINDING_KINDS = {
    "private-key": "private key",
    "encrypted-private-key": "encrypted private key",
    "aws-access-key-id": "AWS access key ID",
    "aws-secret-access-key": "AWS secret access key",
    "aws-credentials-file": "AWS credentials file",
    "cloud-credentials-file": "cloud credentials file",
    "token": "access token",
    "git-credentials": "Git credentials (a password in a URL)",
    "docker-auth": "Docker registry login",
    "netrc": ".netrc password",
    "pgpass": "PostgreSQL password (.pgpass)",
    "aws-env": "AWS variable set for a service",
    "service-secret": "secret variable set for a service",
    "history-secret": "secret typed in a shell history",
}
# Kinds whose label is a variable name or how the secret was typed.
_LABELLED_KINDS = {"aws-env", "service-secret", "history-secret"}


@dataclass(frozen=True)
class Finding:
    """One secret found on disk, as the script reports it: never the secret."""

    kind: str
    path: str
    line: int
    fingerprint: str
    key_id: str = ""
    variable: str = ""

    def describe(self) -> str:
        where = f"{self.path}:{self.line}" if self.line else self.path
        text = FINDING_KINDS.get(self.kind, self.kind)
        if self.variable:
            labelled = self.kind in _LABELLED_KINDS
            text += f": {self.variable}" if labelled else f" ({self.variable})"
        if self.key_id:
            text += f" {self.key_id}"
        text += f" at {where}"
        # Files found by name carry no fingerprint: nothing was read from them.
        return text + (f" (sha256 {self.fingerprint})" if self.fingerprint else "")


def findings(section: Section) -> list[Finding]:
    """Read the tab-separated lines of the ``secrets``/``service-env`` sections."""
    result = []
    for line in section.output.splitlines():
        fields = line.split("\t")
        if len(fields) < 4 or line.startswith("@@"):
            continue
        fields += [""] * (6 - len(fields))
        lineno = int(fields[2]) if fields[2].isdigit() else 0
        result.append(
            Finding(fields[0], fields[1], lineno, fields[3], fields[4], fields[5])
        )
    return result


def markers(section: Section, name: str) -> list[str]:
    """Return the values of ``@@NAME value@@`` lines in a section."""
    pattern = re.compile(rf"^@@{re.escape(name)}(?: (.*))?@@$")
    return [m[1] or "" for m in map(pattern.match, section.output.splitlines()) if m]
