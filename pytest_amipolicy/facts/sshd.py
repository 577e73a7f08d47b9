"""Reading sshd_config text to say which line decided a setting.

The verdict of an SSH policy always comes from ``sshd -T``, which is sshd's own
reading of its configuration. This module only points at the line behind a
value, for the evidence: it follows ``Include`` (globs expanded in lexical
order, relative to /etc/ssh), keeps the first value of a keyword, treats
keywords case-insensitively, and applies ``Match`` blocks for one connection.
"""

from __future__ import annotations

import fnmatch
import ipaddress
import shlex
from dataclasses import dataclass

MAIN = "/etc/ssh/sshd_config"


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


def _words(line: str) -> list[str]:
    try:
        return shlex.split(line, comments=True)
    except ValueError:
        return line.split()


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


def match_applies(criteria: list[str], connection: Connection) -> bool:
    """Whether a ``Match`` line's criteria hold for ``connection``."""
    if criteria and criteria[0].lower() == "all":
        return True
    if len(criteria) % 2:
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
        else:
            # LocalAddress, LocalPort, RDomain: unknown to the scanner's context
            ok = False
        if not ok:
            return False
    return True


def _expand(pattern: str, files: dict[str, str]) -> list[str]:
    if not pattern.startswith("/"):
        pattern = "/etc/ssh/" + pattern
    return sorted(path for path in files if fnmatch.fnmatchcase(path, pattern))


def find_setting(
    files: dict[str, str], keyword: str, connection: Connection
) -> Origin | None:
    """Return the line sshd takes ``keyword`` from for ``connection``, if any."""
    wanted = keyword.lower()
    seen: set[str] = set()

    def walk(path: str, active: bool) -> tuple[Origin | None, bool]:
        if path in seen or path not in files:
            return None, active
        seen.add(path)

        for number, raw in enumerate(files[path].splitlines(), start=1):
            words = _words(raw)
            if not words:
                continue
            key = words[0].lower()
            if key == "match":
                active = match_applies(words[1:], connection)
            elif key == "include":
                for pattern in words[1:]:
                    for included in _expand(pattern, files):
                        found, _ = walk(included, active)
                        if found:
                            return found, active
            elif key == wanted and active:
                return Origin(path, number, raw.strip()), active
        return None, active

    found, _ = walk(MAIN if MAIN in files else next(iter(files), ""), True)
    return found


def describe(files: dict[str, str], keyword: str, connection: Connection) -> str:
    """One line saying where ``keyword`` came from, for the evidence."""
    if not files:
        return f"{keyword}: the configuration text was not available"
    origin = find_setting(files, keyword, connection)
    if origin is None:
        return f"{keyword}: not set for user {connection.user}; sshd's default applies"
    return f"{keyword} for user {connection.user}: {origin}"
