"""Launching the throwaway instance as a buyer would, waiting for it, ending it."""

from __future__ import annotations

import base64
import binascii
import logging
import math
import socket
import time
from typing import Any

import botocore.exceptions

from pytest_amipolicy.aws.session import error_code, translated
from pytest_amipolicy.errors import CloudError

logger = logging.getLogger(__name__)

# A buyer's launch: no user data, and IMDSv2 required as Marketplace expects.
METADATA_OPTIONS = {"HttpTokens": "required", "HttpEndpoint": "enabled"}

CONSOLE_TAIL_LINES = 40


def run_instance(
    ec2: Any,
    *,
    image_id: str,
    instance_type: str,
    key_name: str,
    group_id: str,
    subnet_id: str | None,
    public_address: bool,
    block_devices: list[dict[str, Any]],
    tags: list[dict[str, str]],
    region: str,
) -> dict[str, Any]:
    """Launch one instance of ``image_id`` and return its description."""
    interface: dict[str, Any] = {
        "DeviceIndex": 0,
        "Groups": [group_id],
        "DeleteOnTermination": True,
        "AssociatePublicIpAddress": public_address,
    }
    if subnet_id:
        interface["SubnetId"] = subnet_id

    with translated("RunInstances", region):
        response = ec2.run_instances(
            ImageId=image_id,
            InstanceType=instance_type,
            MinCount=1,
            MaxCount=1,
            KeyName=key_name,
            MetadataOptions=METADATA_OPTIONS,
            NetworkInterfaces=[interface],
            BlockDeviceMappings=block_devices,
            InstanceInitiatedShutdownBehavior="terminate",
            TagSpecifications=[
                {"ResourceType": kind, "Tags": tags}
                for kind in ("instance", "volume", "network-interface")
            ],
        )
    instance: dict[str, Any] = response["Instances"][0]
    return instance


def waiter_config(timeout: float, delay: float) -> dict[str, Any]:
    """Return a WaiterConfig polling every ``delay`` s for about ``timeout`` s."""
    delay = max(delay, 0.05)
    return {"Delay": delay, "MaxAttempts": max(1, math.ceil(timeout / delay))}


def wait_running(
    ec2: Any, instance_id: str, timeout: float, delay: float, region: str
) -> dict[str, Any]:
    """Wait until the instance is running and return its fresh description."""
    waiter = ec2.get_waiter("instance_running")
    try:
        waiter.wait(
            InstanceIds=[instance_id], WaiterConfig=waiter_config(timeout, delay)
        )
    except botocore.exceptions.WaiterError as error:
        state = (error.last_response or {}).get("Reservations", [{}])
        raise CloudError(
            f"{instance_id} did not reach running within {timeout:.0f}s "
            f"({_state_of(state)}): raise --ami-boot-timeout or check the AMI's "
            "boot in the console output"
        ) from error

    return describe_instance(ec2, instance_id, region)


def _state_of(reservations: list[dict[str, Any]]) -> str:
    for reservation in reservations:
        for instance in reservation.get("Instances", []):
            reason = instance.get("StateReason", {}).get("Message", "")
            name = instance.get("State", {}).get("Name", "unknown")
            return f"state {name}" + (f": {reason}" if reason else "")
    return "state unknown"


def describe_instance(ec2: Any, instance_id: str, region: str) -> dict[str, Any]:
    with translated("DescribeInstances", region):
        response = ec2.describe_instances(InstanceIds=[instance_id])
    instance: dict[str, Any] = response["Reservations"][0]["Instances"][0]
    return instance


def default_address(instance: dict[str, Any], connect: str) -> str | None:
    """Return the address to connect to: public if asked and present, else private."""
    if connect == "public" and instance.get("PublicIpAddress"):
        return str(instance["PublicIpAddress"])
    private = instance.get("PrivateIpAddress")
    return str(private) if private else None


def wait_for_port(
    host: str, port: int, timeout: float, interval: float = 5.0
) -> str | None:
    """Wait until a TCP connection to host:port succeeds; None, or the last error.

    A plain connect is what a buyer's SSH client needs, and it answers long before
    EC2's status checks do.
    """
    deadline = time.monotonic() + timeout
    last_error = "no attempt made"
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return last_error
        try:
            with socket.create_connection((host, port), timeout=min(remaining, 10.0)):
                return None
        except OSError as error:
            last_error = str(error) or type(error).__name__
        time.sleep(max(0.0, min(interval, deadline - time.monotonic())))


def console_tail(
    ec2: Any, instance_id: str, region: str, lines: int = CONSOLE_TAIL_LINES
) -> str:
    """Return the last lines of the instance's console output, or why there are none."""
    try:
        with translated("GetConsoleOutput", region):
            response = ec2.get_console_output(InstanceId=instance_id)
    except CloudError as error:
        return f"(console output unavailable: {error})"

    output = decode_console(response.get("Output") or "")
    if not output.strip():
        return "(console output is empty; EC2 publishes it a few minutes after boot)"
    return "\n".join(output.splitlines()[-lines:])


def decode_console(output: str) -> str:
    """Decode EC2's base64 console output; text that is not base64 is kept as is."""
    try:
        return base64.b64decode(output, validate=True).decode("utf-8", "replace")
    except (binascii.Error, ValueError):
        return output


def terminate(
    ec2: Any, instance_id: str, timeout: float, delay: float, region: str
) -> bool:
    """Terminate the instance and wait until it is gone; False if it already was."""
    try:
        with translated("TerminateInstances", region):
            ec2.terminate_instances(InstanceIds=[instance_id])
    except CloudError as error:
        if error_code(error.__cause__) == "InvalidInstanceID.NotFound":
            return False
        raise

    waiter = ec2.get_waiter("instance_terminated")
    try:
        waiter.wait(
            InstanceIds=[instance_id], WaiterConfig=waiter_config(timeout, delay)
        )
    except botocore.exceptions.WaiterError as error:
        raise CloudError(
            f"{instance_id} was asked to terminate but is not terminated after "
            f"{timeout:.0f}s: check it with `aws ec2 describe-instances "
            f"--instance-ids {instance_id} --region {region}`"
        ) from error
    return True
