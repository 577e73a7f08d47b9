"""Amazon Inspector's findings on instances launched from the AMI.

Inspector (the ``inspector2`` API) scans running EC2 instances, not images: the
closest it comes to an AMI verdict is the findings of instances whose image is
the AMI, which ``ListFindings`` filters with ``ec2InstanceImageId``. Whether any
such instance was scanned at all comes from ``ListCoverage``, whose records
carry the instance's AMI id. EC2 itself has no per-image scan state to read.
"""

from __future__ import annotations

import logging
from typing import Any

from pytest_amipolicy.aws.amazon import Deadline, pages

logger = logging.getLogger(__name__)

SERVICE = "inspector2"
RESOURCE_TYPE = "AWS_EC2_INSTANCE"
# Inspector pages up to 100 findings and 200 coverage records per call.
FINDINGS_PAGE = 100
COVERAGE_PAGE = 200

# Coverage reasons after which a scan result is still expected to arrive.
PENDING_REASONS = frozenset(
    {"PENDING_INITIAL_SCAN", "SCAN_IN_PROGRESS", "PENDING_REVIVAL_SCAN"}
)


def coverage_filter() -> dict[str, Any]:
    return {"resourceType": [{"comparison": "EQUALS", "value": RESOURCE_TYPE}]}


def findings_filter(image_id: str) -> dict[str, Any]:
    # Suppressed and closed findings are the seller's or Inspector's decision
    # already; only active ones say something about the image now.
    return {
        "ec2InstanceImageId": [{"comparison": "EQUALS", "value": image_id}],
        "resourceType": [{"comparison": "EQUALS", "value": RESOURCE_TYPE}],
        "findingStatus": [{"comparison": "EQUALS", "value": "ACTIVE"}],
    }


def list_coverage(
    client: Any, image_id: str, region: str, deadline: Deadline | None = None
) -> list[dict[str, Any]]:
    """Return the coverage records of instances launched from ``image_id``."""
    records: list[dict[str, Any]] = []
    # ListCoverage's filter criteria have no AMI field (resource id, tags, scan
    # state only), so every EC2 record is read and matched by its AMI id; the
    # deadline bounds how long that may take in a large account.
    for page in pages(
        client,
        SERVICE,
        "ListCoverage",
        region,
        deadline,
        filterCriteria=coverage_filter(),
        PaginationConfig={"PageSize": COVERAGE_PAGE},
    ):
        for resource in page.get("coveredResources", []):
            metadata = resource.get("resourceMetadata", {}).get("ec2", {})
            if metadata.get("amiId") == image_id:
                records.append(_coverage_record(resource))
    return records


def _coverage_record(resource: dict[str, Any]) -> dict[str, Any]:
    status = resource.get("scanStatus", {})
    return {
        "resource_id": resource.get("resourceId"),
        "scan_type": resource.get("scanType"),
        "scan_mode": resource.get("scanMode"),
        "status": status.get("statusCode"),
        "reason": status.get("reason"),
        "last_scanned_at": resource.get("lastScannedAt"),
    }


def scanned(record: dict[str, Any]) -> bool:
    return record["status"] == "ACTIVE" and (
        record["reason"] == "SUCCESSFUL" or record["last_scanned_at"] is not None
    )


def list_findings(
    client: Any, image_id: str, region: str, deadline: Deadline | None = None
) -> list[dict[str, Any]]:
    """Return the active findings of instances launched from ``image_id``."""
    findings: list[dict[str, Any]] = []
    for page in pages(
        client,
        SERVICE,
        "ListFindings",
        region,
        deadline,
        filterCriteria=findings_filter(image_id),
        PaginationConfig={"PageSize": FINDINGS_PAGE},
    ):
        findings.extend(_finding_record(f) for f in page.get("findings", []))
    return findings


def _finding_record(finding: dict[str, Any]) -> dict[str, Any]:
    details = finding.get("packageVulnerabilityDetails", {})
    packages = [
        {
            "name": package.get("name"),
            "version": package.get("version"),
            "fixed_in": package.get("fixedInVersion"),
        }
        for package in details.get("vulnerablePackages", [])
    ]
    return {
        "arn": finding.get("findingArn"),
        "title": finding.get("title"),
        "type": finding.get("type"),
        "severity": finding.get("severity"),
        "score": finding.get("inspectorScore"),
        "vulnerability": details.get("vulnerabilityId"),
        "fix_available": finding.get("fixAvailable"),
        "exploit_available": finding.get("exploitAvailable"),
        "packages": packages,
        "resources": [r.get("id") for r in finding.get("resources", [])],
        "first_observed_at": finding.get("firstObservedAt"),
        "last_observed_at": finding.get("lastObservedAt"),
        "vendor_created_at": details.get("vendorCreatedAt"),
    }


def gather(
    client: Any, image_id: str, region: str, deadline: Deadline
) -> dict[str, Any]:
    """Return Inspector's coverage and active findings for ``image_id``.

    Waits, within ``deadline``, while instances of the image are covered but
    not scanned yet; raises :class:`~pytest_amipolicy.aws.amazon.DeadlineExceeded`
    when the first scan does not finish in time.
    """
    while True:
        coverage = list_coverage(client, image_id, region, deadline)
        pending = [r for r in coverage if r["reason"] in PENDING_REASONS]
        if any(scanned(r) for r in coverage) or not pending:
            break
        deadline.wait(
            f"Inspector's first scan of {', '.join(r['resource_id'] for r in pending)}"
        )

    findings = list_findings(client, image_id, region, deadline)
    logger.debug(
        "Inspector: %d coverage records and %d findings for %s",
        len(coverage),
        len(findings),
        image_id,
    )
    return {"image_id": image_id, "coverage": coverage, "findings": findings}
