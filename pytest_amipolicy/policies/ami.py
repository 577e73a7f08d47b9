"""AMI-* policies: judged on the image's EC2 attributes, without an instance.

Each check reads ``facts.image`` (the describe_images record as boto3 returns
it) and ``facts.snapshots`` (snapshot id -> describe_snapshots record). A field
EC2 did not report is an error verdict, never a pass.

AMI-IMDSV2 passes when the image reports ``ImdsSupport: v2.0`` (every launch
then requires IMDSv2), or when this run launched it with IMDSv2 required and
logged in: :class:`~pytest_amipolicy.targets.ec2.Ec2Target` records that as
``imdsv2_required_launch`` in the connection details, which reach
``facts.settings``. Without either, the policy fails: nothing shows the image
works with IMDSv2 only.
"""

from __future__ import annotations

import datetime
from typing import Any

from pytest_amipolicy.catalogue import policy
from pytest_amipolicy.facts import Facts
from pytest_amipolicy.verdicts import (
    Evidence,
    Outcome,
    failed,
    passed,
    undecided,
)

FAMILY = "ami"
PLATFORMS = ("ami",)

SUPPORTED_ARCHITECTURES = ("x86_64", "arm64")
SOURCE_REGION = "us-east-1"
DEFAULT_MAX_AGE_DAYS = 730
IMDSV2_LAUNCH = "imdsv2_required_launch"


def _image(facts: Facts) -> dict[str, Any]:
    if facts.image is None:
        raise LookupError("no describe_images record was gathered for this target")
    return facts.image


def _attribute(facts: Facts, field: str) -> Evidence:
    image = facts.image or {}
    image_id = image.get("ImageId", facts.target)
    region = f" --region {facts.region}" if facts.region else ""
    return Evidence(
        label=f"{field} of {image_id}",
        command=f"aws ec2 describe-images --image-ids {image_id}{region}",
        output=f"{field}: {image.get(field, '(not reported)')}",
    )


def _field_check(facts: Facts, field: str, allowed: tuple[str, ...]) -> Outcome:
    """Pass when ``field`` of the image is one of ``allowed``."""
    try:
        image = _image(facts)
    except LookupError as error:
        return undecided(str(error))

    evidence = _attribute(facts, field)
    value = image.get(field)
    if value is None:
        return undecided(f"EC2 did not report {field} for the image", evidence)
    if value in allowed:
        return passed(f"{field} is {value}", evidence)
    return failed(
        f"{field} is {value}; it must be {' or '.join(allowed)}",
        evidence,
        findings=(f"{field}={value}",),
    )


@policy(
    "AMI-ARCH",
    family=FAMILY,
    platforms=PLATFORMS,
    summary="The AMI's architecture is x86_64 or arm64.",
    remediation="Build the image for x86_64 or arm64 and register it again.",
)
def check_architecture(facts: Facts) -> Outcome:
    return _field_check(facts, "Architecture", SUPPORTED_ARCHITECTURES)


@policy(
    "AMI-HVM",
    family=FAMILY,
    platforms=PLATFORMS,
    summary="The AMI uses hardware virtual machine (hvm) virtualization.",
    remediation=(
        "Register the image with --virtualization-type hvm (paravirtual images "
        "cannot run on current instance types)."
    ),
)
def check_hvm(facts: Facts) -> Outcome:
    return _field_check(facts, "VirtualizationType", ("hvm",))


@policy(
    "AMI-EBS",
    family=FAMILY,
    platforms=PLATFORMS,
    summary="The AMI's root device is an EBS volume.",
    remediation="Create the AMI from an EBS-backed instance (aws ec2 create-image).",
)
def check_ebs(facts: Facts) -> Outcome:
    return _field_check(facts, "RootDeviceType", ("ebs",))


@policy(
    "AMI-UNENCRYPTED",
    family=FAMILY,
    platforms=PLATFORMS,
    summary="No EBS snapshot behind the AMI's block device mappings is encrypted.",
    remediation=(
        "Copy the image without encryption from an unencrypted source, and turn "
        "off EBS encryption by default (aws ec2 disable-ebs-encryption-by-default) "
        "before creating the AMI."
    ),
)
def check_unencrypted(facts: Facts) -> Outcome:
    try:
        image = _image(facts)
    except LookupError as error:
        return undecided(str(error))

    encrypted: list[str] = []
    unknown: list[str] = []
    lines: list[str] = []
    for mapping in image.get("BlockDeviceMappings", []):
        ebs = mapping.get("Ebs")
        if not ebs:
            continue
        device = mapping.get("DeviceName", "?")
        snapshot_id = ebs.get("SnapshotId")
        snapshot = facts.snapshots.get(snapshot_id or "", {})

        # The mapping's flag is readable by anyone who can launch the AMI; the
        # snapshot's own flag only by its owner. Either one being true decides.
        flags = [ebs.get("Encrypted"), snapshot.get("Encrypted")]
        known = [flag for flag in flags if flag is not None]
        lines.append(
            f"{device}: snapshot {snapshot_id or '(none)'}, "
            f"mapping Encrypted={flags[0]}, snapshot Encrypted={flags[1]}"
        )
        if any(known):
            encrypted.append(f"{device} ({snapshot_id})")
        elif not known:
            unknown.append(f"{device} ({snapshot_id})")

    evidence = Evidence(
        label="EBS encryption of the block device mappings",
        command=_snapshot_command(image, facts),
        output="\n".join(lines) or "(no EBS block device mappings)",
    )
    if encrypted:
        return failed(
            f"encrypted snapshots: {', '.join(encrypted)}",
            evidence,
            findings=tuple(encrypted),
        )
    if unknown:
        return undecided(
            f"encryption is not reported for {', '.join(unknown)}; "
            "grant ec2:DescribeSnapshots on them",
            evidence,
        )
    return passed("no snapshot of the AMI is encrypted", evidence)


def _snapshot_command(image: dict[str, Any], facts: Facts) -> str:
    image_id = image.get("ImageId", facts.target)
    return (
        f"aws ec2 describe-images --image-ids {image_id} --query "
        "'Images[].BlockDeviceMappings'; aws ec2 describe-snapshots"
    )


@policy(
    "AMI-REGION",
    family=FAMILY,
    platforms=PLATFORMS,
    summary="The AMI is in us-east-1, the region Marketplace takes source AMIs from.",
    remediation=(
        "Copy the AMI to us-east-1 (aws ec2 copy-image --source-region REGION "
        "--region us-east-1) and submit that copy."
    ),
)
def check_region(facts: Facts) -> Outcome:
    evidence = Evidence(
        label="region the AMI was described in",
        output=f"region: {facts.region or '(unknown)'}",
    )
    if not facts.region:
        return undecided("the AMI's region is not known", evidence)
    if facts.region == SOURCE_REGION:
        return passed(f"the AMI is in {SOURCE_REGION}", evidence)
    return failed(
        f"the AMI is in {facts.region}, not {SOURCE_REGION}",
        evidence,
        findings=(facts.region,),
    )


@policy(
    "AMI-AGE",
    family=FAMILY,
    platforms=PLATFORMS,
    summary="The AMI was created less than two years ago (configurable).",
    remediation="Rebuild the image from current sources and register it again.",
)
def check_age(facts: Facts) -> Outcome:
    try:
        image = _image(facts)
    except LookupError as error:
        return undecided(str(error))

    evidence = _attribute(facts, "CreationDate")
    text = image.get("CreationDate")
    if not text:
        return undecided("EC2 did not report the AMI's CreationDate", evidence)
    try:
        created = datetime.datetime.fromisoformat(str(text).replace("Z", "+00:00"))
    except ValueError:
        return undecided(f"CreationDate {text!r} is not an ISO 8601 time", evidence)

    limit = int(facts.settings.get("max_age_days", DEFAULT_MAX_AGE_DAYS))
    age = (facts.check_date - created.date()).days
    if age < limit:
        return passed(f"created {age} days before {facts.check_date}", evidence)
    return failed(
        f"created {age} days before {facts.check_date}, limit {limit} days",
        evidence,
        findings=(f"age {age} days",),
    )


@policy(
    "AMI-IMDSV2",
    family=FAMILY,
    platforms=PLATFORMS,
    summary=("The AMI works with IMDSv2 required and reports ImdsSupport v2.0."),
    needs_launch=True,
    remediation=(
        "After checking the image works with IMDSv2 only: aws ec2 register-image "
        "... --imds-support v2.0 (or modify-image-attribute --imds-support v2.0 "
        "on images that allow it)."
    ),
)
def check_imdsv2(facts: Facts) -> Outcome:
    try:
        image = _image(facts)
    except LookupError as error:
        return undecided(str(error))

    evidence = _attribute(facts, "ImdsSupport")
    if image.get("ImdsSupport") == "v2.0":
        return passed("ImdsSupport is v2.0: every launch requires IMDSv2", evidence)

    if facts.settings.get(IMDSV2_LAUNCH):
        launch = Evidence(
            label="launch with IMDSv2 required",
            output="the instance ran with HttpTokens=required and accepted a login",
        )
        return passed(
            "the instance worked with IMDSv2 required; ImdsSupport v2.0 is not set, "
            "set it so that buyers' launches require IMDSv2 too",
            evidence,
            launch,
        )

    return failed(
        "ImdsSupport is not v2.0 and no launch with IMDSv2 required was recorded",
        evidence,
        findings=("ImdsSupport not v2.0",),
    )


# Policy ID -> check, for callers that judge AMI attributes without the catalogue.
CHECKS = {
    "AMI-ARCH": check_architecture,
    "AMI-HVM": check_hvm,
    "AMI-EBS": check_ebs,
    "AMI-UNENCRYPTED": check_unencrypted,
    "AMI-REGION": check_region,
    "AMI-AGE": check_age,
    "AMI-IMDSV2": check_imdsv2,
}
