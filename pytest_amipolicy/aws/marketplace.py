"""AWS Marketplace's own assessment of the AMI, read from the Catalog API.

The Catalog API has no assessment operation. Marketplace scans an AMI when a
seller adds it to a product as a new version (an ``AddDeliveryOptions``
change, possibly with ``Intent=VALIDATE`` to scan without publishing); the scan
result is the outcome of that change set: ``SUCCEEDED``, or ``FAILED`` with one
error detail per problem found. So the assessment is read as:

- ``DescribeEntity``: the product, and which of its versions use the AMI;
- ``ListChangeSets`` for the product, newest first, and ``DescribeChangeSet``
  on each to find the ones that mention the AMI, with their errors.

A change set still being prepared or applied is polled until it ends or the
deadline passes. Nothing is submitted: starting a change set would change the
seller's product.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from pytest_amipolicy.aws.amazon import (
    AmazonCheckError,
    Deadline,
    call,
    pages,
)

logger = logging.getLogger(__name__)

SERVICE = "marketplace-catalog"
CATALOG = "AWSMarketplace"
# The Catalog API has one endpoint, in us-east-1.
REGION = "us-east-1"
AMI_ENTITY_PREFIX = "AmiProduct@"
CHANGE_SETS_PAGE = 20
# Change sets can be described for 60 days; the newest ones matter most,
# and each costs a DescribeChangeSet call.
MAX_CHANGE_SETS = 20
RUNNING = frozenset({"PREPARING", "APPLYING"})


def describe_entity(client: Any, entity_id: str) -> dict[str, Any]:
    return call(
        client,
        SERVICE,
        "DescribeEntity",
        REGION,
        Catalog=CATALOG,
        EntityId=entity_id,
    )


def _details(holder: dict[str, Any]) -> Any:
    """Return the details document of an entity or change, parsed if it is text."""
    if holder.get("DetailsDocument") is not None:
        return holder["DetailsDocument"]
    text = holder.get("Details")
    if not text:
        return {}
    try:
        return json.loads(text)
    except ValueError:
        return text


def _mentions(document: Any, image_id: str) -> bool:
    return image_id in json.dumps(document, default=str)


def versions_with(entity: dict[str, Any], image_id: str) -> list[dict[str, Any]]:
    """Return the product versions whose sources include ``image_id``."""
    details = _details(entity)
    versions = details.get("Versions", []) if isinstance(details, dict) else []
    return [
        {
            "id": version.get("Id"),
            "title": version.get("VersionTitle"),
            "created": version.get("CreationDate"),
        }
        for version in versions
        if isinstance(version, dict) and _mentions(version, image_id)
    ]


def list_change_sets(
    client: Any, entity_id: str, deadline: Deadline | None = None
) -> list[dict[str, Any]]:
    summaries: list[dict[str, Any]] = []
    for page in pages(
        client,
        SERVICE,
        "ListChangeSets",
        REGION,
        deadline,
        Catalog=CATALOG,
        FilterList=[{"Name": "EntityId", "ValueList": [entity_id]}],
        Sort={"SortBy": "StartTime", "SortOrder": "DESCENDING"},
        PaginationConfig={
            "PageSize": CHANGE_SETS_PAGE,
            "MaxItems": MAX_CHANGE_SETS,
        },
    ):
        summaries.extend(page.get("ChangeSetSummaryList", []))
    return summaries


def describe_change_set(client: Any, change_set_id: str) -> dict[str, Any]:
    return call(
        client,
        SERVICE,
        "DescribeChangeSet",
        REGION,
        Catalog=CATALOG,
        ChangeSetId=change_set_id,
    )


def _change_set_record(described: dict[str, Any], image_id: str) -> dict[str, Any]:
    changes = []
    for change in described.get("ChangeSet", []):
        changes.append(
            {
                "type": change.get("ChangeType"),
                "name": change.get("ChangeName"),
                "mentions_ami": _mentions(_details(change), image_id),
                "errors": [
                    {"code": e.get("ErrorCode"), "message": e.get("ErrorMessage")}
                    for e in change.get("ErrorDetailList", [])
                ],
            }
        )
    return {
        "id": described.get("ChangeSetId"),
        "name": described.get("ChangeSetName"),
        "intent": described.get("Intent"),
        "status": described.get("Status"),
        "failure_code": described.get("FailureCode"),
        "failure_description": described.get("FailureDescription"),
        "start": described.get("StartTime"),
        "end": described.get("EndTime"),
        "changes": changes,
    }


def gather(
    client: Any, entity_id: str, image_id: str, deadline: Deadline
) -> dict[str, Any]:
    """Return the product's versions and change sets that concern ``image_id``."""
    entity = describe_entity(client, entity_id)
    entity_type = str(entity.get("EntityType", ""))
    if not entity_type.startswith(AMI_ENTITY_PREFIX):
        raise AmazonCheckError(
            f"--ami-product={entity_id} is a {entity_type or 'entity of unknown type'}"
            ", not an AMI product (AmiProduct@1.0): give the product id of the AMI "
            "listing"
        )

    versions = versions_with(entity, image_id)

    change_sets = []
    for summary in list_change_sets(client, entity_id, deadline):
        described = describe_change_set(client, summary["ChangeSetId"])
        record = _change_set_record(described, image_id)
        if any(change["mentions_ami"] for change in record["changes"]):
            change_sets.append(record)

    # Only the newest change set can still be running; older ones have ended.
    while change_sets and change_sets[0]["status"] in RUNNING:
        newest = change_sets[0]
        deadline.wait(f"the result of change set {newest['id']} ({newest['status']})")
        change_sets[0] = _change_set_record(
            describe_change_set(client, newest["id"]), image_id
        )

    logger.debug(
        "Marketplace: %d versions and %d change sets of %s use %s",
        len(versions),
        len(change_sets),
        entity_id,
        image_id,
    )
    return {
        "entity_id": entity_id,
        "entity_type": entity_type,
        "versions": versions,
        "change_sets": change_sets,
    }
