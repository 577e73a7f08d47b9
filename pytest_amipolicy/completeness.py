"""Whether every collected policy got a verdict, and why a run stopped short.

A run cut off by Ctrl-C, a signal, ``-x`` or ``--maxfail`` still writes its
reports; without this they would read like a finished run in which the missing
policies simply do not exist. The reports, the JSON evidence and the terminal
summary ask :class:`Completeness` which policies of each target were not run.

The user's own tests (``test_*.py`` beside the built-in policies, through the
plugin's fixtures) are noted here too, with their outcome and target: a target
whose own check failed must not stand as compliant.

The same holds for a run on part of the catalogue (``--ami-policy``, ``-k``,
``-m``): it reads like a full check unless it says which policies it chose,
out of how many, and by what. :class:`Completeness` answers that too.

Registered on every process when a target is named; the controller is the one
whose answers count. There the collected items are known from the session
(no xdist) or from the node ids each worker reports (xdist), and the verdicts
from the setup reports that carry a policy record.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Generator, Sequence
from typing import TYPE_CHECKING, Any

import pytest

from pytest_amipolicy.items import PROPERTY, PolicyItem, item_name

if TYPE_CHECKING:
    from pytest_amipolicy.settings import Settings

# How the policies were chosen: (option or ini key, value as given).
Source = tuple[str, str]

# The user property marking a user's own test (any item not a policy), with
# the label of the target it checks, or "" when it uses none.
OWN_TEST_PROPERTY = "amipolicy_own_test"


class Completeness:
    """Tracks the policy items collected per target and those given a verdict."""

    def __init__(
        self,
        labels: Sequence[str],
        policy_ids: Sequence[str],
        catalogue: int | None = None,
        sources: Sequence[Source] = (),
    ) -> None:
        # Node id -> (target label, policy ID) for every item the plugin can
        # make, with and without the "@label" suffix xdist's loadgroup adds.
        self._known: dict[str, tuple[str, str]] = {}
        for label in labels:
            for policy_id in policy_ids:
                nodeid = f"amipolicy::{item_name(label, policy_id)}"
                self._known[nodeid] = self._known[f"{nodeid}@{label}"] = (
                    label,
                    policy_id,
                )
        self._order = {policy_id: index for index, policy_id in enumerate(policy_ids)}
        self._labels = list(labels)
        # How many policies the catalogue holds, whatever was selected.
        self.catalogue = len(policy_ids) if catalogue is None else catalogue
        self.sources = list(sources)

        self.expected: dict[str, tuple[str, str]] = {}
        self.judged: set[str] = set()
        # Node id -> {"nodeid", "outcome", "target"} of each own test, in order.
        self._own: dict[str, dict[str, str | None]] = {}
        self.interrupted = False
        # Set when an interrupt was raised while the session finished (the
        # run's first Ctrl-C, pytest.exit() or a KeyboardInterrupt from a
        # hook or fixture; later signals only wait): its message.
        self.late_interrupt: str | None = None
        # Whether the run had been interrupted before that one came.
        self.interrupted_before_finish = False
        # pytest's own words when -x or --maxfail stopped the run.
        self.stopped: str | None = None

    @classmethod
    def for_run(
        cls,
        config: pytest.Config,
        settings: Settings,
        labels: Sequence[str],
        catalogue: int,
    ) -> Completeness:
        """The tracker of a run, knowing what may have narrowed its selection."""
        return cls(
            labels, settings.policies, catalogue, selection_sources(config, settings)
        )

    def pytest_collection_finish(self, session: pytest.Session) -> None:
        for item in session.items:
            if isinstance(item, PolicyItem):
                self.expected[item.nodeid] = (item.target_label, item.policy.id)

    @pytest.hookimpl(optionalhook=True)
    def pytest_xdist_node_collection_finished(
        self, node: Any, ids: Sequence[str]
    ) -> None:
        # The controller collects nothing itself; every worker reports the
        # same ids after deselection.
        for nodeid in ids:
            known = self._known.get(nodeid)
            if known is not None:
                self.expected[nodeid] = known

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        for name, value in report.user_properties:
            if name == PROPERTY and report.when == "setup":
                self.judged.add(report.nodeid)
            elif name == OWN_TEST_PROPERTY:
                self._note_own(report, str(value) or None)
                break

    def _note_own(self, report: pytest.TestReport, target: str | None) -> None:
        test = self._own.setdefault(
            report.nodeid, {"nodeid": report.nodeid, "outcome": None, "target": target}
        )
        outcome = own_outcome(test["outcome"], report)
        if outcome is not None:
            test["outcome"] = outcome

    def pytest_keyboard_interrupt(self, excinfo: pytest.ExceptionInfo[Any]) -> None:
        # Ctrl-C, SIGTERM (the plugin turns it into an interrupt), pytest.exit().
        self.interrupted = True

    # The innermost wrapper: every finisher (target teardown, fixture
    # teardown, the HTML report) runs inside it, and the JSON writer and the
    # HTML report's rescue (outer wrappers) after it.
    @pytest.hookimpl(wrapper=True, trylast=True)
    def pytest_sessionfinish(
        self, session: pytest.Session, exitstatus: int
    ) -> Generator[None, list[object], list[object]]:
        if exitstatus == pytest.ExitCode.INTERRUPTED:
            self.interrupted = True

        stop = session.shouldfail or session.shouldstop
        if stop:
            self.stopped = stop if isinstance(stop, str) else "stopped early"

        try:
            return (yield)
        except (KeyboardInterrupt, pytest.exit.Exception) as interrupt:
            # Not let through: pytest would end on a traceback before the
            # reports were written. They are written, and say interrupted.
            self.note_interrupt(session, interrupt)
            return []

    def note_interrupt(self, session: pytest.Session, interrupt: BaseException) -> None:
        """Record an interrupt that came while the session was finishing."""
        if self.late_interrupt is None:
            self.interrupted_before_finish = self.interrupted
            message = getattr(interrupt, "msg", None) or str(interrupt)
            self.late_interrupt = message.strip()
        self.interrupted = True

        returncode = getattr(interrupt, "returncode", None)
        session.exitstatus = (
            pytest.ExitCode.INTERRUPTED if returncode is None else returncode
        )

    def not_run(self) -> dict[str, list[str]]:
        """Target label -> the IDs of its collected policies that got no verdict."""
        missing: dict[str, list[str]] = {}
        for nodeid, (label, policy_id) in self.expected.items():
            if nodeid not in self.judged:
                missing.setdefault(label, []).append(policy_id)

        for policy_ids in missing.values():
            policy_ids.sort(key=lambda policy_id: self._order.get(policy_id, 0))
        return missing

    def expected_count(self, label: str) -> int:
        """How many policies of ``label`` were collected to run."""
        return sum(1 for known, _ in self.expected.values() if known == label)

    @property
    def complete(self) -> bool:
        return not self.interrupted and not self.not_run()

    def own_tests(self) -> list[dict[str, str | None]]:
        """The user's own tests that reported, each with its outcome and target.

        Their target labels are as the reports carry them: already redacted.
        """
        return [dict(test) for test in self._own.values() if test["outcome"]]

    def own_failures(self) -> dict[str, Counter[str]]:
        """Target label -> how many own tests of it failed or ended in an error."""
        failures: dict[str, Counter[str]] = {}
        for test in self._own.values():
            target, outcome = test["target"], test["outcome"]
            if target is not None and outcome in ("failed", "error"):
                failures.setdefault(target, Counter())[outcome] += 1
        return failures

    def selected(self) -> dict[str, list[str]]:
        """Target label -> the IDs of the policies collected for it, in order.

        Every target named is present, one whose policies were all deselected
        with an empty list.
        """
        chosen: dict[str, list[str]] = {label: [] for label in self._labels}
        for label, policy_id in self.expected.values():
            chosen.setdefault(label, []).append(policy_id)

        for policy_ids in chosen.values():
            policy_ids.sort(key=lambda policy_id: self._order.get(policy_id, 0))
        return chosen

    def partial(self) -> dict[str, list[str]]:
        """The targets checked on only part of the catalogue, with their IDs."""
        return {
            label: policy_ids
            for label, policy_ids in self.selected().items()
            if len(policy_ids) < self.catalogue
        }

    def selected_by(self) -> list[str]:
        """How the selection was narrowed, as the user would write it."""
        if not self.sources:
            return ["a deselecting option or plugin"]
        return [describe_source(by, value) for by, value in self.sources]

    def selection(self) -> dict[str, Any]:
        """The JSON evidence's account of which policies were chosen, and how."""
        return {
            "partial": bool(self.partial()),
            "catalogue": self.catalogue,
            "selected_by": [{"by": by, "value": value} for by, value in self.sources],
            "checked": self.selected(),
        }


def own_outcome(previous: str | None, report: pytest.TestReport) -> str | None:
    """A test's outcome after ``report``, in pytest's words; None while unknown.

    A failed setup or teardown is an error, as pytest counts it, unless the
    test itself already failed.
    """
    expected_failure = hasattr(report, "wasxfail")
    if report.skipped:
        return "xfailed" if expected_failure else "skipped"
    if report.when == "call":
        if report.failed:
            return "failed"
        return "xpassed" if expected_failure else "passed"
    if report.failed:
        return previous if previous == "failed" else "error"
    return previous


def selection_sources(config: pytest.Config, settings: Settings) -> list[Source]:
    """Every option given that may check fewer policies than the catalogue has."""
    sources: list[Source] = []
    if settings.policy_patterns:
        sources.append(
            (settings.policy_patterns_source, ",".join(settings.policy_patterns))
        )

    for option, dest in (("-k", "keyword"), ("-m", "markexpr")):
        value = config.getoption(dest, None)
        if value:
            sources.append((option, str(value)))
    deselected = config.getoption("deselect", None)
    if deselected:
        sources.append(("--deselect", " ".join(deselected)))
    if config.getoption("lf", False):
        sources.append(("--lf", ""))
    return sources


def describe_source(by: str, value: str) -> str:
    """One way of selecting, as it is written on a command line or in the ini."""
    if by.startswith("--ami"):
        return f"{by}={value}"
    if by.startswith("amipolicy_"):
        return f"{by} = {value}"
    return f"{by} {value!r}" if value else by
