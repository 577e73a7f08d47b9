"""Describing an AMI and its snapshots, and what a launch needs to know of it.

The records are returned as boto3 gives them: the AMI-* policies read them as
they are, and a reviewer can compare them with ``aws ec2 describe-images``.
"""

from __future__ import annotations

import logging
import re
from typing import Any

from pytest_amipolicy.aws.session import error_code, translated
from pytest_amipolicy.errors import CloudError

logger = logging.getLogger(__name__)

# Both the old 8-digit and the current 17-digit forms of an AMI id.
AMI_ID_PATTERN = re.compile(r"^ami-([0-9a-f]{8}|[0-9a-f]{17})$")

# The architectures Marketplace accepts, with the instance type launched for each:
# the smallest burstable type that exists in every commercial region.
INSTANCE_TYPES = {"x86_64": "t3.micro", "arm64": "t4g.micro"}
SUPPORTED_ARCHITECTURES = tuple(INSTANCE_TYPES)

# Login users tried when --ami-user is not given, by words found in the image's
# name or description; the first match wins, its users are tried in order.
LOGIN_USERS: tuple[tuple[tuple[str, ...], tuple[str, ...]], ...] = (
    (("bitnami",), ("bitnami",)),
    (("amzn", "amazon linux", "al2023", "al2022"), ("ec2-user",)),
    (("ubuntu",), ("ubuntu",)),
    (("debian",), ("admin",)),
    (("rocky",), ("rocky", "ec2-user")),
    (("alma",), ("ec2-user", "almalinux")),
    (("centos",), ("centos", "ec2-user")),
    (("rhel", "red hat"), ("ec2-user", "cloud-user")),
    (("fedora",), ("fedora", "ec2-user")),
    (("suse", "sles"), ("ec2-user",)),
    (("freebsd",), ("ec2-user",)),
)
FALLBACK_USERS = ("ec2-user", "ubuntu", "admin", "centos", "rocky", "cloud-user")

# Snapshot lookups that fail because the snapshot belongs to another account:
# the mapping's own Encrypted flag still decides AMI-UNENCRYPTED then.
UNREADABLE_SNAPSHOT_CODES = frozenset(
    {"InvalidSnapshot.NotFound", "UnauthorizedOperation", "AccessDenied"}
)


def describe_image(ec2: Any, image_id: str, region: str) -> dict[str, Any]:
    """Return the describe_images record of ``image_id`` in ``region``.

    Raises :class:`CloudError` naming the region when the AMI does not exist
    there, is not shared with the caller, or was deregistered.
    """
    try:
        with translated("DescribeImages", region):
            response = ec2.describe_images(ImageIds=[image_id])
    except CloudError as error:
        code = error_code(error.__cause__)
        if code in ("InvalidAMIID.NotFound", "InvalidAMIID.Unavailable"):
            raise CloudError(missing_image_message(image_id, region)) from error
        if code == "InvalidAMIID.Malformed":
            raise CloudError(
                f"{image_id} is not a valid AMI id: use the form ami-0123456789abcdef0"
            ) from error
        raise

    images = response.get("Images", [])
    if not images:
        # EC2 hides deregistered AMIs from plain lookups after a while.
        raise CloudError(missing_image_message(image_id, region))

    record: dict[str, Any] = images[0]
    if record.get("State") == "deregistered":
        raise CloudError(
            f"{image_id} was deregistered in {region}: register it again "
            "or check a current AMI id"
        )

    return record


def missing_image_message(image_id: str, region: str) -> str:
    return (
        f"{image_id} does not exist in region {region} or is not shared with this "
        "account: check the id, or pass --ami-region with the AMI's region"
    )


def check_launchable(record: dict[str, Any], region: str) -> None:
    """Raise :class:`CloudError` when the AMI cannot be launched as it is.

    The attribute policies still judge such an image; only the launch is refused.
    """
    image_id = record.get("ImageId", "the AMI")
    state = record.get("State", "available")
    if state != "available":
        raise CloudError(
            f"{image_id} in {region} is {state}, not available: wait until "
            "`aws ec2 describe-images` reports it available, then rerun"
        )

    architecture = record.get("Architecture")
    if architecture not in SUPPORTED_ARCHITECTURES:
        raise CloudError(
            f"{image_id} has architecture {architecture!r}, which cannot be launched "
            f"for checking: supported are {', '.join(SUPPORTED_ARCHITECTURES)}"
        )


def snapshot_ids(record: dict[str, Any]) -> list[str]:
    """Return the snapshot ids of the image's EBS block device mappings."""
    ids = []
    for mapping in record.get("BlockDeviceMappings", []):
        snapshot = mapping.get("Ebs", {}).get("SnapshotId")
        if snapshot:
            ids.append(snapshot)
    return ids


def describe_snapshots(
    ec2: Any, ids: list[str], region: str
) -> dict[str, dict[str, Any]]:
    """Return snapshot id -> describe_snapshots record for the readable ones.

    Snapshots of another account's AMI are usually not visible to the caller;
    those are left out rather than failing, so the mappings still decide.
    """
    if not ids:
        return {}

    try:
        with translated("DescribeSnapshots", region):
            response = ec2.describe_snapshots(SnapshotIds=ids)
        return {s["SnapshotId"]: s for s in response.get("Snapshots", [])}
    except CloudError as error:
        if error_code(error.__cause__) not in UNREADABLE_SNAPSHOT_CODES:
            raise
        logger.debug("describing snapshots %s together failed: %s", ids, error)

    # One unreadable snapshot fails the whole call: ask for each alone.
    records: dict[str, dict[str, Any]] = {}
    for snapshot_id in ids:
        try:
            with translated("DescribeSnapshots", region):
                response = ec2.describe_snapshots(SnapshotIds=[snapshot_id])
        except CloudError as error:
            if error_code(error.__cause__) not in UNREADABLE_SNAPSHOT_CODES:
                raise
            logger.info("snapshot %s is not readable: %s", snapshot_id, error)
            continue
        for snapshot in response.get("Snapshots", []):
            records[snapshot["SnapshotId"]] = snapshot

    return records


def image_platform(record: dict[str, Any]) -> str:
    """Return ``"windows"`` or ``"linux"`` from the image's platform fields."""
    platform = str(record.get("Platform", "")).lower()
    details = str(record.get("PlatformDetails", "")).lower()
    if platform == "windows" or details.startswith("windows"):
        return "windows"
    return "linux"


def login_users(record: dict[str, Any], user: str | None = None) -> tuple[str, ...]:
    """Return the login users to try, in order: the given one, else by distribution."""
    if user:
        return (user,)

    text = " ".join(
        str(record.get(field, "")) for field in ("Name", "Description", "ImageLocation")
    ).lower()
    for words, users in LOGIN_USERS:
        if any(word in text for word in words):
            return users

    return FALLBACK_USERS


def instance_type(record: dict[str, Any], override: str | None = None) -> str:
    """Return the instance type to launch the image on."""
    if override:
        return override
    return INSTANCE_TYPES[str(record.get("Architecture"))]


def launch_block_devices(record: dict[str, Any]) -> list[dict[str, Any]]:
    """Return mappings that make every EBS volume of the image go with the instance.

    Only DeleteOnTermination changes; the size is repeated because EC2 wants a
    size or a snapshot in an override, and the snapshot may not be ours to name.
    """
    mappings = []
    for mapping in record.get("BlockDeviceMappings", []):
        ebs = mapping.get("Ebs")
        if not ebs:
            continue
        override: dict[str, Any] = {"DeleteOnTermination": True}
        if "VolumeSize" in ebs:
            override["VolumeSize"] = ebs["VolumeSize"]
        mappings.append({"DeviceName": mapping["DeviceName"], "Ebs": override})
    return mappings
