"""Amazon Inspector's findings for the AMI, through botocore's Stubber.

moto has no Inspector coverage or findings, so every call answers from a
Stubber that also checks the exact request: filters, page size and page token.
The poll clock is fake, so waiting for a scan costs no real time.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber

from pytest_amipolicy.aws import amazon, inspector
from pytest_amipolicy.facts import Facts
from pytest_amipolicy.policies.amazon import check_inspector
from pytest_amipolicy.settings import Settings
from pytest_amipolicy.verdicts import Verdict
from tests.support.stubs import FakeClock, stubbed_client

REGION = "us-east-1"
AMI = "ami-0123456789abcdef0"
OTHER_AMI = "ami-0fedcba9876543210"
RECORD = {"ImageId": AMI, "OwnerId": "123456789012"}
SETTINGS = Settings(
    inspector=True,
    policies=("AMAZON-INSPECTOR",),
    amazon_timeout=3.0,
    amazon_poll_delay=1.0,
)

COVERAGE_REQUEST = {
    "filterCriteria": {
        "resourceType": [{"comparison": "EQUALS", "value": "AWS_EC2_INSTANCE"}]
    },
    "maxResults": 200,
}
FINDINGS_REQUEST = {
    "filterCriteria": {
        "ec2InstanceImageId": [{"comparison": "EQUALS", "value": AMI}],
        "resourceType": [{"comparison": "EQUALS", "value": "AWS_EC2_INSTANCE"}],
        "findingStatus": [{"comparison": "EQUALS", "value": "ACTIVE"}],
    },
    "maxResults": 100,
}


@pytest.fixture
def stubbed() -> Iterator[tuple[Any, Stubber]]:
    with stubbed_client("inspector2", REGION) as client_and_stubber:
        yield client_and_stubber


def covered(instance: str, ami: str, reason: str = "SUCCESSFUL") -> dict[str, Any]:
    return {
        "resourceType": "AWS_EC2_INSTANCE",
        "resourceId": instance,
        "accountId": "123456789012",
        "scanType": "PACKAGE",
        "scanStatus": {
            "statusCode": "ACTIVE",
            "reason": reason,
        },
        "resourceMetadata": {"ec2": {"amiId": ami, "platform": "LINUX"}},
    }


def finding(number: int, severity: str, fix: str = "YES") -> dict[str, Any]:
    return {
        "findingArn": f"arn:aws:inspector2:{REGION}:123456789012:finding/{number}",
        "awsAccountId": "123456789012",
        "type": "PACKAGE_VULNERABILITY",
        "description": "a vulnerable package",
        "remediation": {"recommendation": {"text": "update openssl"}},
        "title": f"CVE-2024-{number:04d} - openssl",
        "severity": severity,
        "status": "ACTIVE",
        "fixAvailable": fix,
        "firstObservedAt": "2025-01-02T03:04:05Z",
        "lastObservedAt": "2025-01-03T03:04:05Z",
        "resources": [{"type": "AWS_EC2_INSTANCE", "id": "i-0123456789abcdef0"}],
        "packageVulnerabilityDetails": {
            "vulnerabilityId": f"CVE-2024-{number:04d}",
            "source": "NVD",
            "vulnerablePackages": [
                {"name": "openssl", "version": "3.0.1", "fixedInVersion": "3.0.9"}
            ],
        },
    }


def gather(client: Any, clock: FakeClock, settings: Settings = SETTINGS) -> Any:
    return amazon.gather(
        RECORD,
        REGION,
        settings,
        clients=amazon.Clients(inspector2=client),
        clock=clock,
        sleep=clock.sleep,
    )


def judged(results: dict[str, Any]) -> Any:
    facts = Facts(
        target=AMI, platform="ami", image=RECORD, settings={"amazon": results}
    )
    return check_inspector(facts)


def test_findings_of_the_amis_instances_are_read_page_by_page_with_exact_filters(
    stubbed: tuple[Any, Stubber],
) -> None:
    client, stubber = stubbed
    stubber.add_response(
        "list_coverage",
        {
            "coveredResources": [
                covered("i-0123456789abcdef0", AMI),
                covered("i-0aaaaaaaaaaaaaaaa", OTHER_AMI),
            ]
        },
        COVERAGE_REQUEST,
    )
    stubber.add_response(
        "list_findings",
        {"findings": [finding(1, "HIGH")], "nextToken": "page-2"},
        FINDINGS_REQUEST,
    )
    stubber.add_response(
        "list_findings",
        {"findings": [finding(2, "LOW", fix="NO")]},
        {**FINDINGS_REQUEST, "nextToken": "page-2"},
    )

    results = gather(client, FakeClock())

    record = results["inspector"]
    assert record["status"] == "ok"
    assert record["threshold"] == "HIGH"
    assert [c["resource_id"] for c in record["coverage"]] == ["i-0123456789abcdef0"]
    assert [
        (f["vulnerability"], f["severity"], f["fix_available"])
        for f in record["findings"]
    ] == [("CVE-2024-0001", "HIGH", "YES"), ("CVE-2024-0002", "LOW", "NO")]
    assert record["findings"][0]["packages"] == [
        {"name": "openssl", "version": "3.0.1", "fixed_in": "3.0.9"}
    ]


def test_a_finding_at_the_threshold_fails_and_the_evidence_counts_severities(
    stubbed: tuple[Any, Stubber],
) -> None:
    client, stubber = stubbed
    stubber.add_response(
        "list_coverage",
        {"coveredResources": [covered("i-0123456789abcdef0", AMI)]},
        COVERAGE_REQUEST,
    )
    stubber.add_response(
        "list_findings",
        {"findings": [finding(1, "HIGH"), finding(2, "LOW", fix="NO")]},
        FINDINGS_REQUEST,
    )

    outcome = judged(gather(client, FakeClock()))

    assert outcome.verdict is Verdict.FAIL
    assert outcome.findings == ("HIGH CVE-2024-0001",)
    text = "\n".join(e.render() for e in outcome.evidence)
    assert "highest severity: HIGH" in text
    assert "per severity: HIGH 1, LOW 1" in text
    assert "fix available: NO 1, YES 1" in text
    assert "openssl 3.0.1 -> 3.0.9" in text


def test_a_pending_first_scan_is_polled_until_it_has_finished(
    stubbed: tuple[Any, Stubber],
) -> None:
    client, stubber = stubbed
    clock = FakeClock()
    pending = covered("i-0123456789abcdef0", AMI, reason="PENDING_INITIAL_SCAN")
    stubber.add_response(
        "list_coverage", {"coveredResources": [pending]}, COVERAGE_REQUEST
    )
    stubber.add_response(
        "list_coverage",
        {"coveredResources": [covered("i-0123456789abcdef0", AMI)]},
        COVERAGE_REQUEST,
    )
    stubber.add_response(
        "list_findings", {"findings": [finding(3, "MEDIUM")]}, FINDINGS_REQUEST
    )

    outcome = judged(gather(client, clock))

    assert clock.sleeps == [1.0]
    assert outcome.verdict is Verdict.PASS
    assert "highest MEDIUM" in outcome.reason


def test_a_scan_that_never_finishes_is_an_error_after_the_deadline(
    stubbed: tuple[Any, Stubber],
) -> None:
    client, stubber = stubbed
    clock = FakeClock()
    pending = covered("i-0123456789abcdef0", AMI, reason="PENDING_INITIAL_SCAN")
    for _ in range(4):
        stubber.add_response(
            "list_coverage", {"coveredResources": [pending]}, COVERAGE_REQUEST
        )

    outcome = judged(gather(client, clock))

    assert clock.sleeps == [1.0, 1.0, 1.0]
    assert outcome.verdict is Verdict.ERROR
    assert "did not arrive within 3 s" in outcome.reason
    assert "i-0123456789abcdef0" in outcome.reason


def test_no_scanned_instance_of_the_ami_is_an_error_not_a_pass(
    stubbed: tuple[Any, Stubber],
) -> None:
    client, stubber = stubbed
    stubber.add_response(
        "list_coverage",
        {"coveredResources": [covered("i-0aaaaaaaaaaaaaaaa", OTHER_AMI)]},
        COVERAGE_REQUEST,
    )
    stubber.add_response("list_findings", {"findings": []}, FINDINGS_REQUEST)

    outcome = judged(gather(client, FakeClock()))

    assert outcome.verdict is Verdict.ERROR
    assert f"has not scanned any instance launched from {AMI}" in outcome.reason


@pytest.mark.parametrize(
    ("denied", "action"),
    [("list_coverage", "ListCoverage"), ("list_findings", "ListFindings")],
)
def test_access_denied_is_an_error_naming_the_missing_iam_action(
    stubbed: tuple[Any, Stubber], denied: str, action: str
) -> None:
    client, stubber = stubbed
    if denied == "list_findings":
        stubber.add_response(
            "list_coverage",
            {"coveredResources": [covered("i-0123456789abcdef0", AMI)]},
            COVERAGE_REQUEST,
        )
    stubber.add_client_error(
        denied,
        service_error_code="AccessDeniedException",
        service_message="User is not authorized",
        http_status_code=403,
        expected_params=COVERAGE_REQUEST
        if denied == "list_coverage"
        else FINDINGS_REQUEST,
    )

    outcome = judged(gather(client, FakeClock()))

    assert outcome.verdict is Verdict.ERROR
    assert f"inspector2:{action}" in outcome.reason


def test_the_threshold_is_configurable(stubbed: tuple[Any, Stubber]) -> None:
    client, stubber = stubbed
    stubber.add_response(
        "list_coverage",
        {"coveredResources": [covered("i-0123456789abcdef0", AMI)]},
        COVERAGE_REQUEST,
    )
    stubber.add_response(
        "list_findings", {"findings": [finding(3, "MEDIUM")]}, FINDINGS_REQUEST
    )
    settings = dataclasses.replace(SETTINGS, inspector_severity="MEDIUM")

    outcome = judged(gather(client, FakeClock(), settings))

    assert outcome.verdict is Verdict.FAIL
    assert "at or above MEDIUM" in outcome.reason


def test_without_the_option_no_call_is_made_and_the_policy_is_skipped() -> None:
    settings = dataclasses.replace(SETTINGS, inspector=False)

    results = amazon.gather(RECORD, REGION, settings, clients=amazon.Clients())

    assert results == {}
    outcome = judged(results)
    assert outcome.verdict is Verdict.SKIP
    assert "--ami-inspector" in outcome.reason


def test_clients_use_botocore_standard_retries_and_time_limits() -> None:
    session = boto3.session.Session(
        aws_access_key_id="testing", aws_secret_access_key="testing"
    )

    client = amazon.service_client(session, "inspector2", REGION)

    config = client.meta.config
    # botocore counts the first attempt too: five retries are six attempts.
    assert config.retries == {"mode": "standard", "total_max_attempts": 6}
    assert (config.connect_timeout, config.read_timeout) == (10, 30)
    assert client.meta.region_name == REGION


def test_the_coverage_filter_has_no_ami_field_so_records_are_matched_by_ami_id() -> (
    None
):
    assert "amiId" not in str(inspector.coverage_filter())


def scanned_with(*findings: dict[str, Any], threshold: str = "HIGH") -> Any:
    """The Inspector result of one scanned instance with ``findings``."""
    return {
        "inspector": {
            "status": "ok",
            "image_id": AMI,
            "threshold": threshold,
            "coverage": [
                {
                    "resource_id": "i-0123456789abcdef0",
                    "status": "ACTIVE",
                    "reason": "SUCCESSFUL",
                    "last_scanned_at": None,
                }
            ],
            "findings": [inspector._finding_record(f) for f in findings],
        }
    }


def test_an_untriaged_finding_leaves_the_verdict_undecided_not_passed() -> None:
    outcome = judged(scanned_with(finding(1, "UNTRIAGED"), finding(2, "LOW")))

    assert outcome.verdict is Verdict.ERROR
    assert "1 active Inspector finding(s) are UNTRIAGED" in outcome.reason
    assert "whether they reach HIGH is unknown" in outcome.reason
    assert outcome.findings == ("UNTRIAGED CVE-2024-0001",)


def test_an_untriaged_finding_fails_at_the_lowest_threshold() -> None:
    outcome = judged(scanned_with(finding(1, "UNTRIAGED"), threshold="INFORMATIONAL"))

    assert outcome.verdict is Verdict.FAIL
    assert outcome.findings == ("UNTRIAGED CVE-2024-0001",)


def test_a_blocking_finding_fails_even_beside_an_untriaged_one() -> None:
    outcome = judged(scanned_with(finding(1, "UNTRIAGED"), finding(2, "CRITICAL")))

    assert outcome.verdict is Verdict.FAIL
    assert outcome.findings == ("CRITICAL CVE-2024-0002",)


class LateClock(FakeClock):
    """A clock whose every reading after the first is long past any deadline."""

    def __call__(self) -> float:
        reading = self.now
        self.now += 1000.0
        return reading


def test_paging_stops_at_the_deadline_with_an_error(
    stubbed: tuple[Any, Stubber],
) -> None:
    client, stubber = stubbed
    stubber.add_response(
        "list_coverage",
        {
            "coveredResources": [covered("i-0aaaaaaaaaaaaaaaa", OTHER_AMI)],
            "nextToken": "page-2",
        },
        COVERAGE_REQUEST,
    )

    outcome = judged(gather(client, LateClock()))

    # No second page was asked for (the stubber would have failed the call).
    assert outcome.verdict is Verdict.ERROR
    assert "ListCoverage in us-east-1 still had more results after 1 page(s)" in (
        outcome.reason
    )
