"""A target is opened once, closed after the last item that needs it, never reopened.

The pytester runs replace opening a host and gathering its facts with fakes
that log every open and close, so the order of the two shows in the log. The
unit-sized tests drive :class:`TargetRun` with a fake target.
"""

from __future__ import annotations

import traceback
from typing import Any

import paramiko
import pytest

from pytest_amipolicy.catalogue import get_policy
from pytest_amipolicy.errors import CloudError, TargetError
from pytest_amipolicy.runtime import TargetRun, judge
from pytest_amipolicy.settings import Settings
from pytest_amipolicy.targets import Connection, Progress, Target
from pytest_amipolicy.verdicts import Verdict

TARGET = "ssh://admin@192.0.2.10"

FAKE_MACHINES = """
import pytest

from pytest_amipolicy import runtime
from pytest_amipolicy.errors import TargetError
from pytest_amipolicy.facts import Facts
from pytest_amipolicy.items import PolicyItem
from pytest_amipolicy.targets import Connection
from pytest_amipolicy.targets.host import HostTarget


def _log(line):
    with open("machines.log", "a", encoding="utf-8") as log:
        log.write(line + "\\n")


def _open(self, progress):
    _log("open " + self.label)
    if self.spec.endswith("unreachable"):
        raise TargetError(self.label, "no answer from the machine")
    return Connection(host="a testinfra host", platform="linux", login_user="admin")


def _close(self, progress):
    _log("close " + self.label)
    return []


def _gather(run, progress):
    return Facts(target=run.label, platform="linux", login_user="admin")


HostTarget.open = _open
HostTarget.close = _close
runtime.gather_facts = _gather


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(items):
    # The user's tests last, as --ff, random ordering or a reordering plugin
    # may well put them.
    items.sort(key=lambda item: not isinstance(item, PolicyItem))
"""

USER_TESTS = """
def test_the_host_is_there(amipolicy_host):
    assert amipolicy_host == "a testinfra host"


def test_the_facts_name_the_target(amipolicy_facts):
    assert amipolicy_facts.login_user == "admin"
"""


def run_plugin(pytester: pytest.Pytester, *args: str) -> pytest.RunResult:
    pytester.makeconftest(FAKE_MACHINES)
    pytester.makepyfile(test_mine=USER_TESTS)
    return pytester.runpytest_subprocess(
        "-p", "no:cacheprovider", "-p", "no:randomly", "-v", *args
    )


def machine_log(pytester: pytest.Pytester) -> list[str]:
    """The opens and closes, without the target when the run has only one."""
    lines = (pytester.path / "machines.log").read_text(encoding="utf-8").splitlines()
    return [line.split()[0] if line.endswith(TARGET) else line for line in lines]


def test_a_users_test_running_after_the_policies_keeps_the_target_open_until_it_ends(
    pytester: pytest.Pytester,
) -> None:
    # AMI-ARCH alone never opens a host: only the user's tests do.
    result = run_plugin(pytester, f"--ami-host={TARGET}", "--ami-policy=AMI-ARCH")

    result.assert_outcomes(passed=2, skipped=1)
    assert machine_log(pytester) == ["open", "close"]
    result.stdout.re_match_lines([r".*policy\[.*AMI-ARCH\].*SKIPPED", r".*test_mine"])


def test_a_target_closed_after_its_last_check_and_the_users_tests_is_closed_once(
    pytester: pytest.Pytester,
) -> None:
    result = run_plugin(pytester, f"--ami-host={TARGET}", "--ami-policy=SUDO,EOL")

    assert result.ret != pytest.ExitCode.INTERNAL_ERROR
    assert machine_log(pytester) == ["open", "close"]


def test_an_unreachable_target_fails_a_users_test_in_one_line_naming_it(
    pytester: pytest.Pytester,
) -> None:
    target = "ssh://admin@unreachable"

    result = run_plugin(pytester, f"--ami-host={target}", "--ami-policy=AMI-ARCH")

    result.assert_outcomes(skipped=1, errors=2)
    result.stdout.fnmatch_lines([f"*{target}: no answer from the machine*"])
    assert "plugin.py" not in result.stdout.str()
    assert "Traceback" not in result.stdout.str()
    # Opened once: the failure is kept for the second test.
    assert machine_log(pytester) == [f"open {target}", f"close {target}"]


def test_under_xdist_a_users_test_runs_on_the_worker_that_opened_its_target(
    pytester: pytest.Pytester,
) -> None:
    pytest.importorskip("xdist")
    other = "ssh://admin@192.0.2.20"

    result = run_plugin(
        pytester,
        "-n",
        "2",
        "--dist",
        "load",
        f"--ami-host={TARGET}",
        f"--ami-host={other}",
        "--ami-policy=SUDO,EOL",
    )

    opens = [line for line in machine_log(pytester) if line.startswith("open")]
    result.assert_outcomes(passed=4, errors=4)
    assert sorted(opens) == ["open", f"open {other}"]


class FakeTarget(Target):
    """A target whose open and connection are scripted by the test."""

    kind = "host"

    def __init__(self, host: Any = None, fault: BaseException | None = None) -> None:
        super().__init__("fake://machine", Settings())
        self.host = host
        self.fault = fault
        self.opens = 0

    @property
    def label(self) -> str:
        return self.spec

    def open(self, progress: Progress) -> Connection:
        self.opens += 1
        if self.fault is not None:
            raise self.fault
        return Connection(host=self.host, platform="linux", login_user="root")

    def close(self, progress: Progress) -> list[str]:
        return []


class DroppingHost:
    """A testinfra host whose connection drops at the first command."""

    def run(self, command: str) -> Any:
        raise paramiko.SSHException("SSH session not active")


def quiet(line: str) -> None:
    pass


def test_a_closed_target_is_never_opened_again(pytestconfig: pytest.Config) -> None:
    target = FakeTarget()
    run = TargetRun(target, target.settings, pytestconfig)
    run.close(quiet)

    with pytest.raises(TargetError, match="already closed .* not opened again"):
        run.machine_facts(quiet)

    assert target.opens == 0


def test_a_connection_dropped_while_gathering_is_one_line_and_kept(
    pytestconfig: pytest.Config,
) -> None:
    target = FakeTarget(host=DroppingHost())
    run = TargetRun(target, target.settings, pytestconfig)

    with pytest.raises(TargetError) as first:
        run.machine_facts(quiet)
    with pytest.raises(TargetError) as second:
        run.machine_facts(quiet)

    assert str(first.value).startswith("fake://machine: the connection was lost")
    assert "SSH session not active" in str(first.value)
    assert second.value is first.value
    assert target.opens == 1


@pytest.mark.parametrize("fault", [RuntimeError("a hook broke"), EOFError()])
def test_any_exception_while_opening_becomes_a_kept_target_error(
    pytestconfig: pytest.Config, fault: BaseException
) -> None:
    target = FakeTarget(fault=fault)
    run = TargetRun(target, target.settings, pytestconfig)

    with pytest.raises(TargetError) as first:
        run.machine_facts(quiet)
    with pytest.raises(TargetError):
        run.machine_facts(quiet)

    assert str(first.value).startswith(
        f"fake://machine: opening the target failed: {type(fault).__name__}"
    )
    assert first.value.__cause__ is fault
    assert target.opens == 1


def test_a_kept_failure_raised_again_does_not_carry_the_earlier_raises(
    pytestconfig: pytest.Config,
) -> None:
    target = FakeTarget(fault=TargetError("fake://machine", "connection refused"))
    run = TargetRun(target, target.settings, pytestconfig)

    depths = []
    for _ in range(5):
        with pytest.raises(TargetError) as raised:
            run.machine_facts(quiet)
        depths.append(len(traceback.extract_tb(raised.value.__traceback__)))

    # Raising one object again appends to its traceback; each item would show
    # (and pytest format) every earlier item's frames.
    assert depths[1:] == [depths[1]] * 4
    assert depths[1] <= depths[0]


class UndescribableAmi(FakeTarget):
    """An AMI target whose describe_images call fails (an endpoint out of reach)."""

    kind = "ami"

    def __init__(self) -> None:
        super().__init__()
        self.describes = 0

    def image_record(self) -> dict[str, Any]:
        self.describes += 1
        raise CloudError("cannot reach the EC2 endpoint of us-east-1: refused")


@pytest.mark.parametrize(
    "policies",
    [("AMI-ARCH", "AMI-HVM", "SUDO", "EOL"), ("SUDO", "AMI-ARCH", "AMI-EBS")],
)
def test_a_failed_describe_is_asked_once_and_fails_every_policy_that_needs_it(
    pytestconfig: pytest.Config, policies: tuple[str, ...]
) -> None:
    target = UndescribableAmi()
    run = TargetRun(target, target.settings, pytestconfig)

    for policy_id in policies:
        with pytest.raises(CloudError, match="cannot reach the EC2 endpoint"):
            judge(get_policy(policy_id), run, quiet)

    assert target.describes == 1
    assert target.opens == 0


@pytest.mark.parametrize(
    ("policy_id", "option"),
    [
        ("AMAZON-INSPECTOR", "--ami-inspector"),
        ("AMAZON-ASSESSMENT", "--ami-product"),
        ("AMAZON-MALWARE", "--ami-guardduty"),
    ],
)
def test_amazons_checks_not_asked_for_skip_without_describing_the_ami(
    pytestconfig: pytest.Config, policy_id: str, option: str
) -> None:
    target = UndescribableAmi()
    run = TargetRun(target, target.settings, pytestconfig)

    outcome = judge(get_policy(policy_id), run, quiet)

    assert outcome.verdict is Verdict.SKIP
    assert option in outcome.reason
    assert target.describes == 0


def test_a_manual_attestation_stays_manual_when_the_ami_cannot_be_described(
    pytestconfig: pytest.Config,
) -> None:
    target = UndescribableAmi()
    run = TargetRun(target, target.settings, pytestconfig)
    with pytest.raises(CloudError):
        judge(get_policy("AMI-ARCH"), run, quiet)

    outcome = judge(get_policy("MANUAL-CONSENT"), run, quiet)

    assert outcome.verdict is Verdict.MANUAL
