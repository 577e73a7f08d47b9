"""A second interrupt while the run finishes still leaves consistent reports.

The first Ctrl-C (raised here as KeyboardInterrupt) stops the run at the
fourth policy; the second comes while the session finishes: in the teardown
of a target, of a fixture of the user's, or as ``pytest.exit()``. Each time
the JSON says interrupted, the HTML report says the run was interrupted, the
exit status is 2, and no traceback is printed.
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

# The first teardown of a target is interrupted; the retry at exit succeeds.
SECOND_IN_TARGET_TEARDOWN = """
from pytest_amipolicy.targets.host import HostTarget

interrupted = []
_close = HostTarget.close


def close(self, progress):
    if not interrupted:
        interrupted.append(self.label)
        raise KeyboardInterrupt("a second Ctrl-C")
    return _close(self, progress)


HostTarget.close = close
"""

SECOND_IN_A_FIXTURE_TEARDOWN = """
import pytest


@pytest.fixture(scope="session")
def workspace():
    yield
    raise KeyboardInterrupt("a second Ctrl-C")


def test_uses_the_workspace(workspace, amipolicy_facts):
    raise KeyboardInterrupt("the first Ctrl-C")
"""

EXIT_IN_TARGET_TEARDOWN = """
from pathlib import Path

import pytest
from pytest_amipolicy.targets.host import HostTarget


def close(self, progress):
    with open(Path(__file__).with_name("closed.txt"), "a") as closed:
        closed.write(self.label + "\\n")
    pytest.exit(
        f"interrupted while {self.label} was torn down; the teardown was "
        "finished first",
        returncode=pytest.ExitCode.INTERRUPTED,
    )


HostTarget.close = close
"""


def evidence(pytester: pytest.Pytester) -> dict[str, Any]:
    document: dict[str, Any] = json.loads(
        (pytester.path / "evidence.json").read_text(encoding="utf-8")
    )
    return document


def twice_interrupted(pytester: pytest.Pytester, second: str) -> pytest.RunResult:
    if second == "fixture":
        pytester.makepyfile(test_own=SECOND_IN_A_FIXTURE_TEARDOWN)
        plugins = []
    else:
        pytester.makepyfile(
            first=INTERRUPT_AT_FOURTH_POLICY,
            second=SECOND_IN_TARGET_TEARDOWN
            if second == "target"
            else EXIT_IN_TARGET_TEARDOWN,
        )
        plugins = ["-p", "first", "-p", "second"]
    return run_report(
        pytester, *plugins, "-p", "no:randomly", "--ami-evidence=evidence.json"
    )


@pytest.mark.parametrize("second", ["target", "fixture", "exit"])
def test_a_second_interrupt_still_writes_evidence_marked_interrupted(
    scenario_dir: pytest.Pytester, second: str
) -> None:
    result = twice_interrupted(scenario_dir, second)

    document = evidence(scenario_dir)
    assert result.ret == pytest.ExitCode.INTERRUPTED
    assert document["interrupted"] is True
    assert document["complete"] is False
    assert "Traceback" not in result.stdout.str() + result.stderr.str()
    result.stdout.fnmatch_lines(["amipolicy: the run was interrupted*"])


def test_a_target_whose_teardown_was_interrupted_is_closed_again_at_exit(
    scenario_dir: pytest.Pytester,
) -> None:
    result = twice_interrupted(scenario_dir, "target")

    result.stdout.fnmatch_lines(
        ["amipolicy: interrupted again while the session finished (a second Ctrl-C)*"]
    )
    assert result.stdout.str().count("Generated html report") == 1


def test_an_exit_in_one_targets_teardown_does_not_strand_the_others(
    scenario_dir: pytest.Pytester,
) -> None:
    result = twice_interrupted(scenario_dir, "exit")

    closed = (scenario_dir.path / "closed.txt").read_text().split()
    # Both were torn down at the session's finish: none was left for the
    # last try at exit, which would say it was interrupted again.
    assert closed == [GOOD, BAD]
    assert "the teardown was interrupted again" not in result.stdout.str()


@needs_chromium
@pytest.mark.parametrize("second", ["target", "fixture"])
def test_a_second_interrupt_leaves_an_html_report_that_says_interrupted(
    scenario_dir: pytest.Pytester, second: str
) -> None:
    twice_interrupted(scenario_dir, second)

    texts = texts_by(rendered(scenario_dir.path / "report.html"), key="class")

    banner = texts["amipolicy-incomplete"]
    assert banner.startswith("Incomplete evidence The run was interrupted")
    assert "The run ended" not in banner
    assert "compliant on every checked policy" not in texts["amipolicy-summary"]
    if second == "target":
        assert f"{GOOD}: 5 of 8 not run" in banner
