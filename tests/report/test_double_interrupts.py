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


# Real signals, each sent by the run to itself: the first when the fourth
# policy starts, the next while pytest still handles the first (formatting
# its traceback), as a quick second Ctrl-C lands; and one more in the teardown
# of each target. A shell's background job may ignore SIGINT, so the module
# gives Python's handler back first, as an interactive pytest has it.
SIGNALS_WHILE_THE_RUN_STOPS = """
import os
import signal
import time

import pytest
from pytest_amipolicy.targets.host import HostTarget

signal.signal(signal.SIGINT, signal.default_int_handler)
started = []


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item):
    started.append(item.nodeid)
    if len(started) == 4:
        os.kill(os.getpid(), signal.SIGINT)
        time.sleep(30)


@pytest.hookimpl(tryfirst=True)
def pytest_keyboard_interrupt(excinfo):
    os.kill(os.getpid(), signal.{later})


def close(self, progress):
    os.kill(os.getpid(), signal.{later})
    return [f"{{self.label}}: machine stopped"]


HostTarget.close = close
"""

WAIT_LINE = (
    "amipolicy: stopping: the teardown finishes first (send SIGKILL to abandon it; "
    "pytest --ami-cleanup and the next --ami-image run remove what is left)"
)


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


@pytest.mark.parametrize("later", ["SIGINT", "SIGTERM"])
def test_signals_after_the_first_wait_for_the_teardown_and_leave_no_traceback(
    scenario_dir: pytest.Pytester, later: str
) -> None:
    scenario_dir.makepyfile(signals=SIGNALS_WHILE_THE_RUN_STOPS.format(later=later))

    result = run_report(
        scenario_dir, "-p", "signals", "-p", "no:randomly", "--ami-evidence=e.json"
    )

    output = result.stdout.str() + result.stderr.str()
    document = json.loads((scenario_dir.path / "e.json").read_text(encoding="utf-8"))
    lines = [f"{GOOD}: machine stopped", f"{BAD}: machine stopped"]
    assert result.ret == pytest.ExitCode.INTERRUPTED, output
    assert "Traceback" not in output
    assert document["interrupted"] is True
    assert sorted(document["cleanup"]) == sorted(lines)
    # Once while pytest handled the first interrupt, once per teardown.
    assert result.stdout.str().count(WAIT_LINE) == 3
    assert "interrupted again" not in output
    result.stdout.fnmatch_lines(
        ["amipolicy: the run was interrupted: 13 of 16 policies were not run*"]
    )
    result.stdout.fnmatch_lines([f"cleanup: {line}" for line in lines])
