"""The closing lines of a run in the terminal: per target, what was found and removed.

Registered as a plugin object only when a target is named. It reads the
verdicts from test reports, which reach the controller from xdist workers too.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from typing import TYPE_CHECKING, Any, cast

import pytest

from pytest_amipolicy.items import CLOSED_PROPERTY, PROPERTY

if TYPE_CHECKING:
    from pytest_amipolicy.settings import Settings


class RunSummary:
    """Collects each target's verdicts, remote command count and cleanup lines."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.verdicts: dict[str, Counter[str]] = defaultdict(Counter)
        self.commands: dict[str, int] = {}
        self.removed: list[str] = []

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        for name, value in report.user_properties:
            if name == PROPERTY and report.when == "setup":
                self._record(cast("dict[str, Any]", value))
            elif name == CLOSED_PROPERTY and report.when == "teardown":
                self.removed.extend(cast("list[str]", value))

    def _record(self, result: dict[str, Any]) -> None:
        target = result["target"]
        self.verdicts[target][result["verdict"]] += 1
        self.commands[target] = max(
            self.commands.get(target, 0), result.get("remote_commands", 0)
        )

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        if not self.verdicts and not self.removed:
            return

        terminalreporter.section("amipolicy")
        for target, counts in self.verdicts.items():
            verdicts = ", ".join(f"{n} {v}" for v, n in sorted(counts.items()))
            commands = self.commands.get(target, 0)
            terminalreporter.write_line(
                f"{target}: {verdicts}; {commands} remote "
                f"command{'s' if commands != 1 else ''}"
            )
        for line in self.removed:
            terminalreporter.write_line(f"cleanup: {line}")
