"""Removal of expired, tagged resources left by runs that could not clean up."""

from __future__ import annotations

import datetime
from typing import Any

from pytest_amipolicy.aws import cleanup
from tests.functional.conftest import AMAZON_LINUX_AMI

NOW = datetime.datetime(2026, 6, 1, 12, 0, tzinfo=datetime.timezone.utc)


def leave_run(ec2: Any, run_id: str, started: datetime.datetime) -> dict[str, str]:
    """Create what a run creates, tagged as that run would tag it."""
    tags = cleanup.run_tags(run_id, started)
    name = f"amipolicy-{run_id}"
    ec2.import_key_pair(
        KeyName=name,
        PublicKeyMaterial=b"ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGw5Zm9vYmFyYmF6cXV4cXV1eHh4eHh4eHh4eHh4eHh4 t",
        TagSpecifications=[{"ResourceType": "key-pair", "Tags": tags}],
    )
    group = ec2.create_security_group(
        GroupName=name,
        Description="test",
        TagSpecifications=[{"ResourceType": "security-group", "Tags": tags}],
    )
    instance = ec2.run_instances(
        ImageId=AMAZON_LINUX_AMI,
        MinCount=1,
        MaxCount=1,
        TagSpecifications=[{"ResourceType": "instance", "Tags": tags}],
    )["Instances"][0]
    return {"key": name, "group": group["GroupId"], "instance": instance["InstanceId"]}


def state(ec2: Any, instance_id: str) -> str:
    reservations = ec2.describe_instances(InstanceIds=[instance_id])["Reservations"]
    return str(reservations[0]["Instances"][0]["State"]["Name"])


def test_expired_runs_are_removed_and_current_ones_are_kept(ec2: Any) -> None:
    old = leave_run(ec2, "old00001", NOW - datetime.timedelta(hours=3))
    current = leave_run(ec2, "new00002", NOW - datetime.timedelta(minutes=10))

    removed = cleanup.cleanup_expired(ec2, NOW, delay=0.1)

    assert removed == [
        f"terminated instance {old['instance']} in us-east-1",
        f"deleted security group {old['group']} in us-east-1",
        f"deleted key pair {old['key']} in us-east-1",
    ]
    assert state(ec2, old["instance"]) == "terminated"
    assert state(ec2, current["instance"]) == "running"
    pairs = [pair["KeyName"] for pair in ec2.describe_key_pairs()["KeyPairs"]]
    assert pairs == [current["key"]]


def test_untagged_resources_are_never_touched(ec2: Any) -> None:
    instance = ec2.run_instances(ImageId=AMAZON_LINUX_AMI, MinCount=1, MaxCount=1)
    instance_id = instance["Instances"][0]["InstanceId"]
    ec2.create_security_group(GroupName="someone-elses", Description="theirs")

    removed = cleanup.cleanup_expired(ec2, NOW + datetime.timedelta(days=365))

    assert removed == []
    assert state(ec2, instance_id) == "running"


def test_a_second_cleanup_finds_nothing_left(ec2: Any) -> None:
    leave_run(ec2, "old00003", NOW - datetime.timedelta(hours=5))
    cleanup.cleanup_expired(ec2, NOW, delay=0.1)

    assert cleanup.cleanup_expired(ec2, NOW, delay=0.1) == []


def test_the_expiry_tag_is_two_hours_after_the_start() -> None:
    tags = cleanup.run_tags("abc", NOW)

    assert cleanup.expiry(tags) == NOW + datetime.timedelta(hours=2)
    assert {"Key": "amipolicy:run", "Value": "abc"} in tags


def test_an_unreadable_expiry_means_never_expired() -> None:
    assert cleanup.expiry([{"Key": "amipolicy:expires", "Value": "soon"}]) is None
    assert cleanup.expiry(None) is None
