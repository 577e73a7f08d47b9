"""What one ``--ami`` run created, and how each of those things is removed.

:class:`Created` is the record; the ``remove_*`` functions each take one kind
of resource out of it once it is gone, so that whatever could not be removed
stays recorded and a later teardown tries it again. The order matters: the
instance first, since EC2 refuses to delete a security group an instance
still holds.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from pytest_amipolicy.aws import instances, keys, network
from pytest_amipolicy.aws.cleanup import LIFETIME, TAG_RUN
from pytest_amipolicy.errors import TargetError

logger = logging.getLogger(__name__)


@dataclass
class Created:
    """The resources of one run, each recorded as soon as it exists.

    The two ``*_requested`` flags are set before the call that creates a group
    or an instance: an interrupt or a timeout inside the call can leave one
    whose id never came back, and the teardown then finds it by the run's name
    and tag.
    """

    key_file: Path | None = None
    ssh_config: Path | None = None
    key_pair: str | None = None
    group_id: str | None = None
    instance_id: str | None = None
    group_requested: bool = False
    launch_requested: bool = False
    # Termination of ``instance_id`` was asked for; only the wait is left.
    termination_requested: bool = False

    def empty(self) -> bool:
        return not any(vars(self).values())


@dataclass(frozen=True)
class Run:
    """Where a run's resources live and what they are called."""

    label: str
    ec2: Any
    region: str
    run_id: str
    name: str


def remove_instances(
    run: Run,
    created: Created,
    progress: Callable[[str], None],
    timeout: float,
    delay: float,
) -> list[str]:
    """Terminate the run's instance and wait until it is gone."""
    found = [created.instance_id] if created.instance_id else []
    if created.launch_requested and not found:
        # Launched, perhaps, but cut off before the id came back.
        found = instances.find_run_instances(run.ec2, TAG_RUN, run.run_id, run.region)

    lines = []
    for instance_id in found:
        progress(f"{run.label}: terminating {instance_id}")
        instances.terminate(
            run.ec2,
            instance_id,
            timeout,
            delay,
            run.region,
            requested=created.termination_requested,
        )
        lines.append(f"terminated instance {instance_id} in {run.region}")
    created.instance_id = None
    created.launch_requested = False
    created.termination_requested = False
    return lines


def remove_groups(run: Run, created: Created, delay: float) -> list[str]:
    """Delete the run's security group, once no instance of the run is left."""
    if created.instance_id is not None or created.launch_requested:
        # The group cannot go while an instance holds it: trying would only
        # retry DependencyViolation for minutes.
        raise TargetError(
            run.label,
            f"security group {created.group_id or run.name} kept: instance "
            f"{created.instance_id or 'of the run'} is not known to be terminated, "
            "and the group can only be deleted after it",
        )

    found = [created.group_id] if created.group_id else []
    if created.group_requested and not found:
        found = network.find_run_groups(
            run.ec2, run.name, TAG_RUN, run.run_id, run.region
        )

    lines = []
    for group_id in found:
        network.delete_security_group(run.ec2, group_id, run.region, delay=delay)
        lines.append(f"deleted security group {group_id} in {run.region}")
    created.group_id = None
    created.group_requested = False
    return lines


def remove_key_pair(run: Run, created: Created) -> list[str]:
    name = created.key_pair
    if name is None:
        return []
    keys.delete_key_pair(run.ec2, name, run.region)
    created.key_pair = None
    return [f"deleted key pair {name} in {run.region}"]


def remove_files(created: Created) -> list[str]:
    removed = []
    if created.key_file is not None:
        if keys.remove_private_key(created.key_file):
            removed.append(f"removed launch key file {created.key_file}")
        created.key_file = None
    if created.ssh_config is not None:
        created.ssh_config.unlink(missing_ok=True)
        created.ssh_config = None
    return removed


def removal_commands(run: Run, created: Created) -> list[str]:
    """The aws cli commands that remove the recorded cloud resources."""
    region = run.region
    commands = []
    if created.instance_id:
        commands.append(
            f"aws ec2 terminate-instances --region {region} "
            f"--instance-ids {created.instance_id}"
        )
    elif created.launch_requested:
        commands.append(
            f"aws ec2 describe-instances --region {region} --filters "
            f"Name=tag:{TAG_RUN},Values={run.run_id} (then terminate what it lists)"
        )
    if created.group_id:
        commands.append(
            f"aws ec2 delete-security-group --region {region} "
            f"--group-id {created.group_id}"
        )
    elif created.group_requested:
        commands.append(
            f"aws ec2 delete-security-group --region {region} --group-name {run.name}"
        )
    if created.key_pair:
        commands.append(
            f"aws ec2 delete-key-pair --region {region} --key-name {created.key_pair}"
        )
    return commands


def incomplete_message(run: Run, created: Created, failures: list[str]) -> str:
    """Say what could not be removed, and how to remove it by hand."""
    left = removal_commands(run, created)
    message = "cleanup incomplete (" + "; ".join(failures) + ")"
    if left:
        message += ": remove what is left with " + "; ".join(
            f"`{command}`" for command in left
        )
    return (
        message + f", or run `pytest --ami-cleanup --ami-region={run.region}` "
        f"once it expires ({LIFETIME} after launch)"
    )
