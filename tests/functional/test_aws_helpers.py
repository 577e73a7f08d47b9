"""The pure helpers of the aws package: ids, users, types, mappings, errors."""

from __future__ import annotations

import base64
import stat
from pathlib import Path

import botocore.exceptions
import pytest

from pytest_amipolicy.aws import images, instances, keys, network
from pytest_amipolicy.aws.session import cloud_error


@pytest.mark.parametrize(
    ("value", "valid"),
    [
        ("ami-0123456789abcdef0", True),
        ("ami-12345678", True),
        ("ami-0123456789ABCDEF0", False),
        ("ami-123", False),
        ("0123456789abcdef0", False),
        ("ami-0123456789abcdef0 ", False),
    ],
)
def test_ami_ids_have_the_short_or_the_long_form(value: str, valid: bool) -> None:
    assert bool(images.AMI_ID_PATTERN.match(value)) is valid


@pytest.mark.parametrize(
    ("name", "users"),
    [
        ("al2023-ami-2023.4-kernel-6.1-x86_64", ("ec2-user",)),
        ("ubuntu/images/hvm-ssd/ubuntu-jammy-22.04-amd64-server", ("ubuntu",)),
        ("debian-12-amd64-20240101", ("admin",)),
        ("RHEL-9.3.0_HVM-20240117-x86_64", ("ec2-user", "cloud-user")),
        ("Rocky-9-EC2-Base-9.3", ("rocky", "ec2-user")),
        ("bitnami-wordpress-6.4-debian-12", ("bitnami",)),
        ("suse-sles-15-sp5", ("ec2-user",)),
        ("my-product-1.0", images.FALLBACK_USERS),
    ],
)
def test_login_users_are_guessed_from_the_image_name(
    name: str, users: tuple[str, ...]
) -> None:
    assert images.login_users({"Name": name}) == users


def test_a_configured_user_is_the_only_one_tried() -> None:
    assert images.login_users({"Name": "ubuntu"}, "deploy") == ("deploy",)


def test_the_instance_type_follows_the_architecture_unless_overridden() -> None:
    assert images.instance_type({"Architecture": "x86_64"}) == "t3.micro"
    assert images.instance_type({"Architecture": "arm64"}) == "t4g.micro"
    assert images.instance_type({"Architecture": "arm64"}, "m7g.large") == "m7g.large"


def test_every_ebs_volume_of_the_image_is_deleted_with_the_instance() -> None:
    record = {
        "BlockDeviceMappings": [
            {
                "DeviceName": "/dev/xvda",
                "Ebs": {"SnapshotId": "snap-1", "VolumeSize": 8},
            },
            {"DeviceName": "/dev/sdb", "VirtualName": "ephemeral0"},
            {"DeviceName": "/dev/sdc", "Ebs": {"SnapshotId": "snap-2"}},
        ]
    }

    assert images.launch_block_devices(record) == [
        {
            "DeviceName": "/dev/xvda",
            "Ebs": {"DeleteOnTermination": True, "VolumeSize": 8},
        },
        {"DeviceName": "/dev/sdc", "Ebs": {"DeleteOnTermination": True}},
    ]


@pytest.mark.parametrize(
    ("record", "platform"),
    [
        ({"Platform": "windows"}, "windows"),
        ({"PlatformDetails": "Windows with SQL Server Standard"}, "windows"),
        ({"PlatformDetails": "Linux/UNIX"}, "linux"),
        ({}, "linux"),
    ],
)
def test_the_platform_comes_from_the_image_fields(record: dict, platform: str) -> None:
    assert images.image_platform(record) == platform


def test_console_output_is_decoded_from_base64_when_it_is_base64() -> None:
    encoded = base64.b64encode(b"login: \xe2\x9c\x93\n").decode()

    assert instances.decode_console(encoded) == "login: \u2713\n"
    assert (
        instances.decode_console("plain text, not base64") == "plain text, not base64"
    )


def test_the_launch_key_file_is_private_and_removed(tmp_path: Path) -> None:
    key = keys.make_launch_key("linux", "amipolicy-test")

    mode = stat.S_IMODE(key.path.stat().st_mode)
    assert mode == 0o600
    assert key.public_openssh.startswith("ssh-ed25519 ")
    assert key.fingerprint.startswith("SHA256:")
    assert b"PRIVATE KEY" in key.path.read_bytes()
    assert keys.remove_private_key(key.path) is True
    assert keys.remove_private_key(key.path) is False


def test_windows_gets_an_rsa_launch_key() -> None:
    private, public = keys.generate("windows", "amipolicy-test")

    assert public.startswith("ssh-rsa ")


def test_the_ingress_range_is_the_looked_up_address_alone() -> None:
    assert network.ingress_cidr(None, lambda: "198.51.100.4") == "198.51.100.4/32"
    assert network.ingress_cidr("10.0.0.0/8", lambda: "unused") == "10.0.0.0/8"


def test_errors_without_credentials_say_how_to_configure_them() -> None:
    error = cloud_error(botocore.exceptions.NoCredentialsError(), "DescribeImages", "r")

    assert "aws configure" in str(error)


def test_a_denied_call_names_its_iam_action() -> None:
    denied = botocore.exceptions.ClientError(
        {"Error": {"Code": "UnauthorizedOperation", "Message": "no"}}, "RunInstances"
    )

    assert "ec2:RunInstances" in str(cloud_error(denied, "RunInstances", "eu-west-1"))
