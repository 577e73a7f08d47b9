"""The tags every created resource carries, and removal of expired ones.

Each instance, volume, key pair and security group of a run is tagged with the
run id and an expiry time. A run that was killed before it could clean up
(SIGKILL, a lost laptop lid) leaves resources that ``pytest --ami-cleanup``
finds by these tags and removes once they have expired.
"""

from __future__ import annotations

import datetime
import logging
import sys
from typing import TYPE_CHECKING, Any

from pytest_amipolicy.aws import instances, keys, network, session
from pytest_amipolicy.aws.session import translated
from pytest_amipolicy.errors import CloudError

if TYPE_CHECKING:
    import pytest

logger = logging.getLogger(__name__)

TAG_RUN = "amipolicy:run"
TAG_EXPIRES = "amipolicy:expires"
TAG_NAME = "Name"

# Long enough for a slow Windows boot and a malware scan, short enough that a
# forgotten resource does not cost much before the next cleanup.
LIFETIME = datetime.timedelta(hours=2)


def run_tags(run_id: str, now: datetime.datetime) -> list[dict[str, str]]:
    """Return the tags for a resource created by run ``run_id`` at ``now``."""
    expires = (now + LIFETIME).astimezone(datetime.timezone.utc)
    return [
        {"Key": TAG_RUN, "Value": run_id},
        {"Key": TAG_EXPIRES, "Value": expires.isoformat(timespec="seconds")},
        {"Key": TAG_NAME, "Value": f"amipolicy-{run_id}"},
    ]


def expiry(tags: list[dict[str, str]] | None) -> datetime.datetime | None:
    """Return the resource's expiry time, or None if it has no readable one."""
    for tag in tags or []:
        if tag.get("Key") == TAG_EXPIRES:
            try:
                moment = datetime.datetime.fromisoformat(tag.get("Value", ""))
            except ValueError:
                return None
            if moment.tzinfo is None:
                moment = moment.replace(tzinfo=datetime.timezone.utc)
            return moment
    return None


def _expired(tags: list[dict[str, str]] | None, now: datetime.datetime) -> bool:
    moment = expiry(tags)
    return moment is not None and moment <= now


def cleanup_expired(
    ec2: Any,
    now: datetime.datetime | None = None,
    *,
    region: str = "",
    timeout: float = 600.0,
    delay: float = 5.0,
) -> list[str]:
    """Remove every tagged instance, security group and key pair that has expired.

    Returns a line per removed resource. Instances go first: a security group
    cannot be deleted while an instance still uses it.
    """
    now = now or datetime.datetime.now(datetime.timezone.utc)
    region = region or ec2.meta.region_name
    tagged = [{"Name": "tag-key", "Values": [TAG_RUN]}]
    removed: list[str] = []

    with translated("DescribeInstances", region):
        pages = ec2.get_paginator("describe_instances").paginate(
            Filters=tagged
            + [
                {
                    "Name": "instance-state-name",
                    "Values": ["pending", "running", "stopping", "stopped"],
                }
            ]
        )
        found = [
            instance
            for page in pages
            for reservation in page["Reservations"]
            for instance in reservation["Instances"]
        ]
    for instance in found:
        if _expired(instance.get("Tags"), now):
            instance_id = instance["InstanceId"]
            instances.terminate(ec2, instance_id, timeout, delay, region)
            removed.append(f"terminated instance {instance_id} in {region}")

    with translated("DescribeSecurityGroups", region):
        groups = ec2.describe_security_groups(Filters=tagged)["SecurityGroups"]
    for group in groups:
        if _expired(group.get("Tags"), now) and network.delete_security_group(
            ec2, group["GroupId"], region, delay=delay
        ):
            removed.append(f"deleted security group {group['GroupId']} in {region}")

    with translated("DescribeKeyPairs", region):
        pairs = ec2.describe_key_pairs(Filters=tagged)["KeyPairs"]
    for pair in pairs:
        if _expired(pair.get("Tags"), now):
            keys.delete_key_pair(ec2, pair["KeyName"], region)
            removed.append(f"deleted key pair {pair['KeyName']} in {region}")

    logger.info("cleanup in %s removed %d expired resources", region, len(removed))
    return removed


def run_cleanup(config: pytest.Config) -> int:
    """Run ``pytest --ami-cleanup``: remove expired resources, report, exit.

    This runs instead of a test session, before pytest's terminal reporter
    exists, so lines go straight to standard output.
    """
    import pytest

    region = config.getoption("ami_region", None) or config.getini("amipolicy_region")
    try:
        ec2 = session.ec2_client(session.make_session(region or None))
        removed = cleanup_expired(ec2)
    except CloudError as error:
        raise pytest.UsageError(f"--ami-cleanup: {error}") from error

    for line in removed:
        sys.stdout.write(f"amipolicy cleanup: {line}\n")
    if not removed:
        sys.stdout.write(
            f"amipolicy cleanup: nothing expired in {ec2.meta.region_name}\n"
        )
    return int(pytest.ExitCode.OK)
