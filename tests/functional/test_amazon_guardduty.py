"""GuardDuty Malware Protection's scan of the AMI, through botocore's Stubber.

moto has no malware scans, so every call answers from a Stubber that also
checks the exact request. The poll clock is fake: no test sleeps.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from typing import Any

import pytest
from botocore.stub import ANY, Stubber

from pytest_amipolicy.aws import amazon, guardduty
from pytest_amipolicy.facts import Facts
from pytest_amipolicy.policies.amazon import check_malware
from pytest_amipolicy.settings import Settings
from pytest_amipolicy.verdicts import Verdict
from tests.support.stubs import FakeClock, stubbed_client

REGION = "eu-west-1"
AMI = "ami-0123456789abcdef0"
RECORD = {"ImageId": AMI, "OwnerId": "123456789012"}
ARN = f"arn:aws:ec2:{REGION}:123456789012:image/{AMI}"
ROLE = "arn:aws:iam::123456789012:role/GuardDutyAmiScan"
SETTINGS = Settings(
    guardduty=True,
    policies=("AMAZON-MALWARE",),
    amazon_timeout=2.0,
    amazon_poll_delay=1.0,
)

LIST_SCANS = {
    "FilterCriteria": {
        "ListMalwareScansFilterCriterion": [
            {
                "ListMalwareScansCriterionKey": "RESOURCE_ARN",
                "FilterCondition": {"EqualsValue": ARN},
            }
        ]
    },
    "MaxResults": 50,
}


@pytest.fixture
def stubbed() -> Iterator[tuple[Any, Stubber]]:
    with stubbed_client("guardduty", REGION) as client_and_stubber:
        yield client_and_stubber


def listed(scan_id: str, status: str, started: str) -> dict[str, Any]:
    return {
        "ResourceArn": ARN,
        "ResourceType": "EC2_AMI",
        "ScanId": scan_id,
        "ScanStatus": status,
        "ScanType": "ON_DEMAND",
        "ScanStartedAt": started,
    }


def scan(
    scan_id: str, status: str, result: str | None = None, **details: Any
) -> dict[str, Any]:
    response: dict[str, Any] = {
        "ScanId": scan_id,
        "ResourceArn": ARN,
        "ResourceType": "EC2_AMI",
        "ScanStatus": status,
        "ScanType": "ON_DEMAND",
        "ScanStartedAt": "2025-01-05T00:00:00Z",
        "ScannedResources": [
            {
                "ScannedResourceArn": f"arn:aws:ec2:{REGION}::snapshot/snap-01",
                "ScannedResourceType": "EBS_SNAPSHOT",
                "ScannedResourceStatus": status,
            }
        ],
    }
    if result is not None:
        response["ScanResultDetails"] = {
            "ScanResultStatus": result,
            "TotalFileCount": 52000,
            **details,
        }
    return response


def get(stubber: Stubber, response: dict[str, Any]) -> None:
    stubber.add_response("get_malware_scan", response, {"ScanId": response["ScanId"]})


def gather(client: Any, clock: FakeClock, settings: Settings = SETTINGS) -> Any:
    return amazon.gather(
        RECORD,
        REGION,
        settings,
        clients=amazon.Clients(guardduty=client),
        clock=clock,
        sleep=clock.sleep,
    )


def judged(results: dict[str, Any]) -> Any:
    facts = Facts(
        target=AMI, platform="ami", image=RECORD, settings={"amazon": results}
    )
    return check_malware(facts)


def test_the_newest_completed_scan_found_over_two_pages_is_reused(
    stubbed: tuple[Any, Stubber],
) -> None:
    client, stubber = stubbed
    stubber.add_response(
        "list_malware_scans",
        {
            "Scans": [listed("scan-old", "FAILED", "2025-01-01T00:00:00Z")],
            "NextToken": "page-2",
        },
        LIST_SCANS,
    )
    stubber.add_response(
        "list_malware_scans",
        {"Scans": [listed("scan-new", "COMPLETED", "2025-01-05T00:00:00Z")]},
        {**LIST_SCANS, "NextToken": "page-2"},
    )
    get(stubber, scan("scan-new", "COMPLETED", "NO_THREATS_FOUND"))

    results = gather(client, FakeClock())
    outcome = judged(results)

    assert results["malware"]["started_by_run"] is False
    assert outcome.verdict is Verdict.PASS
    assert "found no threat in 52000 files" in outcome.reason


def test_without_a_scan_one_is_started_with_the_role_and_polled(
    stubbed: tuple[Any, Stubber],
) -> None:
    client, stubber = stubbed
    clock = FakeClock()
    stubber.add_response("list_malware_scans", {"Scans": []}, LIST_SCANS)
    stubber.add_response(
        "start_malware_scan",
        {"ScanId": "scan-1"},
        {
            "ResourceArn": ARN,
            "ClientToken": "token-1",
            "ScanConfiguration": {"Role": ROLE},
        },
    )
    get(stubber, scan("scan-1", "RUNNING"))
    threats = [
        {
            "Name": "EICAR-Test-File (not a virus)",
            "Source": "AMAZON",
            "Count": 1,
            "ItemDetails": [{"ItemPath": "/opt/app/eicar.com"}],
        }
    ]
    get(
        stubber,
        scan("scan-1", "COMPLETED", "THREATS_FOUND", Threats=threats),
    )

    data = guardduty.gather(
        client,
        RECORD,
        REGION,
        ROLE,
        amazon.Deadline(2.0, 1.0, clock, clock.sleep),
        token="token-1",
    )
    outcome = judged({"malware": {**amazon.jsonable(data), "status": "ok"}})

    assert clock.sleeps == [1.0]
    assert data["started_by_run"] is True
    assert outcome.verdict is Verdict.FAIL
    assert outcome.findings == ("EICAR-Test-File (not a virus) in /opt/app/eicar.com",)


def test_without_a_scan_or_a_role_the_verdict_is_an_error_naming_the_ini_key(
    stubbed: tuple[Any, Stubber],
) -> None:
    client, stubber = stubbed
    stubber.add_response("list_malware_scans", {"Scans": []}, LIST_SCANS)

    outcome = judged(gather(client, FakeClock()))

    assert outcome.verdict is Verdict.ERROR
    assert "amipolicy_guardduty_role" in outcome.reason


def test_a_scan_that_never_ends_is_an_error_after_the_deadline(
    stubbed: tuple[Any, Stubber],
) -> None:
    client, stubber = stubbed
    clock = FakeClock()
    stubber.add_response(
        "list_malware_scans",
        {"Scans": [listed("scan-1", "RUNNING", "2025-01-05T00:00:00Z")]},
        LIST_SCANS,
    )
    for _ in range(3):
        get(stubber, scan("scan-1", "RUNNING"))

    outcome = judged(gather(client, clock))

    assert clock.sleeps == [1.0, 1.0]
    assert outcome.verdict is Verdict.ERROR
    assert "scan-1 did not arrive within 2 s" in outcome.reason


def test_access_denied_on_start_names_the_guardduty_iam_action(
    stubbed: tuple[Any, Stubber],
) -> None:
    client, stubber = stubbed
    stubber.add_response("list_malware_scans", {"Scans": []}, LIST_SCANS)
    stubber.add_client_error(
        "start_malware_scan",
        service_error_code="AccessDeniedException",
        service_message="not authorized",
        http_status_code=403,
        expected_params={
            "ResourceArn": ARN,
            "ClientToken": ANY,
            "ScanConfiguration": {"Role": ROLE},
        },
    )
    settings = dataclasses.replace(SETTINGS, guardduty_role=ROLE)

    outcome = judged(gather(client, FakeClock(), settings))

    assert outcome.verdict is Verdict.ERROR
    assert "guardduty:StartMalwareScan" in outcome.reason


@pytest.mark.parametrize(
    ("status", "result", "reason", "words"),
    [
        ("COMPLETED_WITH_ISSUES", "NO_THREATS_FOUND", None, "completed with issues"),
        ("FAILED", None, "UNSUPPORTED_AMI", "ended FAILED (UNSUPPORTED_AMI)"),
        ("SKIPPED", None, "AMI_SNAPSHOT_LIMIT_EXCEEDED", "ended SKIPPED"),
    ],
)
def test_a_scan_that_did_not_cover_the_image_is_an_error_not_a_pass(
    stubbed: tuple[Any, Stubber],
    status: str,
    result: str | None,
    reason: str | None,
    words: str,
) -> None:
    client, stubber = stubbed
    stubber.add_response(
        "list_malware_scans",
        {"Scans": [listed("scan-1", status, "2025-01-05T00:00:00Z")]},
        LIST_SCANS,
    )
    response = scan("scan-1", status, result, SkippedFileCount=3)
    if reason:
        response["ScanStatusReason"] = reason
    get(stubber, response)

    outcome = judged(gather(client, FakeClock()))

    assert outcome.verdict is Verdict.ERROR
    assert words in outcome.reason


def test_without_the_option_the_policy_is_skipped_naming_it() -> None:
    settings = dataclasses.replace(SETTINGS, guardduty=False)

    outcome = judged(amazon.gather(RECORD, REGION, settings, clients=amazon.Clients()))

    assert outcome.verdict is Verdict.SKIP
    assert "--ami-guardduty" in outcome.reason


def test_the_image_arn_carries_the_owner_and_the_partition() -> None:
    assert guardduty.image_arn(RECORD, "cn-north-1") == (
        f"arn:aws-cn:ec2:cn-north-1:123456789012:image/{AMI}"
    )
