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

from pytest_amipolicy.aws.session import (
    DENIED_CODES,
    cloud_error,
    error_code,
    translated,
)
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


def check_instance_type(
    ec2: Any, instance_type: str, architecture: str, region: str, default: str
) -> None:
    """Raise :class:`CloudError` unless ``instance_type`` exists and runs the AMI.

    Called before anything is created, so a mistyped --ami-instance-type costs
    nothing. A refused DescribeInstanceTypes only skips the check: RunInstances
    would still refuse a wrong type, later and less clearly.
    """
    try:
        with translated("DescribeInstanceTypes", region):
            response = ec2.describe_instance_types(InstanceTypes=[instance_type])
    except CloudError as error:
        code = error_code(error.__cause__)
        if code in ("InvalidInstanceType", "InvalidParameterValue"):
            raise CloudError(
                f"instance type {instance_type!r} does not exist in {region}: pass "
                f"--ami-instance-type with a type offered there, such as {default}"
            ) from error
        if code in DENIED_CODES:
            logger.info("instance type %s not checked: %s", instance_type, error)
            return
        raise

    described = response.get("InstanceTypes") or []
    if not described:
        raise CloudError(
            f"instance type {instance_type!r} does not exist in {region}: pass "
            f"--ami-instance-type with a type offered there, such as {default}"
        )
    supported = described[0].get("ProcessorInfo", {}).get("SupportedArchitectures")
    if supported and architecture not in supported:
        raise CloudError(
            f"instance type {instance_type} runs {', '.join(supported)} but the AMI "
            f"is {architecture}: pass --ami-instance-type with an {architecture} "
            f"type, such as {default}"
        )


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
        last = error.last_response or {}
        if "Error" in last:
            # A refusal ends the waiter at once: it is not a slow boot.
            raise cloud_error(
                _client_error(last), "DescribeInstances", region
            ) from error

        name, reason = _state_of(last.get("Reservations", []))
        console = console_tail(ec2, instance_id, region)
        if name in STOPPED_STATES:
            raise CloudError(
                f"{instance_id} stopped right after launch (state {name}"
                + (f", EC2's reason: {reason}" if reason else "")
                + "): the AMI or the launch is broken, not slow; see the reason "
                "and the console output, which follows\n" + console
            ) from error
        raise CloudError(
            f"{instance_id} did not reach running within {timeout:.0f}s "
            f"(state {name}" + (f": {reason}" if reason else "") + "): raise "
            "--ami-boot-timeout or check the AMI's boot in the console output, "
            "which follows\n" + console
        ) from error

    return describe_instance(ec2, instance_id, region)


# States from which an instance never comes back to running by itself.
STOPPED_STATES = frozenset({"shutting-down", "terminated", "stopping", "stopped"})


def _state_of(reservations: list[dict[str, Any]]) -> tuple[str, str]:
    """Return (state name, EC2's state reason) of the first instance described."""
    for reservation in reservations:
        for instance in reservation.get("Instances", []):
            reason = str(instance.get("StateReason", {}).get("Message", ""))
            return str(instance.get("State", {}).get("Name", "unknown")), reason
    return "unknown", ""


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
    # Latest asks for the live buffer rather than the snapshot EC2 takes some
    # minutes after boot, which is what is usually empty when it matters;
    # instance types not built on Nitro refuse it, so ask again without.
    try:
        with translated("GetConsoleOutput", region):
            response = ec2.get_console_output(InstanceId=instance_id, Latest=True)
    except CloudError as error:
        if error_code(error.__cause__) in DENIED_CODES:
            return f"(console output unavailable: {error})"
        logger.debug("latest console output of %s refused: %s", instance_id, error)
        try:
            with translated("GetConsoleOutput", region):
                response = ec2.get_console_output(InstanceId=instance_id)
        except CloudError as again:
            return f"(console output unavailable: {again})"

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


def request_termination(ec2: Any, instance_ids: list[str], region: str) -> None:
    """Ask EC2 to terminate the instances without waiting; raises CloudError."""
    with translated("TerminateInstances", region):
        ec2.terminate_instances(InstanceIds=instance_ids)


def find_run_instances(ec2: Any, tag: str, run_id: str, region: str) -> list[str]:
    """Return the ids of the run's instances that are not terminated, by its tag.

    An interrupt inside RunInstances can leave an instance whose id never came
    back; its tags were set by the same call, so it is found here.
    """
    with translated("DescribeInstances", region):
        pages = ec2.get_paginator("describe_instances").paginate(
            Filters=[
                {"Name": f"tag:{tag}", "Values": [run_id]},
                {
                    "Name": "instance-state-name",
                    "Values": ["pending", "running", "stopping", "stopped"],
                },
            ]
        )
        return [
            str(instance["InstanceId"])
            for page in pages
            for reservation in page["Reservations"]
            for instance in reservation["Instances"]
        ]


def terminate(
    ec2: Any,
    instance_id: str,
    timeout: float,
    delay: float,
    region: str,
    *,
    requested: bool = False,
) -> bool:
    """Terminate the instance and wait until it is gone; False if it already was.

    ``requested`` says termination was asked for already, so only the wait
    remains.
    """
    try:
        if not requested:
            request_termination(ec2, [instance_id], region)
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
        last = error.last_response or {}
        if "Error" in last:
            refused = _client_error(last)
            if error_code(refused) == "InvalidInstanceID.NotFound":
                return True
            raise CloudError(
                f"{instance_id} was asked to terminate, but whether it did cannot "
                f"be seen: {cloud_error(refused, 'DescribeInstances', region)}"
            ) from error
        name, reason = _state_of(last.get("Reservations", []))
        raise CloudError(
            f"{instance_id} was asked to terminate but is {name}"
            + (f" ({reason})" if reason else "")
            + f" after {timeout:.0f}s: check it with `aws ec2 describe-instances "
            f"--instance-ids {instance_id} --region {region}` and terminate it"
        ) from error
    return True


def _client_error(response: dict[str, Any]) -> botocore.exceptions.ClientError:
    return botocore.exceptions.ClientError(response, "DescribeInstances")
