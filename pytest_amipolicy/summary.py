"""The closing lines of a run in the terminal: per target, what was found and removed.

Registered as a plugin object only when a target is named. It reads the
verdicts from test reports, which reach the controller from xdist workers too.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from typing import TYPE_CHECKING, Any, cast

import pytest

from pytest_amipolicy.items import CLOSED_PROPERTY, NOT_CHECKED_PROPERTY, PROPERTY
from pytest_amipolicy.redaction import compile_patterns, redact
from pytest_amipolicy.standings import own_phrases

if TYPE_CHECKING:
    from pytest_amipolicy.completeness import Completeness
    from pytest_amipolicy.settings import Settings


class RunSummary:
    """Collects each target's verdicts, remote command count and cleanup lines."""

    def __init__(self, settings: Settings, completeness: Completeness) -> None:
        self.settings = settings
        self.completeness = completeness
        self.patterns = compile_patterns(settings.redact)
        self.verdicts: dict[str, Counter[str]] = defaultdict(Counter)
        self.commands: dict[str, int] = {}
        self.not_checked: dict[str, str] = {}
        self.removed: list[str] = []

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        for name, value in report.user_properties:
            if name == PROPERTY and report.when == "setup":
                self._record(cast("dict[str, Any]", value))
            elif name == NOT_CHECKED_PROPERTY and report.when == "setup":
                failure = cast("dict[str, str]", value)
                self.not_checked.setdefault(failure["target"], failure["reason"])
            elif name == CLOSED_PROPERTY and report.when == "teardown":
                self.removed.extend(cast("list[str]", value))

    def note_closed(self, lines: list[str]) -> None:
        """Take cleanup lines of targets closed at the session's end."""
        self.removed.extend(lines)

    def _record(self, result: dict[str, Any]) -> None:
        target = result["target"]
        self.verdicts[target][result["verdict"]] += 1
        self.commands[target] = max(
            self.commands.get(target, 0), result.get("remote_commands", 0)
        )

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        # Labels in reports arrive redacted; those the plugin knows itself
        # are redacted the same way, so that both name a target alike.
        not_run = {
            redact(label, self.patterns): len(policy_ids)
            for label, policy_ids in self.completeness.not_run().items()
        }
        expected = {
            redact(label, self.patterns): self.completeness.expected_count(label)
            for label in self.completeness.not_run()
        }
        partial = {
            redact(label, self.patterns): len(policy_ids)
            for label, policy_ids in self.completeness.partial().items()
        }
        own_failures = self.completeness.own_failures()
        targets = list(dict.fromkeys([*self.verdicts, *not_run, *own_failures]).keys())
        if not targets and not self.removed:
            return

        terminalreporter.section("amipolicy")
        if not self.completeness.complete:
            terminalreporter.write_line(self._incomplete_line(), red=True)
        if self.completeness.late_interrupt is not None:
            terminalreporter.write_line(self._late_interrupt_line(), red=True)
        for target in targets:
            terminalreporter.write_line(
                self._target_line(
                    target, not_run, expected, partial, own_failures.get(target)
                )
            )
        for target, reason in self.not_checked.items():
            terminalreporter.write_line(f"{target}: not checked: {reason}", red=True)
        for line in self.removed:
            terminalreporter.write_line(f"cleanup: {line}")

    def _target_line(
        self,
        target: str,
        not_run: dict[str, int],
        expected: dict[str, int],
        partial: dict[str, int],
        own: Counter[str] | None,
    ) -> str:
        counts = self.verdicts.get(target, Counter())
        parts = [", ".join(f"{n} {v}" for v, n in sorted(counts.items()))]
        if target in not_run:
            parts.append(
                f"incomplete: {not_run[target]} of {expected[target]} "
                f"polic{'y' if expected[target] == 1 else 'ies'} not run"
            )
        parts.extend(own_phrases(own or Counter()))
        if target in partial:
            parts.append(
                f"partial check: {partial[target]} of "
                f"{self.completeness.catalogue} policies"
            )
        commands = self.commands.get(target, 0)
        line = "; ".join(part for part in parts if part)
        return f"{target}: {line}; {commands} remote command{'s' * (commands != 1)}"

    def _incomplete_line(self) -> str:
        completeness = self.completeness
        if completeness.interrupted:
            why = "the run was interrupted: "
        elif completeness.stopped:
            why = f"the run stopped early ({completeness.stopped}): "
        else:
            why = ""

        missing = sum(len(ids) for ids in completeness.not_run().values())
        total = len(completeness.expected)
        if completeness.interrupted and not missing:
            return (
                "amipolicy: the run was interrupted while it finished, after every "
                "policy got a verdict; the reports are marked incomplete"
            )
        return (
            f"amipolicy: {why}{missing} of {total} "
            f"polic{'y was' if total == 1 else 'ies were'} not run; "
            "the reports are incomplete"
        )

    def _late_interrupt_line(self) -> str:
        completeness = self.completeness
        again = " again" if completeness.interrupted_before_finish else ""
        why = redact(completeness.late_interrupt or "", self.patterns)
        return (
            f"amipolicy: interrupted{again} while the session finished"
            + (f" ({why})" if why else "")
            + "; the reports were still written"
        )
