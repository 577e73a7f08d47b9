"""Every branch of the AMI-* policies, on recorded describe_images records."""

from __future__ import annotations

import datetime
from typing import Any

import pytest

from pytest_amipolicy.facts import Facts
from pytest_amipolicy.policies import ami
from pytest_amipolicy.verdicts import Verdict

CHECK_DATE = datetime.date(2026, 6, 1)


def record(**fields: Any) -> dict[str, Any]:
    image: dict[str, Any] = {
        "ImageId": "ami-0123456789abcdef0",
        "Architecture": "x86_64",
        "VirtualizationType": "hvm",
        "RootDeviceType": "ebs",
        "CreationDate": "2026-01-15T10:00:00.000Z",
        "ImdsSupport": "v2.0",
        "BlockDeviceMappings": [
            {
                "DeviceName": "/dev/xvda",
                "Ebs": {"SnapshotId": "snap-0aa11bb22cc33dd44", "Encrypted": False},
            }
        ],
    }
    image.update(fields)
    return {key: value for key, value in image.items() if value is not None}


def judge(
    policy_id: str,
    image: dict[str, Any] | None,
    snapshots: dict[str, dict[str, Any]] | None = None,
    region: str | None = "us-east-1",
    **settings: Any,
) -> Verdict:
    facts = Facts(
        target="ami-0123456789abcdef0",
        platform="ami",
        image=image,
        snapshots=snapshots or {},
        region=region,
        check_date=CHECK_DATE,
        settings=settings,
    )
    outcome = ami.CHECKS[policy_id](facts)
    assert outcome.reason
    return outcome.verdict


@pytest.mark.parametrize(
    ("architecture", "verdict"),
    [
        ("x86_64", Verdict.PASS),
        ("arm64", Verdict.PASS),
        ("i386", Verdict.FAIL),
        ("x86_64_mac", Verdict.FAIL),
        (None, Verdict.ERROR),
    ],
)
def test_architecture_passes_only_x86_64_and_arm64(
    architecture: str | None, verdict: Verdict
) -> None:
    assert judge("AMI-ARCH", record(Architecture=architecture)) is verdict


@pytest.mark.parametrize(
    ("kind", "verdict"),
    [("hvm", Verdict.PASS), ("paravirtual", Verdict.FAIL), (None, Verdict.ERROR)],
)
def test_virtualization_must_be_hvm(kind: str | None, verdict: Verdict) -> None:
    assert judge("AMI-HVM", record(VirtualizationType=kind)) is verdict


@pytest.mark.parametrize(
    ("kind", "verdict"),
    [("ebs", Verdict.PASS), ("instance-store", Verdict.FAIL), (None, Verdict.ERROR)],
)
def test_root_device_must_be_ebs(kind: str | None, verdict: Verdict) -> None:
    assert judge("AMI-EBS", record(RootDeviceType=kind)) is verdict


def test_every_policy_is_an_error_without_an_image_record() -> None:
    for policy_id in ("AMI-ARCH", "AMI-HVM", "AMI-EBS", "AMI-UNENCRYPTED", "AMI-AGE"):
        assert judge(policy_id, None) is Verdict.ERROR
    assert judge("AMI-IMDSV2", None) is Verdict.ERROR


def mapping(snapshot: str, encrypted: bool | None, device: str = "/dev/xvda") -> Any:
    ebs: dict[str, Any] = {"SnapshotId": snapshot}
    if encrypted is not None:
        ebs["Encrypted"] = encrypted
    return {"DeviceName": device, "Ebs": ebs}


def test_unencrypted_passes_when_no_mapping_is_encrypted() -> None:
    image = record(BlockDeviceMappings=[mapping("snap-1", False)])

    assert judge("AMI-UNENCRYPTED", image) is Verdict.PASS


def test_unencrypted_fails_on_an_encrypted_mapping() -> None:
    image = record(
        BlockDeviceMappings=[
            mapping("snap-1", False),
            mapping("snap-2", True, "/dev/sdb"),
        ]
    )

    assert judge("AMI-UNENCRYPTED", image) is Verdict.FAIL


def test_unencrypted_fails_when_only_the_snapshot_says_encrypted() -> None:
    image = record(BlockDeviceMappings=[mapping("snap-1", None)])
    snapshots = {"snap-1": {"SnapshotId": "snap-1", "Encrypted": True}}

    assert judge("AMI-UNENCRYPTED", image, snapshots) is Verdict.FAIL


def test_unencrypted_uses_the_snapshot_when_the_mapping_is_silent() -> None:
    image = record(BlockDeviceMappings=[mapping("snap-1", None)])
    snapshots = {"snap-1": {"SnapshotId": "snap-1", "Encrypted": False}}

    assert judge("AMI-UNENCRYPTED", image, snapshots) is Verdict.PASS


def test_unencrypted_is_an_error_when_nothing_reports_encryption() -> None:
    image = record(BlockDeviceMappings=[mapping("snap-1", None)])

    assert judge("AMI-UNENCRYPTED", image) is Verdict.ERROR


def test_unencrypted_ignores_instance_store_mappings() -> None:
    image = record(
        BlockDeviceMappings=[
            mapping("snap-1", False),
            {"DeviceName": "/dev/sdb", "VirtualName": "ephemeral0"},
        ]
    )

    assert judge("AMI-UNENCRYPTED", image) is Verdict.PASS


@pytest.mark.parametrize(
    ("region", "verdict"),
    [("us-east-1", Verdict.PASS), ("eu-west-1", Verdict.FAIL), (None, Verdict.ERROR)],
)
def test_region_must_be_us_east_1(region: str | None, verdict: Verdict) -> None:
    assert judge("AMI-REGION", record(), region=region) is verdict


@pytest.mark.parametrize(
    ("created", "verdict"),
    [
        ("2026-01-15T10:00:00.000Z", Verdict.PASS),
        # 730 days before the check date is the first day that is too old.
        ("2024-06-01T00:00:00.000Z", Verdict.FAIL),
        ("2024-06-02T23:59:59.000Z", Verdict.PASS),
        ("2019-03-01T00:00:00.000Z", Verdict.FAIL),
        ("yesterday", Verdict.ERROR),
        (None, Verdict.ERROR),
    ],
)
def test_age_is_judged_against_the_check_date(
    created: str | None, verdict: Verdict
) -> None:
    assert judge("AMI-AGE", record(CreationDate=created)) is verdict


def test_age_limit_comes_from_the_settings() -> None:
    image = record(CreationDate="2026-01-15T10:00:00.000Z")

    assert judge("AMI-AGE", image, max_age_days=30) is Verdict.FAIL


def test_imdsv2_passes_when_the_image_reports_v2() -> None:
    assert judge("AMI-IMDSV2", record(ImdsSupport="v2.0")) is Verdict.PASS


def test_imdsv2_passes_on_a_recorded_launch_with_imdsv2_required() -> None:
    image = record(ImdsSupport=None)

    assert judge("AMI-IMDSV2", image, imdsv2_required_launch=True) is Verdict.PASS


def test_imdsv2_fails_without_the_attribute_or_a_launch() -> None:
    assert judge("AMI-IMDSV2", record(ImdsSupport=None)) is Verdict.FAIL


def test_every_ami_policy_is_registered_for_the_ami_platform() -> None:
    from pytest_amipolicy import catalogue

    registered = {
        policy_id: entry
        for policy_id, entry in catalogue._REGISTRY.items()
        if entry.family == "ami"
    }

    assert set(registered) == set(ami.CHECKS)
    assert all(entry.platforms == {"ami"} for entry in registered.values())
    assert all(entry.check is ami.CHECKS[pid] for pid, entry in registered.items())
