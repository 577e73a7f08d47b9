"""System policies: updates, end of life, malware, region ties."""

from __future__ import annotations

import dataclasses
import datetime
import functools
import importlib.resources
import json
import re
import shlex
from dataclasses import dataclass
from typing import Any

from pytest_amipolicy.catalogue import policy
from pytest_amipolicy.facts import Facts, MissingFact, Section, bootclock, linux
from pytest_amipolicy.policies import pending
from pytest_amipolicy.verdicts import (
    Evidence,
    Outcome,
    failed,
    not_applicable,
    passed,
    undecided,
)

FAMILY = "system"
# Where linux.sh (region_refs) looks for region names and AMI ids.
REGION_SEARCHED = (
    "/etc, /opt, /srv, /usr/local/etc, /usr/local/bin and "
    "/var/lib/cloud/scripts (documentation and large files skipped)"
)


# ---------------------------------------------------------------- EOL


@dataclass(frozen=True)
class Release:
    family: str
    release: str
    end: datetime.date
    source: str


@functools.lru_cache(maxsize=1)
def lifecycle() -> list[dict[str, Any]]:
    text = (
        importlib.resources.files("pytest_amipolicy")
        .joinpath("data/lifecycle.json")
        .read_text(encoding="utf-8")
    )
    entries: list[dict[str, Any]] = json.loads(text)["entries"]
    return entries


def _release(entry: dict[str, Any]) -> Release:
    return Release(
        entry["family"],
        entry["release"],
        datetime.date.fromisoformat(entry["end"]),
        entry["source"],
    )


def os_release_fields(text: str) -> dict[str, str]:
    fields = {}
    for line in text.splitlines():
        key, sep, value = line.partition("=")
        if sep and key.strip().isidentifier():
            try:
                words = shlex.split(value)
            except ValueError:
                words = [value.strip("\"'")]
            fields[key.strip()] = " ".join(words)
    return fields


def lookup(os_id: str, version: str, name: str = "") -> Release | None:
    for entry in lifecycle():
        match = entry["match"]
        if os_id.lower() not in match.get("ids", []):
            continue
        if not re.search(match["version"], version):
            continue
        if "name" in match and not re.search(match["name"], name):
            continue
        return _release(entry)
    return None


def lookup_text(text: str) -> Release | None:
    for entry in lifecycle():
        pattern = entry["match"].get("text")
        if pattern and re.search(pattern, text.strip()):
            return _release(entry)
    return None


def lookup_windows(version: str) -> Release | None:
    for entry in lifecycle():
        wanted = entry["match"].get("windows_version")
        if wanted and (version == wanted or version.startswith(wanted + ".")):
            return _release(entry)
    return None


def identify(facts: Facts) -> tuple[Release | None, str, list[Evidence]]:
    """The release in the lifecycle table, what the machine says it is, evidence."""
    if facts.platform == "windows":
        section = facts.section("windows")
        try:
            document = json.loads(section.output)
        except ValueError:
            document = None
        os_info = document.get("os") if isinstance(document, dict) else None
        if not isinstance(os_info, dict):
            return None, "unreadable Windows facts", [section.evidence("windows facts")]
        said = f"{os_info.get('caption', '?')} {os_info.get('version', '?')}"
        shown = Evidence("Windows version", section.command, said)
        return lookup_windows(str(os_info.get("version", ""))), said, [shown]

    evidence: list[Evidence] = []
    for name in ("os-release", "usr-lib-os-release"):
        if facts.has(name) and facts.section(name).ok:
            section = facts.section(name)
            fields = os_release_fields(section.output)
            said = (
                f"{fields.get('ID', '?')} {fields.get('VERSION_ID', '?')} "
                f"({fields.get('PRETTY_NAME', '')})"
            )
            evidence.append(section.evidence(name))
            found = lookup(
                fields.get("ID", ""),
                fields.get("VERSION_ID", ""),
                fields.get("NAME", ""),
            )
            return found, said, evidence

    for name in ("system-release", "redhat-release"):
        if facts.has(name) and facts.section(name).ok:
            section = facts.section(name)
            evidence.append(section.evidence(name))
            return lookup_text(section.output), section.output.strip(), evidence

    if facts.has("lsb-release") and facts.section("lsb-release").ok:
        section = facts.section("lsb-release")
        fields = os_release_fields(section.output)
        evidence.append(section.evidence("lsb-release"))
        os_id, version = fields.get("DISTRIB_ID", ""), fields.get("DISTRIB_RELEASE", "")
        return lookup(os_id, version), f"{os_id} {version}", evidence

    return (
        None,
        "no os-release, system-release, redhat-release or lsb-release",
        evidence,
    )


@policy(
    "EOL",
    needs_root=False,
    family=FAMILY,
    platforms=("linux", "windows"),
    summary="the operating system release still gets security updates on the check date",
    remediation="Rebuild the image on a release that is still supported.",
)
def check_eol(facts: Facts) -> Outcome:
    try:
        release, said, evidence = identify(facts)
    except MissingFact as error:
        return undecided(f"the OS could not be identified: {error.why}")

    if release is None:
        return undecided(
            f"the lifecycle table does not know this OS: {said}", *evidence
        )

    name = f"{release.family} {release.release}"
    evidence.append(
        Evidence(
            "lifecycle table entry",
            output=f"{name}: supported until {release.end}",
            source=release.source,
        )
    )
    if facts.check_date > release.end:
        return failed(
            f"{name} reached end of life on {release.end} (checked on {facts.check_date})",
            *evidence,
            findings=(name,),
        )
    return passed(f"{name} is supported until {release.end}", *evidence)


# ---------------------------------------------------------------- UPDATES


# What to do when a package manager consults no repository at all.
NO_REPOSITORY_FIX = {
    "dnf": (
        "register the system (RHEL: subscription-manager register, or an AMI "
        "with Red Hat's RHUI client) or enable the distribution's repositories "
        "in /etc/yum.repos.d"
    ),
    "zypper": (
        "register the system (SUSEConnect --regcode CODE, or an AMI with SUSE's "
        "public cloud update infrastructure) or add the distribution's update "
        "repositories (zypper addrepo)"
    ),
}
NO_REPOSITORY_FIX["yum"] = NO_REPOSITORY_FIX["dnf"]


STALE_LISTS_FIX = (
    "give the machine a route to its package mirrors; an --ami-image container "
    "has none, so refresh the image's package lists before it is checked "
    "(the demo image's are refreshed when they are 6 hours old)"
)


def _refresh_failed(output: str) -> bool:
    """Whether the updates script stopped because the package lists went stale."""
    for line in output.splitlines():
        if line.startswith("refresh: failed"):
            return True
        status = re.fullmatch(r"refresh: .* \(status (\d+)\)", line)
        if status and status[1] != "0":
            return True
    return False


@policy(
    "UPDATES",
    family=FAMILY,
    platforms=("linux",),
    summary="no security update is pending from the OS package manager",
    remediation=(
        "Apply all updates (apt-get dist-upgrade, dnf upgrade, zypper patch) and "
        "rebuild."
    ),
)
def check_updates(facts: Facts) -> Outcome:
    try:
        section = facts.section("updates")
    except MissingFact as error:
        return undecided(f"pending updates could not be listed: {error.why}")

    report = pending.read(section.output)
    manager = report.manager
    evidence = section.evidence("package manager, repositories and pending updates")
    if manager in NO_REPOSITORY_FIX and not report.repositories:
        # Nothing consulted, nothing listed: an empty list proves nothing.
        said = f" ({'; '.join(report.notes)})" if report.notes else ""
        return undecided(
            f"{manager} consults no enabled repository{said}, so pending security "
            f"updates cannot be seen; {NO_REPOSITORY_FIX[manager]}",
            evidence,
        )
    if not section.ok and _refresh_failed(section.output):
        return undecided(
            f"{manager} could not refresh its package lists, which are older than "
            "12 hours or failed to update, so pending security updates cannot be "
            f"seen; {STALE_LISTS_FIX}",
            evidence,
        )
    if not section.ok or not manager or manager == "none":
        return undecided("the package manager failed or was not found", evidence)
    # apt reports a broken dpkg state or unmet dependencies with "E:" lines and
    # then lists nothing to install: that is no answer, not a clean system.
    errors = [ln for ln in section.output.splitlines() if ln.startswith("E: ")]
    if errors:
        return undecided(f"{manager} reported errors: {errors[0][3:]}", evidence)
    if report.pending:
        return failed(
            f"{len(report.pending)} security update(s) pending from {manager}",
            evidence,
            findings=tuple(report.pending),
        )
    # Debian and Ubuntu publish security fixes in a suite of their own: without
    # it, apt cannot list them, and an empty list would prove nothing.
    if manager == "apt" and not pending.apt_security_suites(report.repositories):
        return undecided(
            "apt consults no security suite (such as bookworm-security or "
            "jammy-security), so pending security updates cannot be seen; add "
            "the distribution's security repository to the image's apt sources",
            evidence,
        )
    consulted = len(report.repositories)
    return passed(
        f"{manager} lists no pending security update ({consulted} "
        f"repositor{'y' if consulted == 1 else 'ies'} consulted)",
        evidence,
    )


# ---------------------------------------------------------------- MALWARE


@policy(
    "MALWARE",
    family=FAMILY,
    platforms=("linux",),
    summary="a malware scan (ClamAV) finds nothing",
    remediation="Remove the infected files listed and rebuild from a clean source.",
)
def check_malware(facts: Facts) -> Outcome:
    try:
        section = facts.section("malware")
    except MissingFact as error:
        return undecided(f"the malware scan could not run: {error.why}")

    evidence = section.evidence("malware scan")
    if section.status == 77:
        reason = next(
            (ln[6:] for ln in section.output.splitlines() if ln.startswith("skip: ")),
            "no malware scanner (clamscan) is installed",
        )
        return not_applicable(reason, evidence)
    if section.status == 1:
        found = tuple(ln for ln in section.output.splitlines() if ln.endswith(" FOUND"))
        return failed(f"{len(found)} infected file(s) found", evidence, findings=found)
    if not section.ok:
        timed_out = [
            ln[9:] for ln in section.output.splitlines() if ln.startswith("timeout: ")
        ]
        if timed_out:
            return undecided(timed_out[-1], evidence)
        return undecided(f"the scanner failed with status {section.status}", evidence)
    return passed("the malware scan found nothing", evidence)


# ---------------------------------------------------------------- REGION-AGNOSTIC


@policy(
    "REGION-AGNOSTIC",
    family=FAMILY,
    platforms=("linux",),
    summary="no region-specific endpoint or AMI id is written into configuration",
    remediation=(
        "Look the region up at run time (instance metadata) instead of writing "
        "region names, regional endpoints or AMI ids into configuration."
    ),
)
def check_region_agnostic(facts: Facts) -> Outcome:
    try:
        section = facts.section("region")
    except MissingFact as error:
        return undecided(f"configuration was not searched: {error.why}")

    hits = [
        line
        for line in section.output.splitlines()
        if line.count(":") >= 2 and not line.startswith("@@")
    ]
    label = "region names and AMI ids in configuration (path:line:match, for review)"
    if not section.ok:
        return undecided("the configuration search failed", section.evidence(label))
    evidence = section.evidence(
        label, "\n".join(hits) or f"none found in {REGION_SEARCHED}"
    )

    # cloud-init writes the launch region into apt mirrors, yum variables and
    # the like at first boot: a file written during this boot was not shipped.
    this_boot = _written_this_boot(facts, section)
    baked = [hit for hit in hits if hit.split(":", 1)[0] not in this_boot]
    notes = [
        f"written during this boot, so not shipped in the image: {path}"
        for path in sorted(this_boot)
    ]
    if notes:
        evidence = dataclasses.replace(
            evidence, output=evidence.output.rstrip("\n") + "\n\n" + "\n".join(notes)
        )

    if baked:
        return failed(
            f"{len(baked)} region-specific reference(s) in configuration, for review",
            evidence,
            findings=tuple(baked),
        )
    if hits:
        return passed(
            "the only region-specific references were written at this boot",
            evidence,
        )
    return passed(
        "no region name, regional endpoint or AMI id in configuration", evidence
    )


def _written_this_boot(facts: Facts, section: Section) -> set[str]:
    """Paths of the files with hits that were last written during this boot."""
    clock = (
        bootclock.boot_clock(facts.section("host-keys"))
        if facts.has("host-keys")
        else None
    )
    if clock is None:
        return set()

    written = set()
    for value in linux.markers(section, "written"):
        stamp, _, path = value.partition(" ")
        if stamp.isdigit() and clock.judge(int(stamp))[0]:
            written.add(path)
    return written
