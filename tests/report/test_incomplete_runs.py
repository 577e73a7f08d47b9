"""A run cut short says so in the HTML report, the JSON evidence and the terminal.

The scenario's two fake machines have eight policies each. A plugin module of
the pytester directory interrupts the run (as Ctrl-C would) when the fourth
policy starts, or the run stops at the first failure with ``-x``; either way
the missing policies are named and no target reads as compliant.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.report.conftest import (
    BAD,
    GOOD,
    INTERRUPT_AT_FOURTH_POLICY,
    needs_chromium,
    rendered,
    run_report,
    texts_by,
)

POLICIES = [
    "AMI-ARCH",
    "SSH-PASSWORD",
    "SSH-ROOT",
    "AWS-KEYS",
    "UPDATES",
    "WIN-GUEST",
    "MANUAL-CONSENT",
    "MANUAL-LIMITS",
]

BREAK_ONE_SETUP = """
import pytest


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item):
    if item.name.endswith("-SSH-ROOT]") and "192.0.2.10" in item.name:
        raise RuntimeError("a plugin of the user's broke this item")
"""


# The fake machines remove nothing when closed; these say what they removed,
# as an --ami or --ami-image target would.
CLOSE_WITH_A_LINE = """
from pytest_amipolicy.targets.host import HostTarget


def _close(self, progress):
    return [f"{self.label}: instance i-0123456789abcdef0 terminated"]


HostTarget.close = _close
"""


def evidence(pytester: pytest.Pytester) -> dict[str, Any]:
    document: dict[str, Any] = json.loads(
        (pytester.path / "evidence.json").read_text(encoding="utf-8")
    )
    return document


def interrupted_run(pytester: pytest.Pytester) -> pytest.RunResult:
    pytester.makepyfile(interrupter=INTERRUPT_AT_FOURTH_POLICY)
    return run_report(
        pytester,
        "-p",
        "interrupter",
        "-p",
        "no:randomly",
        "--ami-evidence=evidence.json",
    )


def test_an_interrupted_run_marks_its_evidence_incomplete_and_names_what_did_not_run(
    scenario_dir: pytest.Pytester,
) -> None:
    result = interrupted_run(scenario_dir)

    document = evidence(scenario_dir)
    assert result.ret == pytest.ExitCode.INTERRUPTED
    assert document["complete"] is False
    assert document["interrupted"] is True
    assert document["not_run"] == {GOOD: POLICIES[3:], BAD: POLICIES}
    assert len(document["results"]) == 3
    result.stdout.fnmatch_lines(
        [
            "amipolicy: the run was interrupted: 13 of 16 policies were not run; "
            "the reports are incomplete",
            f"{GOOD}: 2 pass, 1 skip; incomplete: 5 of 8 policies not run; *",
            f"{BAD}: incomplete: 8 of 8 policies not run; 0 remote commands",
        ]
    )


@needs_chromium
def test_what_an_interrupted_run_tore_down_at_its_end_is_in_every_report(
    scenario_dir: pytest.Pytester,
) -> None:
    scenario_dir.makepyfile(
        closer=CLOSE_WITH_A_LINE, interrupter=INTERRUPT_AT_FOURTH_POLICY
    )

    result = run_report(
        scenario_dir, "-p", "closer", "-p", "interrupter", "--ami-evidence=e.json"
    )

    assert result.ret == pytest.ExitCode.INTERRUPTED
    lines = [
        f"{target}: instance i-0123456789abcdef0 terminated" for target in (GOOD, BAD)
    ]
    document = json.loads((scenario_dir.path / "e.json").read_text(encoding="utf-8"))
    assert sorted(document["cleanup"]) == sorted(lines)
    result.stdout.fnmatch_lines([f"cleanup: {line}" for line in lines])
    texts = texts_by(rendered(scenario_dir.path / "report.html"), key="class")
    assert all(line in texts["amipolicy-cleanup"] for line in lines)


@needs_chromium
def test_an_interrupted_runs_html_report_has_a_banner_and_calls_nothing_compliant(
    scenario_dir: pytest.Pytester,
) -> None:
    interrupted_run(scenario_dir)

    texts = texts_by(rendered(scenario_dir.path / "report.html"), key="class")

    banner = texts["amipolicy-incomplete"]
    assert banner.startswith(
        "Incomplete evidence The run was interrupted before every policy was "
        "checked: 13 were not run."
    )
    assert f"{GOOD}: 5 of 8 not run: AWS-KEYS, UPDATES, WIN-GUEST" in banner
    counts = texts["amipolicy-summary"]
    assert f"{GOOD} 2 0 0 1 0 incomplete: 5 of 8 policies not run" in counts
    assert f"{BAD} 0 0 0 0 0 incomplete: 8 of 8 policies not run" in counts
    assert "compliant on every checked policy" not in counts


@needs_chromium
def test_a_run_stopped_by_the_first_failure_is_incomplete_but_not_interrupted(
    scenario_dir: pytest.Pytester,
) -> None:
    result = run_report(
        scenario_dir, "-x", "-p", "no:randomly", "--ami-evidence=evidence.json"
    )

    document = evidence(scenario_dir)
    texts = texts_by(rendered(scenario_dir.path / "report.html"), key="class")
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    assert document["complete"] is False
    assert document["interrupted"] is False
    assert document["not_run"] == {BAD: POLICIES[2:]}
    assert texts["amipolicy-incomplete"].startswith(
        "Incomplete evidence The run stopped early (stopping after 1 failures)"
    )
    counts = texts["amipolicy-summary"]
    assert (
        f"{BAD} 0 1 0 1 0 not compliant: 1 policy failure(s); incomplete: 6 of 8 "
        "policies not run" in counts
    )
    # The machine whose every policy ran keeps its standing.
    assert f"{GOOD} 4 0 0 2 2 compliant on every checked policy" in counts


def test_a_finished_run_is_complete_with_nothing_left_out(
    scenario_dir: pytest.Pytester,
) -> None:
    result = run_report(scenario_dir, "--ami-evidence=evidence.json")

    document = evidence(scenario_dir)
    assert document["complete"] is True
    assert document["interrupted"] is False
    assert document["not_run"] == {}
    assert "incomplete" not in result.stdout.str()
    page = (scenario_dir.path / "report.html").read_text(encoding="utf-8")
    assert "Incomplete evidence" not in page


def test_under_xdist_a_policy_that_never_got_a_verdict_is_listed_as_not_run(
    scenario_dir: pytest.Pytester,
) -> None:
    pytest.importorskip("xdist")
    scenario_dir.makepyfile(breaker=BREAK_ONE_SETUP)

    run_report(scenario_dir, "-p", "breaker", "-n", "2", "--ami-evidence=evidence.json")

    document = evidence(scenario_dir)
    assert document["complete"] is False
    assert document["interrupted"] is False
    assert document["not_run"] == {GOOD: ["SSH-ROOT"]}
