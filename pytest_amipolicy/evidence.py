"""The evidence a seller keeps: pytest-html extras and a JSON document.

Both are built from the record each policy item attaches to its reports, so they
work the same under xdist, where the controller writes them once.
"""

from __future__ import annotations

import datetime
import json
import logging
import re
from pathlib import Path
from typing import Any, Optional

import pytest

from pytest_amipolicy import __version__
from pytest_amipolicy.catalogue import POLICY_PAGE
from pytest_amipolicy.items import PROPERTY

logger = logging.getLogger(__name__)

# Bump when a field changes meaning or is removed; adding fields keeps it.
SCHEMA_VERSION = 1


class EvidenceWriter:
    """Gathers every policy record and writes them as JSON at the end of the run."""

    def __init__(self, path: Path, redact: tuple[str, ...] = ()) -> None:
        self.path = path
        self.patterns = [re.compile(pattern) for pattern in redact]
        self.records: list[dict[str, Any]] = []
        self.started = _now()

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        if report.when != "setup":
            return
        for name, value in report.user_properties:
            if name == PROPERTY:
                self.records.append(redact(value, self.patterns))

    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        document = {
            "schema": SCHEMA_VERSION,
            "tool": {"name": "pytest-amipolicy", "version": __version__},
            "policy_page": POLICY_PAGE,
            "started": self.started,
            "finished": _now(),
            "results": self.records,
        }
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.path.write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        terminalreporter.write_sep("-", f"amipolicy evidence: {self.path}")


def redact(value: Any, patterns: list[re.Pattern[str]]) -> Any:
    """Replace every match of the configured patterns in strings of ``value``."""
    if not patterns:
        return value
    if isinstance(value, str):
        for pattern in patterns:
            value = pattern.sub("[redacted]", value)
        return value
    if isinstance(value, dict):
        return {key: redact(item, patterns) for key, item in value.items()}
    if isinstance(value, list):
        return [redact(item, patterns) for item in value]
    return value


def read_records(report: pytest.TestReport) -> Optional[dict[str, Any]]:
    """Return the policy record attached to a report, if it has one."""
    for name, value in report.user_properties:
        if name == PROPERTY:
            record: dict[str, Any] = value
            return record
    return None


def _now() -> str:
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
