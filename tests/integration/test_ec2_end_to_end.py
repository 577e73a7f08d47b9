"""``--ami`` end to end: moto plays EC2, a booted Debian container plays the instance.

The plugin runs in its own process exactly as a seller runs it, with boto3
pointed at a moto server on loopback. moto's instance addresses belong to
nobody, so the run's conftest answers the connect-address hook by booting the
project's Debian image with the key pair the plugin imported, as cloud-init
would on EC2, and returns the container's address instead.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest

from pytest_amipolicy.catalogue import all_policies
from tests.support.moto import moto_server, reset

pytestmark = [pytest.mark.integration, pytest.mark.xdist_group("ec2-end-to-end")]

REPO = Path(__file__).resolve().parents[2]
MOTO_UBUNTU_AMI = "ami-785db401"

RUN_CONFTEST = """
import contextlib
import os
from pathlib import Path

import boto3

from pytest_amipolicy.imaging.boot import booted

machines = contextlib.ExitStack()


def pytest_amipolicy_connect_address(config, instance, target):
    ec2 = boto3.client("ec2")
    pairs = ec2.describe_key_pairs(KeyNames=[instance["KeyName"]], IncludePublicKey=True)
    machine = machines.enter_context(
        booted(
            Path(os.environ["AMIPOLICY_TEST_IMAGE"]),
            login_user="admin",
            public_key=pairs["KeyPairs"][0]["PublicKey"],
        )
    )
    return machine.address, machine.port


def pytest_unconfigure(config):
    machines.close()
"""


@pytest.fixture(scope="module")
def aws(debian_image: Path) -> Iterator[dict[str, str]]:
    with moto_server() as environment:
        yield {
            **{k: v for k, v in os.environ.items() if not k.startswith("AWS_")},
            **environment,
            "AMIPOLICY_TEST_IMAGE": str(debian_image),
        }


@pytest.fixture
def ec2(aws: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> Any:
    reset(aws["AWS_ENDPOINT_URL"])
    for name, value in aws.items():
        if name.startswith("AWS_"):
            monkeypatch.setenv(name, value)
    return boto3.client("ec2")


@pytest.fixture
def debian_ami(ec2: Any) -> str:
    # moto ignores the attributes given to register_image; an image made from
    # an instance of one of its built-in x86_64 HVM AMIs keeps them.
    builder = ec2.run_instances(ImageId=MOTO_UBUNTU_AMI, MinCount=1, MaxCount=1)
    instance_id = builder["Instances"][0]["InstanceId"]
    image = ec2.create_image(
        InstanceId=instance_id,
        Name="debian-12-amd64-20261201-1234",
        Description="Debian 12 (bookworm)",
    )
    ec2.terminate_instances(InstanceIds=[instance_id])
    return str(image["ImageId"])


def plugin_command(workdir: Path, ami: str, *args: str) -> list[str]:
    (workdir / "conftest.py").write_text(textwrap.dedent(RUN_CONFTEST))
    return [
        sys.executable,
        "-m",
        "pytest",
        "-p",
        "no:cacheprovider",
        f"--ami={ami}",
        "--ami-region=us-east-1",
        "--ami-ingress-cidr=203.0.113.7/32",
        "--ami-evidence=evidence.json",
        *args,
    ]


def leftovers(ec2: Any) -> list[str]:
    """Everything of a run that moto still holds (terminated instances are gone)."""
    found = []
    for reservation in ec2.describe_instances()["Reservations"]:
        for instance in reservation["Instances"]:
            if instance["State"]["Name"] != "terminated":
                found.append(instance["InstanceId"])
    volumes = ec2.describe_volumes(
        Filters=[{"Name": "tag-key", "Values": ["amipolicy:run"]}]
    )["Volumes"]
    found.extend(volume["VolumeId"] for volume in volumes)
    for pair in ec2.describe_key_pairs()["KeyPairs"]:
        if pair["KeyName"].startswith("amipolicy-"):
            found.append(pair["KeyName"])
    for group in ec2.describe_security_groups()["SecurityGroups"]:
        if group["GroupName"].startswith("amipolicy-"):
            found.append(group["GroupId"])
    return found


# What the project's Debian image must get on an instance, policy by policy.
# MALWARE is skipped because the container has no route to install ClamAV
# from; UPDATES can only judge while the image's package lists are less than
# 12 hours old (the container cannot refresh them), and is an error after.
LINUX_VERDICTS = {
    "SSH-PASSWORD": {"pass"},
    "SSH-ROOT": {"pass"},
    "ROOT-PASSWORD": {"pass"},
    "NO-PASSWORDS": {"pass"},
    "AUTHORIZED-KEYS": {"pass"},
    "HOST-KEYS": {"pass"},
    "CREDENTIALS": {"pass"},
    "AWS-KEYS": {"pass"},
    "SUDO": {"pass"},
    "UPDATES": {"pass", "error"},
    "EOL": {"pass"},
    "MALWARE": {"skip"},
    # The instance is a container here: no block filesystem of the image.
    "FILESYSTEMS": {"skip"},
    "OUTSIDE-ACCESS": {"pass"},
    "REGION-AGNOSTIC": {"pass"},
}


def test_an_ami_is_launched_checked_and_everything_removed(
    ec2: Any, debian_ami: str, aws: dict[str, str], tmp_path: Path
) -> None:
    run = subprocess.run(
        plugin_command(tmp_path, debian_ami),
        cwd=tmp_path,
        env=aws,
        capture_output=True,
        text=True,
        timeout=600,
    )

    document = json.loads((tmp_path / "evidence.json").read_text())
    verdicts = {record["policy"]: record["verdict"] for record in document["results"]}
    reasons = {record["policy"]: record["reason"] for record in document["results"]}
    linux = {p.id for p in all_policies() if "linux" in p.platforms}
    unexpected = {
        policy: (verdicts.get(policy), reasons.get(policy))
        for policy in LINUX_VERDICTS
        if verdicts.get(policy) not in LINUX_VERDICTS[policy]
    }

    # Every policy ran and has a verdict, the Linux ones the expected one.
    assert sorted(verdicts) == sorted(p.id for p in all_policies()), run.stdout[-3000:]
    assert set(LINUX_VERDICTS) == linux
    assert unexpected == {}
    assert verdicts["AMI-IMDSV2"] == "pass", reasons["AMI-IMDSV2"]
    assert "launched i-" in run.stdout
    assert leftovers(ec2) == [], run.stdout[-3000:]


def test_sigterm_during_the_checks_still_removes_everything(
    ec2: Any, debian_ami: str, aws: dict[str, str], tmp_path: Path
) -> None:
    process = subprocess.Popen(
        plugin_command(tmp_path, debian_ami, "-s"),
        cwd=tmp_path,
        env=aws,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )

    assert process.stdout is not None
    deadline = time.monotonic() + 300
    for line in process.stdout:
        if "gathering facts" in line or time.monotonic() > deadline:
            break
    process.send_signal(signal.SIGTERM)
    output = process.communicate(timeout=300)[0]

    assert process.returncode != 0
    assert leftovers(ec2) == [], output[-3000:]
    assert "Traceback" not in output
