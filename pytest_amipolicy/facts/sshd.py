"""Reading sshd_config text to say which line decided a setting.

The verdict of an SSH policy always comes from ``sshd -T``, which is sshd's own
reading of its configuration. This module only points at the line behind a
value, for the evidence, reading the text the way sshd does:

- ``Include`` globs expand in lexical order, relative to /etc/ssh, and a ``*``
  never crosses a ``/``; an included file starts in the Match state of the line
  that included it, and that state comes back after it;
- keywords are case-insensitive, and ``Keyword=value`` equals ``Keyword value``;
- the first value of a keyword wins, but twice: sshd reads the configuration
  once for the whole server (lines outside Match blocks, or after ``Match
  all``), then once per connection, where only the Match blocks that apply
  count, and a value found there replaces the server-wide one.
"""

from __future__ import annotations

import fnmatch
import ipaddress
import shlex
from dataclasses import dataclass

MAIN = "/etc/ssh/sshd_config"
# sshd refuses deeper nesting of Include; the same file may be read twice.
MAX_INCLUDE_DEPTH = 16


@dataclass(frozen=True)
class Origin:
    """Where a setting was read: a file and line, or sshd's built-in default."""

    path: str
    line: int
    text: str

    def __str__(self) -> str:
        if not self.path:
            return self.text
        return f"{self.path}:{self.line}: {self.text}"


@dataclass(frozen=True)
class Connection:
    """The connection a Match block is evaluated for."""

    user: str
    host: str = "scanner.invalid"
    address: str = "203.0.113.10"
    groups: tuple[str, ...] = ()
    # The side of the connection that sshd -T learns from lport and laddr.
    local_port: int | None = None
    local_address: str | None = None


def _words(line: str) -> list[str]:
    try:
        words = shlex.split(line, comments=True)
    except ValueError:
        words = line.split()
    if not words:
        return words

    # sshd also takes "Keyword=value" and "Keyword = value".
    keyword, equals, rest = words[0].partition("=")
    tail = words[1:]
    if not equals and tail and tail[0].startswith("="):
        rest, tail = tail[0][1:], tail[1:]
    return [keyword] + ([rest] if rest else []) + tail


def _criteria(words: list[str]) -> list[str]:
    """A Match line's criteria as name, value pairs ("User=x" is "User x")."""
    result: list[str] = []
    for word in words:
        name, equals, value = word.partition("=")
        result += [name, value] if equals and name.isalpha() else [word]
    return result


def _pattern_list_matches(patterns: str, value: str) -> bool:
    """sshd pattern lists: comma-separated globs, a leading ! negates."""
    matched = False
    for pattern in patterns.split(","):
        negated = pattern.startswith("!")
        if fnmatch.fnmatchcase(value, pattern.lstrip("!")):
            if negated:
                return False
            matched = True
    return matched


def _address_matches(patterns: str, address: str) -> bool:
    matched = False
    for pattern in patterns.split(","):
        negated = pattern.startswith("!")
        pattern = pattern.lstrip("!")
        try:
            hit = ipaddress.ip_address(address) in ipaddress.ip_network(
                pattern, strict=False
            )
        except ValueError:
            hit = fnmatch.fnmatchcase(address, pattern)
        if hit:
            if negated:
                return False
            matched = True
    return matched


def match_applies(criteria: list[str], connection: Connection | None) -> bool:
    """Whether a ``Match`` line's criteria hold for ``connection``.

    Without a connection (sshd's server-wide reading) only ``Match all`` holds.
    """
    criteria = _criteria(criteria)
    if criteria and criteria[0].lower() == "all":
        return True
    if connection is None or len(criteria) % 2:
        return False

    for key, value in zip(criteria[0::2], criteria[1::2]):
        key = key.lower()
        if key == "user":
            ok = _pattern_list_matches(value, connection.user)
        elif key == "group":
            ok = any(_pattern_list_matches(value, g) for g in connection.groups)
        elif key == "host":
            ok = _pattern_list_matches(value, connection.host)
        elif key == "address":
            ok = _address_matches(value, connection.address)
        elif key == "localport" and connection.local_port is not None:
            ok = value == str(connection.local_port)
        elif key == "localaddress" and connection.local_address is not None:
            ok = _address_matches(value, connection.local_address)
        else:
            # RDomain, or a local side the evaluation did not give
            ok = False
        if not ok:
            return False
    return True


def _glob_matches(pattern: str, path: str) -> bool:
    """glob(3) as sshd uses it: wildcards stay within one path component."""
    wanted, parts = pattern.split("/"), path.split("/")
    if len(wanted) != len(parts):
        return False
    return all(
        fnmatch.fnmatchcase(part, want)
        and not (part.startswith(".") and not want.startswith("."))
        for want, part in zip(wanted, parts)
    )


def _expand(pattern: str, files: dict[str, str]) -> list[str]:
    if not pattern.startswith("/"):
        pattern = "/etc/ssh/" + pattern
    return sorted(path for path in files if _glob_matches(pattern, path))


@dataclass
class _Reading:
    """One of sshd's passes over the configuration text."""

    files: dict[str, str]
    keyword: str
    connection: Connection | None

    def first(
        self, path: str, active: bool, match_only: bool, never: bool, depth: int
    ) -> Origin | None:
        """The first line setting the keyword while active, in ``path`` and below.

        ``match_only``: no Match line seen yet in the per-connection reading;
        ``never``: included from a Match block that does not apply, so no Match
        in this file applies either.
        """
        if depth > MAX_INCLUDE_DEPTH or path not in self.files:
            return None

        for number, raw in enumerate(self.files[path].splitlines(), start=1):
            words = _words(raw)
            if not words:
                continue

            key = words[0].lower()
            if key == "match":
                active = not never and match_applies(words[1:], self.connection)
                match_only = False
            elif key == "include":
                # Before the first Match of the per-connection reading an
                # included file may still hold Match blocks that apply; from a
                # block that does not apply, none of its blocks can.
                never_inside = not active and not match_only
                for pattern in words[1:]:
                    for included in _expand(pattern, self.files):
                        found = self.first(
                            included, active, match_only, never_inside, depth + 1
                        )
                        if found:
                            return found
            elif key == self.keyword and active:
                return Origin(path, number, raw.strip())
        return None


def find_setting(
    files: dict[str, str], keyword: str, connection: Connection
) -> Origin | None:
    """Return the line sshd takes ``keyword`` from for ``connection``, if any."""
    start = MAIN if MAIN in files else next(iter(files), "")

    # A Match block that applies overrides whatever the server-wide lines say,
    # wherever they stand; only without one does the first server-wide line win.
    per_connection = _Reading(files, keyword.lower(), connection)
    found = per_connection.first(
        start, active=False, match_only=True, never=False, depth=0
    )
    if found is not None:
        return found

    server_wide = _Reading(files, keyword.lower(), None)
    return server_wide.first(start, active=True, match_only=False, never=False, depth=0)


def _same_value(line: str, effective: str) -> bool:
    """Whether a config line gives the value sshd -T printed (aliases aside)."""
    aliases = {"prohibit-password": "without-password"}
    words = _words(line)[1:]
    said = " ".join(aliases.get(w.lower(), w.lower()) for w in words)
    shown = " ".join(aliases.get(w, w) for w in effective.lower().split())
    return said == shown


def describe(
    files: dict[str, str],
    keyword: str,
    connection: Connection,
    effective: str | None = None,
    who: str = "",
) -> str:
    """One line saying where ``keyword`` came from, for the evidence.

    With ``effective`` (the value sshd -T printed) a line that disagrees with
    it is not offered as the reason: a Match criterion this reading cannot
    evaluate (LocalPort, say) or an option given on sshd's command line
    decided instead. ``who`` names the connection (default: its user).
    """
    if not files:
        return f"{keyword}: the configuration text was not available"

    who = who or f"user {connection.user}"
    origin = find_setting(files, keyword, connection)
    if origin is not None and (
        effective is None or _same_value(origin.text, effective)
    ):
        return f"{keyword} for {who}: {origin}"
    if origin is None:
        return f"{keyword}: not set for {who}; sshd's default applies"
    return (
        f"{keyword} for {who}: sshd -T says {effective}, which "
        f"no line read here explains (the nearest is {origin})"
    )
