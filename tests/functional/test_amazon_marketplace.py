"""AWS Marketplace's assessment of the AMI, read from the Catalog API by Stubber.

moto has no Marketplace Catalog, so every call answers from a Stubber that also
checks the exact request. The Catalog API has no assessment operation: the
product's change sets that name the AMI carry Marketplace's scan result.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterator
from typing import Any

import pytest
from botocore.stub import Stubber

from pytest_amipolicy.aws import amazon
from pytest_amipolicy.facts import Facts
from pytest_amipolicy.policies.amazon import check_assessment
from pytest_amipolicy.settings import Settings
from pytest_amipolicy.verdicts import Verdict
from tests.support.stubs import FakeClock, stubbed_client

AMI = "ami-0123456789abcdef0"
PRODUCT = "prod-abcdefghijklm"
RECORD = {"ImageId": AMI, "OwnerId": "123456789012"}
SETTINGS = Settings(
    product=PRODUCT,
    policies=("AMAZON-ASSESSMENT",),
    amazon_timeout=2.0,
    amazon_poll_delay=1.0,
)

DESCRIBE_ENTITY = {"Catalog": "AWSMarketplace", "EntityId": PRODUCT}
LIST_CHANGE_SETS = {
    "Catalog": "AWSMarketplace",
    "FilterList": [{"Name": "EntityId", "ValueList": [PRODUCT]}],
    "Sort": {"SortBy": "StartTime", "SortOrder": "DESCENDING"},
    "MaxResults": 20,
}


@pytest.fixture
def stubbed() -> Iterator[tuple[Any, Stubber]]:
    with stubbed_client("marketplace-catalog", "us-east-1") as client_and_stubber:
        yield client_and_stubber


def entity(versions: list[dict[str, Any]], kind: str = "AmiProduct@1.0") -> Any:
    return {
        "EntityType": kind,
        "EntityIdentifier": f"{PRODUCT}@3",
        "EntityArn": f"arn:aws:aws-marketplace:us-east-1:123456789012:"
        f"AWSMarketplace/AmiProduct/{PRODUCT}",
        "LastModifiedDate": "2025-01-05T00:00:00Z",
        "DetailsDocument": {"Versions": versions},
    }


def version(title: str, ami: str) -> dict[str, Any]:
    return {
        "Id": f"version-{title}",
        "VersionTitle": title,
        "CreationDate": "2025-01-04T00:00:00Z",
        "Sources": [{"Type": "AmazonMachineImage", "Image": ami}],
    }


def summary(change_set_id: str) -> dict[str, Any]:
    return {"ChangeSetId": change_set_id, "Status": "SUCCEEDED"}


def change_set(
    change_set_id: str,
    status: str,
    ami: str = AMI,
    errors: list[dict[str, str]] | None = None,
    intent: str = "APPLY",
) -> dict[str, Any]:
    details = {
        "Version": {"VersionTitle": change_set_id},
        "DeliveryOptions": [
            {"Details": {"AmiDeliveryOptionDetails": {"AmiSource": {"AmiId": ami}}}}
        ],
    }
    return {
        "ChangeSetId": change_set_id,
        "ChangeSetName": f"add {change_set_id}",
        "Intent": intent,
        "Status": status,
        "StartTime": "2025-01-04T00:00:00Z",
        "ChangeSet": [
            {
                "ChangeType": "AddDeliveryOptions",
                "Entity": {"Type": "AmiProduct@1.0", "Identifier": PRODUCT},
                "Details": json.dumps(details),
                "ErrorDetailList": [
                    {"ErrorCode": e["code"], "ErrorMessage": e["message"]}
                    for e in errors or []
                ],
            }
        ],
    }


def describe(stubber: Stubber, response: dict[str, Any]) -> None:
    stubber.add_response(
        "describe_change_set",
        response,
        {"Catalog": "AWSMarketplace", "ChangeSetId": response["ChangeSetId"]},
    )


def gather(client: Any, clock: FakeClock) -> Any:
    return amazon.gather(
        RECORD,
        "eu-west-1",
        SETTINGS,
        clients=amazon.Clients(marketplace=client),
        clock=clock,
        sleep=clock.sleep,
    )


def judged(results: dict[str, Any]) -> Any:
    facts = Facts(
        target=AMI, platform="ami", image=RECORD, settings={"amazon": results}
    )
    return check_assessment(facts)


def test_change_sets_are_listed_in_two_pages_and_each_scan_error_is_evidence(
    stubbed: tuple[Any, Stubber],
) -> None:
    client, stubber = stubbed
    stubber.add_response("describe_entity", entity([]), DESCRIBE_ENTITY)
    stubber.add_response(
        "list_change_sets",
        {
            "ChangeSetSummaryList": [summary("cs-newest"), summary("cs-other")],
            "NextToken": "page-2",
        },
        LIST_CHANGE_SETS,
    )
    stubber.add_response(
        "list_change_sets",
        {"ChangeSetSummaryList": [summary("cs-older")]},
        {**LIST_CHANGE_SETS, "NextToken": "page-2"},
    )
    describe(
        stubber,
        change_set(
            "cs-newest",
            "FAILED",
            errors=[
                {"code": "SCAN_ERROR", "message": "Password authentication is on"},
                {"code": "SCAN_ERROR", "message": "Vulnerable package: openssl"},
            ],
        ),
    )
    describe(stubber, change_set("cs-other", "SUCCEEDED", ami="ami-0aaaaaaaaaaaaaaaa"))
    describe(stubber, change_set("cs-older", "SUCCEEDED"))

    results = gather(client, FakeClock())
    outcome = judged(results)

    assert [c["id"] for c in results["assessment"]["change_sets"]] == [
        "cs-newest",
        "cs-older",
    ]
    assert outcome.verdict is Verdict.FAIL
    assert outcome.findings == (
        "SCAN_ERROR: Password authentication is on",
        "SCAN_ERROR: Vulnerable package: openssl",
    )
    text = "\n".join(e.render() for e in outcome.evidence)
    assert "change set cs-newest" in text
    assert "change set cs-older" in text
    assert "cs-other" not in text
    assert "AddDeliveryOptions: 2 problem(s)" in text
    assert "  SCAN_ERROR: Vulnerable package: openssl" in text


def test_a_succeeded_validation_change_set_passes(
    stubbed: tuple[Any, Stubber],
) -> None:
    client, stubber = stubbed
    stubber.add_response("describe_entity", entity([]), DESCRIBE_ENTITY)
    stubber.add_response(
        "list_change_sets",
        {"ChangeSetSummaryList": [summary("cs-1")]},
        LIST_CHANGE_SETS,
    )
    describe(stubber, change_set("cs-1", "SUCCEEDED", intent="VALIDATE"))

    outcome = judged(gather(client, FakeClock()))

    assert outcome.verdict is Verdict.PASS
    assert "(VALIDATE)" in outcome.reason


def test_a_published_version_built_from_the_ami_passes(
    stubbed: tuple[Any, Stubber],
) -> None:
    client, stubber = stubbed
    stubber.add_response(
        "describe_entity",
        entity([version("1.0", "ami-0aaaaaaaaaaaaaaaa"), version("2.0", AMI)]),
        DESCRIBE_ENTITY,
    )
    stubber.add_response(
        "list_change_sets", {"ChangeSetSummaryList": []}, LIST_CHANGE_SETS
    )

    results = gather(client, FakeClock())
    outcome = judged(results)

    assert [v["title"] for v in results["assessment"]["versions"]] == ["2.0"]
    assert outcome.verdict is Verdict.PASS
    assert "version(s) 2.0" in outcome.reason


def test_an_ami_marketplace_never_saw_is_an_error(
    stubbed: tuple[Any, Stubber],
) -> None:
    client, stubber = stubbed
    stubber.add_response("describe_entity", entity([]), DESCRIBE_ENTITY)
    stubber.add_response(
        "list_change_sets", {"ChangeSetSummaryList": []}, LIST_CHANGE_SETS
    )

    outcome = judged(gather(client, FakeClock()))

    assert outcome.verdict is Verdict.ERROR
    assert "has not assessed" in outcome.reason


def test_a_running_change_set_is_polled_until_it_ends(
    stubbed: tuple[Any, Stubber],
) -> None:
    client, stubber = stubbed
    clock = FakeClock()
    stubber.add_response("describe_entity", entity([]), DESCRIBE_ENTITY)
    stubber.add_response(
        "list_change_sets",
        {"ChangeSetSummaryList": [summary("cs-1")]},
        LIST_CHANGE_SETS,
    )
    describe(stubber, change_set("cs-1", "PREPARING"))
    describe(stubber, change_set("cs-1", "APPLYING"))
    describe(stubber, change_set("cs-1", "SUCCEEDED"))

    outcome = judged(gather(client, clock))

    assert clock.sleeps == [1.0, 1.0]
    assert outcome.verdict is Verdict.PASS


def test_a_change_set_that_never_ends_is_an_error_after_the_deadline(
    stubbed: tuple[Any, Stubber],
) -> None:
    client, stubber = stubbed
    clock = FakeClock()
    stubber.add_response("describe_entity", entity([]), DESCRIBE_ENTITY)
    stubber.add_response(
        "list_change_sets",
        {"ChangeSetSummaryList": [summary("cs-1")]},
        LIST_CHANGE_SETS,
    )
    for _ in range(3):
        describe(stubber, change_set("cs-1", "APPLYING"))

    outcome = judged(gather(client, clock))

    assert clock.sleeps == [1.0, 1.0]
    assert outcome.verdict is Verdict.ERROR
    assert "change set cs-1 (APPLYING) did not arrive within 2 s" in outcome.reason


def test_access_denied_names_the_marketplace_iam_action(
    stubbed: tuple[Any, Stubber],
) -> None:
    client, stubber = stubbed
    stubber.add_client_error(
        "describe_entity",
        service_error_code="AccessDeniedException",
        service_message="not authorized",
        http_status_code=403,
        expected_params=DESCRIBE_ENTITY,
    )

    outcome = judged(gather(client, FakeClock()))

    assert outcome.verdict is Verdict.ERROR
    assert "aws-marketplace:DescribeEntity" in outcome.reason


def test_a_product_that_is_not_an_ami_product_is_an_error(
    stubbed: tuple[Any, Stubber],
) -> None:
    client, stubber = stubbed
    stubber.add_response(
        "describe_entity", entity([], kind="SaaSProduct@1.0"), DESCRIBE_ENTITY
    )

    outcome = judged(gather(client, FakeClock()))

    assert outcome.verdict is Verdict.ERROR
    assert "SaaSProduct@1.0, not an AMI product" in outcome.reason


def test_without_a_product_the_policy_is_skipped_naming_the_option() -> None:
    settings = dataclasses.replace(SETTINGS, product=None)

    results = amazon.gather(RECORD, "us-east-1", settings, clients=amazon.Clients())

    outcome = judged(results)
    assert outcome.verdict is Verdict.SKIP
    assert "--ami-product=ENTITY_ID" in outcome.reason
