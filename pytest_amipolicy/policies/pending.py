"""Reading the ``updates`` section: pending security updates and the sources asked.

The gathering script prints what the package manager said, each kind of line
with a prefix of its own (see ``check_updates`` in ``linux.sh``); this module
reads it for the UPDATES policy:

- apt: ``Inst`` lines of a simulated dist-upgrade, whose origins say whether the
  candidate comes from a security suite, and ``between:`` lines, the versions
  apt-cache policy lists between the installed version and the candidate (a
  security fix superseded by a later version from -updates is still missing);
- dnf and yum: the advisories ``updateinfo list security`` prints, and on
  Amazon Linux 2023 the ones of the latest release (``latest:`` lines);
- zypper: the ``needed`` rows of ``list-patches --category security``.

``repo:`` lines are what each manager said its sources are.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

# apt-get -s: "Inst NAME [OLD] (NEW LABEL:VERSION/SUITE, ... [ARCH])".
_APT_ORIGINS = re.compile(r"^Inst \S+ (?:\[[^]]*\] )?\(\S+ (?P<origins>[^)]*)\)")
# dnf/yum updateinfo: "ALAS2023-2024-501 Important/Sec. openssl-libs-1:3.0.8-...",
# old yum-plugin-security: "RHSA-2019:1234 security openssl-1.0.2k-...".
_ADVISORY = re.compile(r"^\S+\s+(?:\S*/Sec\.|security)\s+\S+")
# Messages that dnf or yum print among the rows of their repository table.
_NOT_A_REPOSITORY = re.compile(
    r"^(repo id\b|repolist:|Loaded plugins|No repositories|This system|Unable to)"
)


@dataclass
class PendingUpdates:
    """What the package manager reported, read for the UPDATES policy."""

    manager: str = ""
    pending: list[str] = field(default_factory=list)
    repositories: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def is_security_suite(suite: str) -> bool:
    """Whether an apt suite (``bookworm-security/main``) serves security fixes.

    Debian 10 and older named it ``buster/updates`` on security.debian.org.
    """
    return "security" in suite.lower() or "/updates/" in f"{suite}/"


def _from_security(line: str) -> bool:
    """Whether an apt ``Inst`` line's new version comes from a security suite.

    Only the origins count: a package whose name says security
    (debian-security-support) is not a security update from an ordinary suite.
    """
    found = _APT_ORIGINS.match(line)
    return found is not None and "security" in found["origins"].lower()


def _superseded(fields: list[str]) -> str:
    package, installed, candidate, version, url, suite = fields
    return (
        f"{package} [{installed}] ({version} from {suite} at {url}, superseded "
        f"by {candidate} from a suite that is not a security suite)"
    )


def _repository_row(manager: str, row: str) -> str | None:
    """The repository a row of the manager's repository listing names, if any."""
    if manager == "zypper":
        # "# | Alias | Name | Enabled | GPG Check | Refresh | URI"
        cells = [cell.strip() for cell in row.split("|")]
        if len(cells) >= 4 and cells[0].isdigit() and cells[3] == "Yes":
            return cells[1]
        return None

    words = row.split()
    if not words or _NOT_A_REPOSITORY.match(row) or row.rstrip().endswith("."):
        return None
    return words[0]


def read(output: str) -> PendingUpdates:
    """Read the ``updates`` section's output."""
    report = PendingUpdates()
    listing = False
    superseded: dict[str, str] = {}
    latest_repositories: list[str] = []
    latest: list[str] = []

    for line in output.splitlines():
        if line.startswith("manager: "):
            report.manager = line.split()[1]
        elif line.startswith("repo: "):
            row = line[6:]
            if report.manager == "apt":
                report.repositories.append(row)
            elif (name := _repository_row(report.manager, row)) is not None:
                report.repositories.append(name)
        elif line.startswith("repo-note: ") and line[11:].strip():
            report.notes.append(line[11:].strip())
        elif line.startswith("repo-latest: "):
            name = _repository_row(report.manager, line[13:])
            if name is not None:
                latest_repositories.append(name)
        elif line.startswith("command: "):
            listing = True
        elif line.startswith("Inst ") and _from_security(line):
            report.pending.append(line[5:])
        elif line.startswith("between: "):
            fields = line.split()[1:]
            if len(fields) == 6 and is_security_suite(fields[5]):
                # the newest such version is listed first
                superseded.setdefault(fields[0], _superseded(fields))
        elif line.startswith("latest: ") and _ADVISORY.match(line[8:]):
            latest.append(line[8:].strip())
        elif listing and report.manager in ("dnf", "yum") and _ADVISORY.match(line):
            report.pending.append(line.strip())
        elif (
            listing
            and report.manager == "zypper"
            and "security" in line
            and "| needed" in line
        ):
            report.pending.append(" ".join(line.split()))

    counted = {entry.split()[0] for entry in report.pending}
    report.pending += [
        entry for package, entry in superseded.items() if package not in counted
    ]

    # An advisory of the frozen release shows up again in the latest one.
    where = ", ".join(latest_repositories) or "the latest release's repositories"
    report.pending += [
        f"{advisory} (from --releasever=latest: {where})"
        for advisory in dict.fromkeys(latest)
        if advisory not in report.pending
    ]
    report.repositories += [
        f"{name} (--releasever=latest)" for name in latest_repositories
    ]
    return report


def apt_security_suites(repositories: list[str]) -> list[str]:
    """The apt sources (``URL SUITE`` rows) that serve security updates."""
    return [row for row in repositories if is_security_suite(row.split(" ", 1)[-1])]
