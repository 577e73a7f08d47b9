"""GuardDuty Malware Protection's scan of the AMI.

GuardDuty scans an AMI's snapshots on demand (``StartMalwareScan`` with the
image's ARN and a role GuardDuty may assume to read it) and reports the result
through ``GetMalwareScan``. An AMI never changes after registration, so a scan
that already completed is as good as a new one: ``ListMalwareScans`` is asked
first, and a scan is started only when none exists and a role was given.
"""

from __future__ import annotations

import logging
import uuid
from typing import Any

from pytest_amipolicy.aws.amazon import (
    AmazonCheckError,
    Deadline,
    call,
    pages,
    partition,
)

logger = logging.getLogger(__name__)

SERVICE = "guardduty"
SCANS_PAGE = 50
DONE = ("COMPLETED", "COMPLETED_WITH_ISSUES")
RUNNING = "RUNNING"


def image_arn(record: dict[str, Any], region: str) -> str:
    """Return the image's ARN with its owner account, the form GuardDuty takes."""
    owner = record.get("OwnerId")
    image_id = record.get("ImageId")
    if not owner or not image_id:
        raise AmazonCheckError(
            "the describe_images record lacks ImageId or OwnerId, which the "
            "malware scan's resource ARN needs"
        )
    return f"arn:{partition(region)}:ec2:{region}:{owner}:image/{image_id}"


def list_scans(
    client: Any, arn: str, region: str, deadline: Deadline | None = None
) -> list[dict[str, Any]]:
    """Return the malware scans of ``arn``, newest first."""
    criteria = {
        "ListMalwareScansFilterCriterion": [
            {
                "ListMalwareScansCriterionKey": "RESOURCE_ARN",
                "FilterCondition": {"EqualsValue": arn},
            }
        ]
    }
    scans: list[dict[str, Any]] = []
    for page in pages(
        client,
        SERVICE,
        "ListMalwareScans",
        region,
        deadline,
        FilterCriteria=criteria,
        PaginationConfig={"PageSize": SCANS_PAGE},
    ):
        scans.extend(page.get("Scans", []))

    # Sorted here: the service's sort keys for this call are not documented.
    return sorted(scans, key=lambda s: str(s.get("ScanStartedAt") or ""), reverse=True)


def choose_scan(scans: list[dict[str, Any]]) -> dict[str, Any] | None:
    """Return the scan to report: the newest finished one, else a running one."""
    for wanted in (DONE, (RUNNING,)):
        for scan in scans:
            if scan.get("ScanStatus") in wanted:
                return scan
    return None


def start_scan(
    client: Any, arn: str, role: str, region: str, token: str | None = None
) -> str:
    response = call(
        client,
        SERVICE,
        "StartMalwareScan",
        region,
        ResourceArn=arn,
        ClientToken=token or uuid.uuid4().hex,
        ScanConfiguration={"Role": role},
    )
    return str(response["ScanId"])


def get_scan(client: Any, scan_id: str, region: str) -> dict[str, Any]:
    return call(client, SERVICE, "GetMalwareScan", region, ScanId=scan_id)


def _scan_record(scan: dict[str, Any]) -> dict[str, Any]:
    details = scan.get("ScanResultDetails", {})
    threats = [
        {
            "name": threat.get("Name"),
            "source": threat.get("Source"),
            "count": threat.get("Count"),
            "hash": threat.get("Hash"),
            "paths": [
                item.get("ItemPath")
                for item in threat.get("ItemDetails", [])
                if item.get("ItemPath")
            ],
        }
        for threat in details.get("Threats", [])
    ]
    return {
        "scan_id": scan.get("ScanId"),
        "resource_arn": scan.get("ResourceArn"),
        "scan_status": scan.get("ScanStatus"),
        "status_reason": scan.get("ScanStatusReason"),
        "result": details.get("ScanResultStatus"),
        "threats": threats,
        "files": {
            "total": details.get("TotalFileCount"),
            "threats": details.get("ThreatFoundFileCount"),
            "skipped": details.get("SkippedFileCount"),
            "failed": details.get("FailedFileCount"),
        },
        "resources": [
            {
                "arn": resource.get("ScannedResourceArn"),
                "type": resource.get("ScannedResourceType"),
                "status": resource.get("ScannedResourceStatus"),
                "reason": resource.get("ScanStatusReason"),
            }
            for resource in scan.get("ScannedResources", [])
        ],
        "started": scan.get("ScanStartedAt"),
        "completed": scan.get("ScanCompletedAt"),
    }


def gather(
    client: Any,
    record: dict[str, Any],
    region: str,
    role: str | None,
    deadline: Deadline,
    *,
    token: str | None = None,
) -> dict[str, Any]:
    """Return the newest GuardDuty malware scan of the AMI, waiting for it to end."""
    arn = image_arn(record, region)
    scans = list_scans(client, arn, region, deadline)
    chosen = choose_scan(scans)

    started = False
    if chosen is not None:
        scan_id = str(chosen["ScanId"])
    elif role:
        scan_id = start_scan(client, arn, role, region, token)
        started = True
        logger.info("started GuardDuty malware scan %s of %s", scan_id, arn)
    elif scans:
        # Every earlier scan failed or was skipped: its reason is the evidence.
        scan_id = str(scans[0]["ScanId"])
    else:
        raise AmazonCheckError(
            f"GuardDuty has no malware scan of {arn}: set amipolicy_guardduty_role "
            "to a role GuardDuty Malware Protection may assume to scan the AMI, or "
            "start a scan of it in the GuardDuty console"
        )

    scan = get_scan(client, scan_id, region)
    while scan.get("ScanStatus") == RUNNING:
        deadline.wait(f"GuardDuty malware scan {scan_id}")
        scan = get_scan(client, scan_id, region)

    return {**_scan_record(scan), "resource_arn": arn, "started_by_run": started}
