"""The options an ``--ami`` run reads: their shapes, and a warning when idle.

Checked before any AWS call. Only the shape is checked here (that a region is
written like ``us-east-1``, an instance type like ``t3.micro``); whether it
exists is for EC2 to say once the run starts.
"""

from __future__ import annotations

import ipaddress
import re

import pytest

AMI_ID = re.compile(r"^ami-(?:[0-9a-f]{8}|[0-9a-f]{17})$")
REGION = re.compile(r"^[a-z]{2}(?:-gov|-iso[a-z]?)?-[a-z]+-\d$")
# A family (t3, m7i-flex, u-6tb1) and a size (micro, 2xlarge, metal-16xl).
INSTANCE_TYPE = re.compile(r"^[a-z][a-z0-9]*(?:-[a-z0-9]+)*\.[a-z0-9]+(?:-[a-z0-9]+)*$")
SUBNET_ID = re.compile(r"^subnet-(?:[0-9a-f]{8}|[0-9a-f]{17})$")
# Options that only change how an --ami target is launched or judged: given
# without any --ami, each of them does nothing.
EC2_ONLY_OPTIONS = (
    "ami_region",
    "ami_instance_type",
    "ami_subnet",
    "ami_ingress_cidr",
    "ami_connect",
    "ami_boot_timeout",
    "ami_keep",
    "ami_inspector",
    "ami_inspector_severity",
    "ami_product",
    "ami_guardduty",
)


def check_ami_id(value: str) -> str:
    if not AMI_ID.match(value):
        raise pytest.UsageError(
            f"--ami={value!r} is not an AMI id: expected 'ami-' followed by 8 or 17 "
            "lowercase hex digits, such as ami-0123456789abcdef0."
        )
    return value


def configured_region() -> str | None:
    # Reads the environment and the AWS config files only; no network call.
    import boto3

    region: str | None = boto3.session.Session().region_name
    return region


def check_region(value: str | None, name: str) -> str | None:
    if value is not None and not REGION.match(value):
        raise pytest.UsageError(
            f"{name}={value!r} is not an AWS region name: write it like us-east-1 "
            "or eu-west-2."
        )
    return value


def warn_unknown_region(config: pytest.Config, region: str, name: str) -> None:
    """Warn when botocore's endpoint data knows no EC2 region of this name.

    A warning, not an error: a region newer than the installed botocore still
    works, as its endpoint follows the partition's pattern.
    """
    import boto3

    session = boto3.session.Session()
    known = {
        known_region
        for partition in session.get_available_partitions()
        for known_region in session.get_available_regions("ec2", partition)
    }
    if region in known:
        return

    config.issue_config_time_warning(
        pytest.PytestConfigWarning(
            f"{name}={region!r} is not an EC2 region that this botocore knows; "
            "check its spelling (aws ec2 describe-regions lists yours), or upgrade "
            "boto3 if the region is new."
        ),
        stacklevel=4,
    )


def check_instance_type(value: str | None, name: str) -> str | None:
    if value is None or INSTANCE_TYPE.match(value):
        return value

    # Upper case or a space instead of the dot: say what was probably meant.
    guess = re.sub(r"[\s_.]+", ".", value.strip().lower())
    hint = f" (did you mean {guess}?)" if INSTANCE_TYPE.match(guess) else ""
    raise pytest.UsageError(
        f"{name}={value!r} is not an EC2 instance type: write the family and the "
        f"size joined by a dot, in lower case, such as t3.micro or m7g.large{hint}."
    )


def warn_idle_ec2_options(
    config: pytest.Config, amis: tuple[str, ...], images: tuple[str, ...]
) -> None:
    """Warn once per EC2-only option given on the command line without an --ami.

    Ini keys are left alone: a project's ini file serves all its runs.
    """
    if images and config.getoption("ami_keep"):
        config.issue_config_time_warning(
            pytest.PytestConfigWarning(
                "--ami-keep applies to --ami only: the containers of --ami-image "
                "are stopped and removed after their checks all the same."
            ),
            stacklevel=4,
        )
    if amis:
        return

    # The one option --ami shares with --ami-image: a host's login timeout
    # is the ?timeout= of its spec.
    if not images and config.getoption("ami_ssh_timeout") is not None:
        config.issue_config_time_warning(
            pytest.PytestConfigWarning(
                "--ami-ssh-timeout applies to --ami and --ami-image only, and "
                "neither was given: it has no effect on --ami-host targets (give "
                "a host spec ?timeout=SECONDS instead)."
            ),
            stacklevel=4,
        )

    for dest in EC2_ONLY_OPTIONS:
        value = config.getoption(dest)
        if value is None or value is False or (dest == "ami_keep" and images):
            continue
        option = "--" + dest.replace("_", "-")
        config.issue_config_time_warning(
            pytest.PytestConfigWarning(
                f"{option} applies to --ami only, and no --ami was given: it has "
                "no effect on --ami-host or --ami-image targets."
            ),
            stacklevel=4,
        )


def check_cidr(value: str | None, name: str = "--ami-ingress-cidr") -> str | None:
    if value is None:
        return None

    try:
        return str(ipaddress.ip_network(value, strict=False))
    except ValueError:
        raise pytest.UsageError(
            f"{name}={value!r} is not a CIDR block: use an address "
            "range such as 203.0.113.7/32."
        ) from None


def check_subnet(value: str | None, name: str) -> str | None:
    if value is not None and not SUBNET_ID.match(value):
        raise pytest.UsageError(
            f"{name}={value!r} is not a subnet id such as subnet-0123456789abcdef0."
        )
    return value
