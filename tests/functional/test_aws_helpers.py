"""The pure helpers of the aws package: ids, users, types, mappings, errors."""

from __future__ import annotations

import base64
import socket
import stat
from pathlib import Path
from typing import Any

import boto3
import botocore.exceptions
import pytest
from botocore.stub import Stubber

from pytest_amipolicy.aws import images, instances, keys, network
from pytest_amipolicy.aws.session import cloud_error
from pytest_amipolicy.errors import CloudError


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


DENIED_MESSAGE = (
    "You are not authorized to perform this operation. User: "
    "arn:aws:iam::123456789012:user/seller is not authorized to perform: "
    "ec2:DescribeInstances because no identity-based policy allows the action"
)


def stubbed_ec2() -> tuple[Any, Stubber]:
    client = boto3.client(
        "ec2",
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    return client, Stubber(client)


def described(state: str, reason: dict[str, str] | None = None) -> dict[str, Any]:
    instance: dict[str, Any] = {"InstanceId": "i-0abc", "State": {"Name": state}}
    if reason:
        instance["StateReason"] = reason
    return {"Reservations": [{"Instances": [instance]}]}


def test_a_refused_describe_while_waiting_names_the_action_not_the_timeout() -> None:
    client, stubber = stubbed_ec2()
    stubber.add_client_error(
        "describe_instances", "UnauthorizedOperation", DENIED_MESSAGE
    )

    with stubber, pytest.raises(CloudError) as caught:
        instances.wait_running(client, "i-0abc", 30.0, 0.05, "us-east-1")

    message = str(caught.value)
    assert "the IAM permission ec2:DescribeInstances" in message
    assert "user/seller is not authorized to perform" in message
    assert "--ami-boot-timeout" not in message


def test_an_instance_that_ends_right_after_launch_says_so_with_ec2s_reason() -> None:
    client, stubber = stubbed_ec2()
    stubber.add_response(
        "describe_instances",
        described(
            "terminated",
            {
                "Code": "Client.InternalError",
                "Message": "Client.InternalError: Client error on launch",
            },
        ),
    )
    stubber.add_response(
        "get_console_output",
        {"InstanceId": "i-0abc", "Output": base64.b64encode(b"kernel panic").decode()},
        {"InstanceId": "i-0abc", "Latest": True},
    )

    with stubber, pytest.raises(CloudError) as caught:
        instances.wait_running(client, "i-0abc", 30.0, 0.05, "us-east-1")

    message = str(caught.value)
    assert message.startswith(
        "i-0abc stopped right after launch (state terminated, EC2's reason: "
        "Client.InternalError: Client error on launch)"
    )
    assert message.endswith("\nkernel panic")
    assert "--ami-boot-timeout" not in message


def test_a_refused_describe_after_terminating_names_the_action() -> None:
    client, stubber = stubbed_ec2()
    stubber.add_response("terminate_instances", {}, {"InstanceIds": ["i-0abc"]})
    stubber.add_client_error(
        "describe_instances", "UnauthorizedOperation", DENIED_MESSAGE
    )

    with stubber, pytest.raises(CloudError) as caught:
        instances.terminate(client, "i-0abc", 30.0, 0.05, "us-east-1")

    message = str(caught.value)
    assert message.startswith("i-0abc was asked to terminate, but whether it did")
    assert "ec2:DescribeInstances" in message
    assert "is not terminated after" not in message


def test_a_denied_call_keeps_awss_own_message() -> None:
    denied = botocore.exceptions.ClientError(
        {"Error": {"Code": "UnauthorizedOperation", "Message": DENIED_MESSAGE}},
        "DescribeInstances",
    )

    message = str(cloud_error(denied, "DescribeInstances", "us-east-1"))

    assert "user/seller is not authorized to perform: ec2:DescribeInstances" in message
    assert "lack the IAM permission ec2:DescribeInstances" in message


def test_auth_failure_is_about_the_credentials_not_a_permission() -> None:
    rejected = botocore.exceptions.ClientError(
        {
            "Error": {
                "Code": "AuthFailure",
                "Message": "AWS was not able to validate the provided access "
                "credentials",
            }
        },
        "DescribeImages",
    )

    message = str(cloud_error(rejected, "DescribeImages", "us-east-1"))

    assert "did not accept the credentials (AuthFailure: AWS was not able" in message
    assert "aws sts get-caller-identity" in message
    assert "IAM permission" not in message


@pytest.mark.parametrize("address", ["198.51.100.4", "2001:db8::1", "example.com"])
def test_no_test_can_connect_off_this_machine(
    address: str, offsite_connections: list[str]
) -> None:
    family = socket.AF_INET6 if ":" in address else socket.AF_INET

    with socket.socket(family) as probe, pytest.raises(pytest.fail.Exception):
        probe.connect((address, 22))

    assert offsite_connections == [repr((address, 22))]
    # Seen; the guard would otherwise fail this test too at teardown.
    offsite_connections.clear()
