"""The shared AMI cases, through the real describe path against moto.

moto keeps a snapshot's encryption but ignores the attributes given to
register_image (virtualization type, architecture, the mapping's Encrypted
flag), so describe_images answers from a Stubber with the case's exact fields
over moto's own record; describe_snapshots answers from moto itself.
"""

from __future__ import annotations

import copy
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber

from pytest_amipolicy.facts import Facts
from pytest_amipolicy.policies import ami
from tests.functional.conftest import REGION
from tests.support.cases import Case, load_cases

CASES = [pytest.param(case, id=case.id) for case in load_cases("ami")]


def register_like(ec2: Any, image: dict[str, Any]) -> tuple[str, dict[str, str]]:
    """Register an AMI in moto whose snapshots are encrypted as the case says.

    Returns the AMI id and case snapshot id -> moto snapshot id.
    """
    renamed: dict[str, str] = {}
    mappings = []
    for mapping in image["BlockDeviceMappings"]:
        ebs = mapping["Ebs"]
        volume = ec2.create_volume(
            AvailabilityZone=f"{REGION}a", Size=8, Encrypted=ebs["Encrypted"]
        )
        snapshot = ec2.create_snapshot(VolumeId=volume["VolumeId"])
        renamed[ebs["SnapshotId"]] = snapshot["SnapshotId"]
        mappings.append(
            {
                "DeviceName": mapping["DeviceName"],
                "Ebs": {"SnapshotId": snapshot["SnapshotId"]},
            }
        )

    registered = ec2.register_image(
        Name=f"case-{len(renamed)}-{mappings[0]['Ebs']['SnapshotId']}",
        Architecture=image["Architecture"],
        VirtualizationType=image["VirtualizationType"],
        RootDeviceName=image["BlockDeviceMappings"][0]["DeviceName"],
        BlockDeviceMappings=mappings,
    )
    return registered["ImageId"], renamed


def case_record(
    moto_record: dict[str, Any], image: dict[str, Any], renamed: dict[str, str]
) -> dict[str, Any]:
    record = {**moto_record, **copy.deepcopy(image)}
    for mapping in record["BlockDeviceMappings"]:
        mapping["Ebs"]["SnapshotId"] = renamed[mapping["Ebs"]["SnapshotId"]]
    return record


def test_the_ami_cases_are_found() -> None:
    assert CASES


@pytest.mark.parametrize("case", CASES)
def test_ami_case_gets_its_expected_verdicts_through_the_describe_path(
    make_target: Any, ec2: Any, case: Case
) -> None:
    image_id, renamed = register_like(ec2, case.image)
    moto_record = ec2.describe_images(ImageIds=[image_id])["Images"][0]
    record = case_record(moto_record, case.image, renamed)
    moto_snapshots = ec2.describe_snapshots(SnapshotIds=list(renamed.values()))

    stubbed = boto3.client("ec2", region_name=REGION)
    stubber = Stubber(stubbed)
    stubber.add_response(
        "describe_images", {"Images": [record]}, {"ImageIds": [image_id]}
    )
    stubber.add_response(
        "describe_snapshots",
        {"Snapshots": moto_snapshots["Snapshots"]},
        {"SnapshotIds": list(renamed.values())},
    )

    with stubber:
        target = make_target(image_id, client=stubbed)
        facts = Facts(
            target=target.label,
            platform="ami",
            image=target.image_record(),
            snapshots=target.snapshots(),
            region=target.region,
        )
    stubber.assert_no_pending_responses()

    verdicts = {pid: ami.CHECKS[pid](facts).verdict.value for pid in case.expect}
    assert verdicts == case.expect


@pytest.mark.parametrize("case", CASES)
def test_moto_keeps_the_snapshot_encryption_the_case_relies_on(
    ec2: Any, case: Case
) -> None:
    _, renamed = register_like(ec2, case.image)

    snapshots = ec2.describe_snapshots(SnapshotIds=list(renamed.values()))["Snapshots"]
    expected = [m["Ebs"]["Encrypted"] for m in case.image["BlockDeviceMappings"]]
    assert [s["Encrypted"] for s in snapshots] == expected
