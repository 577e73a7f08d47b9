"""Amazon's verdicts through the runtime: an AMI on moto, the services stubbed.

The AMI's EC2 record comes from moto; Inspector answers from a Stubber, since
moto has no Inspector findings. The options reach Settings through pytest's
own command-line parsing.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Callable

import boto3
import pytest
from botocore.stub import Stubber

from pytest_amipolicy.aws import amazon
from pytest_amipolicy.catalogue import get_policy
from pytest_amipolicy.options import settings_from
from pytest_amipolicy.runtime import TargetRun, judge
from pytest_amipolicy.settings import Settings
from pytest_amipolicy.targets.ec2 import Ec2Target
from pytest_amipolicy.verdicts import Verdict
from tests.functional.conftest import AMAZON_LINUX_AMI, REGION

CHOSEN = ("AMI-ARCH", "AMAZON-INSPECTOR", "AMAZON-ASSESSMENT", "AMAZON-MALWARE")


def no_progress(line: str) -> None:
    pass


def test_the_runtime_asks_inspector_once_and_the_policies_read_the_record(
    make_target: Callable[..., Ec2Target],
    settings: Settings,
    pytestconfig: pytest.Config,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    chosen = dataclasses.replace(settings, inspector=True, policies=CHOSEN)
    client = boto3.client("inspector2", region_name=REGION)
    stubber = Stubber(client)
    stubber.add_response(
        "list_coverage",
        {
            "coveredResources": [
                {
                    "resourceType": "AWS_EC2_INSTANCE",
                    "resourceId": "i-0123456789abcdef0",
                    "accountId": "123456789012",
                    "scanType": "PACKAGE",
                    "scanStatus": {"statusCode": "ACTIVE", "reason": "SUCCESSFUL"},
                    "resourceMetadata": {"ec2": {"amiId": AMAZON_LINUX_AMI}},
                }
            ]
        },
        {
            "filterCriteria": {
                "resourceType": [{"comparison": "EQUALS", "value": "AWS_EC2_INSTANCE"}]
            },
            "maxResults": 200,
        },
    )
    stubber.add_response(
        "list_findings",
        {"findings": []},
        {
            "filterCriteria": {
                "ec2InstanceImageId": [
                    {"comparison": "EQUALS", "value": AMAZON_LINUX_AMI}
                ],
                "resourceType": [{"comparison": "EQUALS", "value": "AWS_EC2_INSTANCE"}],
                "findingStatus": [{"comparison": "EQUALS", "value": "ACTIVE"}],
            },
            "maxResults": 100,
        },
    )
    asked: list[tuple[str, str]] = []

    def service_client(session: Any, service: str, region: str) -> Any:
        asked.append((service, region))
        return client

    monkeypatch.setattr(amazon, "service_client", service_client)
    run = TargetRun(make_target(settings=chosen), chosen, pytestconfig)

    with stubber:
        verdicts = {
            pid: judge(get_policy(pid), run, no_progress).verdict for pid in CHOSEN
        }

    stubber.assert_no_pending_responses()
    assert asked == [("inspector2", REGION)]
    assert verdicts == {
        "AMI-ARCH": Verdict.PASS,
        "AMAZON-INSPECTOR": Verdict.PASS,
        "AMAZON-ASSESSMENT": Verdict.SKIP,
        "AMAZON-MALWARE": Verdict.SKIP,
    }


def test_without_the_options_no_amazon_service_is_asked(
    make_target: Callable[..., Ec2Target],
    settings: Settings,
    pytestconfig: pytest.Config,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    chosen = dataclasses.replace(settings, policies=CHOSEN)

    def service_client(session: Any, service: str, region: str) -> Any:
        raise AssertionError(f"{service} must not be asked")

    monkeypatch.setattr(amazon, "service_client", service_client)
    run = TargetRun(make_target(settings=chosen), chosen, pytestconfig)

    outcome = judge(get_policy("AMAZON-INSPECTOR"), run, no_progress)

    assert outcome.verdict is Verdict.SKIP
    assert "--ami-inspector" in outcome.reason


@pytest.mark.parametrize(
    ("policy_id", "reads", "option"),
    [
        ("AMAZON-INSPECTOR", "Amazon Inspector's findings", "--ami-inspector"),
        ("AMAZON-ASSESSMENT", "AWS Marketplace's scan", "--ami-product=ENTITY_ID"),
        ("AMAZON-MALWARE", "GuardDuty Malware Protection's scan", "--ami-guardduty"),
    ],
)
def test_a_policy_that_was_not_turned_on_says_what_it_reads_and_its_option(
    make_target: Callable[..., Ec2Target],
    settings: Settings,
    pytestconfig: pytest.Config,
    policy_id: str,
    reads: str,
    option: str,
) -> None:
    chosen = dataclasses.replace(settings, policies=(policy_id,))
    run = TargetRun(make_target(settings=chosen), chosen, pytestconfig)

    outcome = judge(get_policy(policy_id), run, no_progress)

    assert outcome.verdict is Verdict.SKIP
    assert outcome.reason.startswith(f"{policy_id} is off: it reads {reads}")
    assert "an --ami target" in outcome.reason
    assert outcome.reason.endswith(f"; turn it on with {option}")


def test_a_deselected_policy_does_not_pay_for_its_calls() -> None:
    chosen = Settings(
        inspector=True, product="prod-abc", guardduty=True, policies=("AMI-ARCH",)
    )

    assert amazon.wanted(chosen) == []


def test_the_options_reach_the_settings(pytester: pytest.Pytester) -> None:
    pytester.makeini(
        "[pytest]\n"
        "amipolicy_guardduty_role = arn:aws:iam::123456789012:role/Scan\n"
        "amipolicy_amazon_timeout = 60\n"
        "amipolicy_amazon_poll_delay = 0.5\n"
    )
    config = pytester.parseconfig(
        "--ami-inspector",
        "--ami-inspector-severity=critical",
        "--ami-product=prod-abcdefghijklm",
        "--ami-guardduty",
    )

    settings = settings_from(config)

    assert (settings.inspector, settings.inspector_severity) == (True, "CRITICAL")
    assert settings.product == "prod-abcdefghijklm"
    assert settings.guardduty is True
    assert settings.guardduty_role == "arn:aws:iam::123456789012:role/Scan"
    assert (settings.amazon_timeout, settings.amazon_poll_delay) == (60.0, 0.5)


BAD_VALUES = [
    (
        ["--ami-inspector-severity=SEVERE"],
        "--ami-inspector-severity='SEVERE' is not an Inspector severity: use one of "
        "INFORMATIONAL, LOW, MEDIUM, HIGH, CRITICAL.",
    ),
    (["--ami-product=ami-0123456789abcdef0"], "is not a Marketplace product entity id"),
]


@pytest.mark.parametrize(("args", "message"), BAD_VALUES)
def test_a_bad_amazon_option_is_a_usage_error_naming_the_value_and_the_fix(
    pytester: pytest.Pytester, args: list[str], message: str
) -> None:
    result = pytester.runpytest("--ami-host=ssh://h", *args)

    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([f"ERROR: *{message}*"])


def test_a_bad_guardduty_role_is_a_usage_error(pytester: pytest.Pytester) -> None:
    pytester.makeini("[pytest]\namipolicy_guardduty_role = GuardDutyRole\n")

    result = pytester.runpytest("--ami-host=ssh://h", "--ami-guardduty")

    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["ERROR: *'GuardDutyRole' is not an IAM role ARN*"])
