"""The evidence a seller keeps: target descriptions and the JSON document.

Everything is built from what the policy items attach to their reports, so it
works the same under xdist, where the controller writes the files once. The
HTML side lives in :mod:`pytest_amipolicy.report`.

Redaction happens once, at the source: :class:`EvidenceFilter` rewrites each
report as it is made, on the process that ran the item, with the patterns of
:mod:`pytest_amipolicy.redaction`, so the terminal, the JUnit XML, the HTML
report and the JSON document all get the same clean text.

The JSON document (``--ami-evidence=PATH``) is described in
``docs/evidence-schema.md``; in short::

    {
      "schema": 2,
      "tool": {"name": "pytest-amipolicy", "version": str},
      "policy_page": str,                 # the Marketplace policy page
      "check_date": "YYYY-MM-DD",
      "started": str, "finished": str,    # ISO 8601, UTC
      "environment": {str: str},          # versions of the checking tools
      "targets": {label: {str: str}},     # what is known of each target
      "scripts": [                        # the fact scripts that ran
        {"platform": str, "name": str, "sha256": str, "lines": int}
      ],
      "results": [                        # one per (target, policy)
        {"policy": str, "family": str, "summary": str, "remediation": str,
         "target": str, "verdict": "pass|fail|error|skip|manual",
         "reason": str, "evidence": [str], "findings": [str],
         "remote_commands": int}
      ],
      "cleanup": [str],                   # what was stopped or deleted
      "complete": bool,                   # every collected policy got a verdict
      "interrupted": bool,                # Ctrl-C, a signal or pytest.exit()
      "not_run": {label: [str]},          # policy IDs collected but not judged
      "selection": {                      # which policies were chosen, and how
        "partial": bool, "catalogue": int,
        "selected_by": [{"by": str, "value": str}],
        "checked": {label: [str]}
      },
      "own_tests": [                      # the user's own tests beside them
        {"nodeid": str, "outcome": str, "target": str | None}
      ]
    }
"""

from __future__ import annotations

import datetime
import functools
import hashlib
import importlib.metadata
import importlib.resources
import json
import logging
import weakref
from collections.abc import Generator, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from pytest_amipolicy import __version__
from pytest_amipolicy.catalogue import POLICY_PAGE
from pytest_amipolicy.completeness import OWN_TEST_PROPERTY
from pytest_amipolicy.items import (
    CLOSED_PROPERTY,
    NOT_CHECKED_PROPERTY,
    PROPERTY,
    TARGET_PROPERTY,
)
from pytest_amipolicy.redaction import (
    LogRecordFactory,
    compile_patterns,
    redact,
    redacting_factory,
)

if TYPE_CHECKING:
    from pytest_amipolicy.completeness import Completeness
    from pytest_amipolicy.facts import Facts
    from pytest_amipolicy.runtime import TargetRun
    from pytest_amipolicy.settings import Settings

logger = logging.getLogger(__name__)

# Bump when a field changes meaning or is removed; adding fields keeps it.
# 2: "check_date", "environment" and "targets" were added ("scripts",
#    "cleanup", "complete", "interrupted", "not_run", "selection" and
#    "own_tests" came later, without a bump).
SCHEMA_VERSION = 2

# The script each platform's facts are gathered with, in pytest_amipolicy/facts.
GATHER_SCRIPTS = {"linux": "linux.sh", "windows": "windows.ps1"}

# Libraries that reached the machines, by the platform that needs them.
PLATFORM_TOOLS = {"windows": ("pywinrm",)}

# Keys of a target description, in the order a reader wants them, with the
# label the HTML report shows.
TARGET_LABELS = {
    "kind": "Kind",
    "image_path": "Image path",
    "image_kind": "Image kind",
    "image_bytes": "Image size (bytes)",
    "image_sha256": "Image sha256",
    "prepared_by": "Image changed before boot by",
    "ami_id": "AMI id",
    "ami_name": "AMI name",
    "owner": "Owner",
    "region": "Region",
    "created": "Created",
    "architecture": "Architecture",
    "instance_id": "Instance id",
    "instance_type": "Instance type",
    "os_release": "OS release",
    "platform": "Platform",
    "login_user": "Login user",
    "host_key": "SSH host key",
    "boot_seconds": "Boot seconds",
    "not_checked": "Not checked",
}

# Image record field -> description key.
IMAGE_FIELDS = {
    "ImageId": "ami_id",
    "Name": "ami_name",
    "OwnerId": "owner",
    "CreationDate": "created",
    "Architecture": "architecture",
}


class EvidenceFilter:
    """Redacts every report where it is made and keeps JUnit properties small.

    Registered on every process (xdist workers included) when a target is named.
    """

    def __init__(self, settings: Settings) -> None:
        self.patterns = compile_patterns(settings.redact)
        self._factory: LogRecordFactory | None = None
        self._previous_factory: LogRecordFactory | None = None

    def pytest_configure(self, config: pytest.Config) -> None:
        # Live logging (log_cli) and --log-file write records straight to their
        # handlers, never through a report: clean each record as it is made.
        self._previous_factory = logging.getLogRecordFactory()
        self._factory = redacting_factory(self._previous_factory, self.patterns)
        logging.setLogRecordFactory(self._factory)

    def pytest_unconfigure(self, config: pytest.Config) -> None:
        # Another plugin may have wrapped ours since; leave its factory alone.
        previous, self._previous_factory = self._previous_factory, None
        if previous is not None and logging.getLogRecordFactory() is self._factory:
            logging.setLogRecordFactory(previous)
        self._factory = None

    @pytest.hookimpl(wrapper=True, tryfirst=True)
    def pytest_runtest_makereport(
        self, item: pytest.Item, call: pytest.CallInfo[None]
    ) -> Generator[None, pytest.TestReport, pytest.TestReport]:
        report = yield

        # Outermost wrapper: the plugin's own wrapper has already replaced the
        # traceback of a policy item with its verdict text.
        self._redact(report)

        # JUnit XML writes the teardown report's properties with str(); the
        # evidence dicts would land there whole and unreadable.
        if report.when == "teardown":
            report.user_properties = junit_properties(report.user_properties)
        return report

    def _redact(self, report: pytest.TestReport) -> None:
        report.sections = [
            (title, redact(content, self.patterns))
            for title, content in report.sections
        ]
        report.user_properties = [
            (name, redact(value, self.patterns))
            for name, value in report.user_properties
        ]

        # A skip's reason is a (path, line, message) tuple the terminal folds.
        if report.longrepr is None or isinstance(report.longrepr, (str, tuple)):
            report.longrepr = redact(report.longrepr, self.patterns)
            return

        # A traceback object keeps its layout unless something had to go.
        text = str(report.longrepr)
        clean = redact(text, self.patterns)
        if clean != text:
            report.longrepr = clean


def junit_properties(properties: list[tuple[str, Any]]) -> list[tuple[str, Any]]:
    """Replace the record and target dicts by short string properties."""
    kept: list[tuple[str, Any]] = []
    for name, value in properties:
        if name == PROPERTY and isinstance(value, dict):
            kept.append((PROPERTY + "_policy", str(value.get("policy", ""))))
            kept.append((PROPERTY + "_verdict", str(value.get("verdict", ""))))
            kept.append((PROPERTY + "_target", str(value.get("target", ""))))
        elif name == TARGET_PROPERTY and isinstance(value, dict):
            continue
        elif name == NOT_CHECKED_PROPERTY and isinstance(value, dict):
            kept.append((name, str(value.get("reason", ""))))
        elif name == OWN_TEST_PROPERTY:
            # The same property a policy's test case has for its target.
            if value:
                kept.append((PROPERTY + "_target", str(value)))
        else:
            kept.append((name, value))
    return kept


# What was last attached for each target run, so that a description is sent
# again only when it has grown (the first items may judge before a launch).
_described: weakref.WeakKeyDictionary[TargetRun, dict[str, str]] = (
    weakref.WeakKeyDictionary()
)


def target_property(run: TargetRun) -> tuple[str, dict[str, Any]] | None:
    """The user property describing the target, if it changed since last attached."""
    description = describe_target(run)
    if _described.get(run) == description:
        return None

    _described[run] = description
    return TARGET_PROPERTY, {"target": run.label, "details": description}


def describe_target(run: TargetRun) -> dict[str, str]:
    """What is known of a target without asking it anything new.

    Only what the run already holds is read: asking the target again could
    call EC2 or launch an instance. Absent values are left out.
    """
    found: dict[str, Any] = {"kind": run.target.kind}
    known = run.known_facts()

    # A local image says which file or tree it was (ImageTarget.source).
    source = getattr(run.target, "source", None)
    if isinstance(source, dict):
        found.update(source)
    details = dict(run.connection.details or {}) if run.connection else {}

    image = details.get("image") or next(
        (facts.image for facts in known if facts.image), None
    )
    for field, key in IMAGE_FIELDS.items():
        found[key] = (image or {}).get(field)

    found["region"] = (
        details.get("region")
        or next((facts.region for facts in known if facts.region), None)
        or getattr(run.target, "region", None)
    )
    found["instance_id"] = details.get("instance_id")
    found["instance_type"] = details.get("instance_type")
    found["host_key"] = details.get("host_key")
    if details.get("boot_seconds") is not None:
        found["boot_seconds"] = f"{float(details['boot_seconds']):.1f}"

    if run.connection is not None:
        found["platform"] = run.connection.platform
        found["login_user"] = run.connection.login_user
    found["os_release"] = next(
        (name for facts in known if (name := os_release(facts))), None
    )

    # A host or a local image has no EC2 record: the booted system says.
    if not found["architecture"]:
        found["architecture"] = next(
            (machine for facts in known if (machine := booted_machine(facts))), None
        )

    return {
        key: str(found[key])
        for key in TARGET_LABELS
        if found.get(key) not in (None, "")
    }


def booted_machine(facts: Facts) -> str | None:
    """The booted system's architecture, in EC2's words where they are known."""
    return kernel_machine(facts) or windows_architecture(facts)


def os_release(facts: Facts) -> str | None:
    """The OS name and version from gathered facts, if they hold one."""
    for name in ("os-release", "os_release", "usr-lib-os-release"):
        section = facts.sections.get(name)
        if section is None or not section.ok:
            continue
        fields = dict(
            line.split("=", 1) for line in section.output.splitlines() if "=" in line
        )
        pretty = fields.get("PRETTY_NAME") or fields.get("NAME")
        if pretty:
            return pretty.strip().strip("\"'")

    system = windows_os(facts)
    if system is not None:
        caption = str(system.get("caption") or "").strip()
        version = str(system.get("version") or "").strip()
        return " ".join(part for part in (caption, version) if part) or None
    return None


def windows_os(facts: Facts) -> dict[str, Any] | None:
    """The ``os`` object of the Windows facts, if they hold a readable one."""
    windows = facts.sections.get("windows")
    if windows is None or not windows.ok:
        return None
    try:
        system = json.loads(windows.output).get("os")
    except (ValueError, AttributeError):
        return None
    return system if isinstance(system, dict) else None


# PROCESSOR_ARCHITECTURE -> the name EC2 gives the architecture.
WINDOWS_ARCHITECTURES = {"AMD64": "x86_64", "ARM64": "arm64", "X86": "i386"}


def windows_architecture(facts: Facts) -> str | None:
    """x86_64 or arm64 from the Windows facts; OSArchitecture's words otherwise."""
    system = windows_os(facts)
    if system is None:
        return None

    processor = str(system.get("processor_architecture") or "").upper()
    if processor in WINDOWS_ARCHITECTURES:
        return WINDOWS_ARCHITECTURES[processor]
    return str(system.get("architecture") or "").strip() or None


def kernel_machine(facts: Facts) -> str | None:
    """The machine hardware name ``uname -m`` gave, if the facts hold it."""
    section = facts.sections.get("uname")
    if section is None or not section.ok:
        return None

    # The section runs "uname -srm": kernel name, release, then the machine.
    words = section.output.split()
    return words[2] if len(words) == 3 else None


@functools.cache
def _tool_versions(extra: tuple[str, ...]) -> tuple[tuple[str, str], ...]:
    # Looking a distribution up scans sys.path: once per process is enough.
    return tuple(tool_versions_uncached(extra).items())


def tool_versions(platforms: Iterable[str] = ()) -> dict[str, str]:
    """Versions of the plugin and of the libraries that did the checking.

    ``platforms`` are those of the checked targets: the library that reached
    a Windows machine (pywinrm) is named only when one was checked.
    """
    extra = sorted(
        {tool for platform in platforms for tool in PLATFORM_TOOLS.get(platform, ())}
    )
    return dict(_tool_versions(tuple(extra)))


def tool_versions_uncached(extra: tuple[str, ...] = ()) -> dict[str, str]:
    versions = {"pytest-amipolicy": __version__}
    for distribution in ("pytest", "pytest-testinfra", "boto3", *extra):
        try:
            versions[distribution] = importlib.metadata.version(distribution)
        except importlib.metadata.PackageNotFoundError:
            logger.debug(
                "%s is not installed; its version is not reported", distribution
            )
    return versions


class TargetLog:
    """Target descriptions and policy records, as they arrive in reports."""

    def __init__(self) -> None:
        self.targets: dict[str, dict[str, str]] = {}
        self.records: list[dict[str, Any]] = []
        self.closed: list[str] = []

    def take(self, report: pytest.TestReport) -> dict[str, Any] | None:
        """Note what ``report`` carries; return its policy record, if new."""
        record = None
        for name, value in getattr(report, "user_properties", ()):
            if name == TARGET_PROPERTY and isinstance(value, dict):
                label = str(value.get("target", ""))
                self.targets.setdefault(label, {}).update(value.get("details", {}))
            elif name == PROPERTY and report.when == "setup":
                record = value
                self.records.append(value)
            elif name == NOT_CHECKED_PROPERTY and isinstance(value, dict):
                # Why the target was never opened, beside what is known of it.
                label = str(value.get("target", ""))
                details = self.targets.setdefault(label, {})
                details.setdefault("not_checked", str(value.get("reason", "")))
            elif name == CLOSED_PROPERTY and report.when == "teardown":
                self.closed.extend(value)
        return record

    def platforms(self) -> list[str]:
        """The platforms of the targets that were reached, each once."""
        return sorted(
            {
                details["platform"]
                for details in self.targets.values()
                if details.get("platform")
            }
        )


@dataclass(frozen=True)
class FactScript:
    """The script a platform's facts were gathered with, and its digest."""

    platform: str
    path: str
    sha256: str
    lines: int
    text: str


def fact_scripts(platforms: Iterable[str]) -> list[FactScript]:
    """The fact-gathering script of each platform in ``platforms``, in order."""
    scripts = []
    for platform in sorted(set(platforms)):
        name = GATHER_SCRIPTS.get(platform)
        if name is None:
            continue

        content = (
            importlib.resources.files("pytest_amipolicy.facts") / name
        ).read_bytes()
        text = content.decode("utf-8")
        scripts.append(
            FactScript(
                platform=platform,
                path=f"pytest_amipolicy/facts/{name}",
                sha256=hashlib.sha256(content).hexdigest(),
                lines=len(text.splitlines()),
                text=text,
            )
        )
    return scripts


class EvidenceWriter:
    """Gathers every policy record and writes them as JSON at the end of the run."""

    def __init__(
        self, path: Path, settings: Settings, completeness: Completeness
    ) -> None:
        self.path = path
        self.settings = settings
        self.completeness = completeness
        self.patterns = compile_patterns(settings.redact)
        self.log = TargetLog()
        self.started = _now()
        self.failure: str | None = None

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        # Reports were redacted where they were made (EvidenceFilter).
        self.log.take(report)

    def note_closed(self, lines: list[str]) -> None:
        """Take cleanup lines of targets closed at the session's end."""
        self.log.closed.extend(redact(lines, self.patterns))

    def document(self) -> dict[str, Any]:
        """The evidence document of what has been reported so far."""
        platforms = self.log.platforms()
        return {
            "schema": SCHEMA_VERSION,
            "tool": {"name": "pytest-amipolicy", "version": __version__},
            "policy_page": POLICY_PAGE,
            "check_date": self.settings.check_date.isoformat(),
            "started": self.started,
            "finished": _now(),
            "environment": redact(tool_versions(platforms), self.patterns),
            # Labels arrive redacted with the records; keys=True keeps that
            # true for whatever else may become a key.
            "targets": redact(self.log.targets, self.patterns, keys=True),
            "scripts": [
                {
                    "platform": script.platform,
                    "name": script.path,
                    "sha256": script.sha256,
                    "lines": script.lines,
                }
                for script in fact_scripts(platforms)
            ],
            "results": self.log.records,
            "cleanup": self.log.closed,
            # A cut-off run must not read as a finished one: what was collected
            # and never judged is named, per target.
            "complete": self.completeness.complete,
            "interrupted": self.completeness.interrupted,
            "not_run": redact(self.completeness.not_run(), self.patterns, keys=True),
            # A run on part of the catalogue must not read as a check of all of it.
            "selection": redact(
                self.completeness.selection(), self.patterns, keys=True
            ),
            # The user's own tests decide nothing about a policy, but a failed
            # one stands against its target.
            "own_tests": redact(self.completeness.own_tests(), self.patterns),
        }

    # After every finisher: the plugin's own has closed what is still open,
    # and anything else must happen whether or not this file is written. A
    # wrapper, so that it also runs when a second interrupt broke off one of
    # them (the completeness tracker, the innermost wrapper, catches it).
    @pytest.hookimpl(wrapper=True, trylast=True)
    def pytest_sessionfinish(
        self, session: pytest.Session
    ) -> Generator[None, list[object], list[object]]:
        result = yield
        self.write(session)
        return result

    def write(self, session: pytest.Session) -> None:
        """Write the document; on failure, keep one line for the summary."""
        text = json.dumps(self.document(), indent=2) + "\n"

        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self.path.write_text(text, encoding="utf-8")
        except OSError as error:
            # One line in the summary, not a traceback: a raise here would also
            # stop the hooks still to run (the HTML report among them).
            logger.debug("writing %s failed", self.path, exc_info=True)
            self.failure = error.strerror or str(error)
            if session.exitstatus == pytest.ExitCode.OK:
                session.exitstatus = pytest.ExitCode.USAGE_ERROR

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        if self.failure is None:
            terminalreporter.write_sep("-", f"amipolicy evidence: {self.path}")
            return

        terminalreporter.write_sep(
            "-",
            f"amipolicy evidence NOT written to {self.path}: {self.failure}; "
            "give --ami-evidence a path in a writable directory",
            red=True,
        )


def read_records(report: Any) -> dict[str, Any] | None:
    """Return the policy record attached to a report, if it has one."""
    for name, value in getattr(report, "user_properties", ()):
        if name == PROPERTY and isinstance(value, dict):
            record: dict[str, Any] = value
            return record
    return None


def _now() -> str:
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
