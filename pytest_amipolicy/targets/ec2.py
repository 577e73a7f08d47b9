"""An AMI checked as a buyer would run it: launched, reached over SSH, removed.

:class:`Ec2Target` is the one place that owns what a check creates in AWS. It
records every resource the moment it exists, so :meth:`Ec2Target.close` can
remove exactly those, in reverse order, after success, failure or Ctrl-C, and
any number of times.
"""

from __future__ import annotations

import datetime
import logging
import os
import secrets
import tempfile
import time
from pathlib import Path
from typing import Any, Callable, ClassVar, Optional

from pytest_amipolicy.aws import (
    cleanup,
    images,
    instances,
    keys,
    network,
    resources,
    session,
)
from pytest_amipolicy.aws.resources import Created
from pytest_amipolicy.errors import AmiPolicyError, TargetError
from pytest_amipolicy.settings import Settings
from pytest_amipolicy.targets import Connection, Progress, Target, ec2_windows, ssh

logger = logging.getLogger(__name__)

# Given the instance description, return (host, port) to connect to, or None
# for the default (public or private address and the platform's admin port).
ResolveAddress = Callable[[dict[str, Any]], Optional[tuple[str, int]]]

# testinfra's paramiko backend reads host key policy from an ssh_config file.
# The instance is new and its host key unknown, so it cannot be pinned here.
SSH_CONFIG = "Host *\n    StrictHostKeyChecking no\n    UserKnownHostsFile /dev/null\n"


class Ec2Target(Target):
    """An AMI id, launched on a throwaway instance for the on-machine policies."""

    kind: ClassVar[str] = "ami"

    def __init__(
        self,
        spec: str,
        settings: Settings,
        *,
        resolve_address: ResolveAddress | None = None,
        aws_session: Any = None,
        ec2: Any = None,
        public_address: Callable[[], str] | None = None,
        run_id: str | None = None,
    ) -> None:
        super().__init__(spec, settings)
        self.resolve_address = resolve_address
        self.run_id = run_id or secrets.token_hex(4)
        self.created = Created()
        self._aws_session = aws_session
        self._lookup_public_address = public_address or network.lookup_public_address
        # An EC2 client given by the caller (a test's stubbed one) wins over
        # one made from the session on first use.
        self._ec2: Any = ec2
        self._record: dict[str, Any] | None = None
        self._snapshots: dict[str, dict[str, Any]] | None = None
        self._connection: Connection | None = None
        self._address: tuple[str, int] | None = None
        self._login_user: str | None = None
        self._progress: Progress = _quiet
        # Set once the first resource is about to be created: a failed launch
        # is never tried again in the same run, over what it left.
        self._launch_started = False

    @property
    def label(self) -> str:
        return self.spec

    @property
    def name(self) -> str:
        """The name given to the run's key pair and security group."""
        return f"amipolicy-{self.run_id}"

    @property
    def ec2(self) -> Any:
        if self._ec2 is None:
            if self._aws_session is None:
                self._aws_session = session.make_session(self.settings.region)
            self._ec2 = session.ec2_client(self._aws_session)
        return self._ec2

    @property
    def region(self) -> str:
        return str(self.ec2.meta.region_name)

    # Polling intervals scale with the timeouts, so tests with tiny timeouts
    # poll fast and real runs do not hammer the API.
    @property
    def _boot_delay(self) -> float:
        return min(15.0, max(0.1, self.settings.boot_timeout / 40))

    @property
    def _ssh_interval(self) -> float:
        return min(5.0, max(0.1, self.settings.ssh_timeout / 60))

    def image_record(self) -> dict[str, Any]:
        """Return the AMI's describe_images record, described once."""
        if self._record is None:
            self._record = images.describe_image(self.ec2, self.spec, self.region)
        return self._record

    def snapshots(self) -> dict[str, dict[str, Any]]:
        """Return snapshot id -> describe_snapshots record for the readable ones."""
        if self._snapshots is None:
            ids = images.snapshot_ids(self.image_record())
            self._snapshots = images.describe_snapshots(self.ec2, ids, self.region)
        return self._snapshots

    def open(self, progress: Progress) -> Connection:
        """Launch the AMI and log in; the caller must call :meth:`close` afterwards."""
        if self._connection is not None:
            return self._connection
        if self._launch_started:
            raise self.error(
                "an earlier attempt to launch it failed, so it is not launched "
                "again in this run; what that attempt created is removed at the end"
            )
        self._progress = progress

        record = self.image_record()
        images.check_launchable(record, self.region)
        platform = images.image_platform(record)
        if platform not in self._connectors():
            raise self.error(
                f"{platform.capitalize()} instances are not supported yet: "
                "check the AMI attributes only with --ami-policy='AMI-*'"
            )

        # Everything that can fail without creating anything comes first.
        instance_type = self._instance_type(record)
        vpc_id, subnet_id = network.find_vpc(
            self.ec2, self.settings.subnet, self.region
        )
        cidr, cidr_origin = self._ingress(vpc_id)
        if subnet_id is None:
            subnet_id = network.pick_subnet(
                self.ec2, vpc_id, instance_type, self.region
            )
        tags = cleanup.run_tags(
            self.run_id, datetime.datetime.now(datetime.timezone.utc)
        )

        self._launch_started = True
        progress(f"{self.label}: importing key pair {self.name}")
        key = keys.make_launch_key(platform, self.name)
        self.created.key_file = key.path
        # Recorded before the call: a pair created but not acknowledged is still ours.
        self.created.key_pair = self.name
        keys.import_key_pair(self.ec2, self.name, key.public_openssh, tags, self.region)

        progress(
            f"{self.label}: creating security group {self.name} for {cidr}{cidr_origin}"
        )
        ports = network.ADMIN_PORTS[platform]
        self.created.group_requested = True
        self.created.group_id = network.create_security_group(
            self.ec2, name=self.name, vpc_id=vpc_id, tags=tags, region=self.region
        )
        network.allow_admin_ports(
            self.ec2, self.created.group_id, ports, cidr, self.region
        )

        self.created.launch_requested = True
        instance = instances.run_instance(
            self.ec2,
            image_id=self.spec,
            instance_type=instance_type,
            key_name=self.name,
            group_id=self.created.group_id,
            subnet_id=subnet_id,
            public_address=self.settings.connect == "public",
            block_devices=images.launch_block_devices(record),
            tags=tags,
            region=self.region,
        )
        self.created.instance_id = instance_id = str(instance["InstanceId"])
        progress(f"{self.label}: launched {instance_id} ({instance_type}), waiting")

        instance = instances.wait_running(
            self.ec2,
            instance_id,
            self.settings.boot_timeout,
            self._boot_delay,
            self.region,
        )
        self._address = self._connect_address(instance, ports[0])

        connector = self._connectors()[platform]
        self._connection = connector(record, instance, key)
        return self._connection

    def _instance_type(self, record: dict[str, Any]) -> str:
        """The type to launch on; a type the user chose is checked against the AMI."""
        chosen = images.instance_type(record, self.settings.instance_type)
        if self.settings.instance_type:
            architecture = str(record.get("Architecture"))
            instances.check_instance_type(
                self.ec2,
                chosen,
                architecture,
                self.region,
                default=images.INSTANCE_TYPES[architecture],
            )
        return chosen

    def _ingress(self, vpc_id: str) -> tuple[str, str]:
        """Return (range admitted to the admin ports, why that range) for the group."""
        if self.settings.ingress_cidr:
            return self.settings.ingress_cidr, ""

        # Connecting to the private address means running inside the VPC (or
        # a network joined to it), where this machine's public address is not
        # what the instance sees.
        if self.settings.connect == "private":
            cidr = network.vpc_cidr(self.ec2, vpc_id, self.region)
            return cidr, (
                f" (the range of {vpc_id}, since --ami-connect=private; narrow it "
                "with --ami-ingress-cidr)"
            )

        return network.ingress_cidr(None, self._lookup_public_address), ""

    def _connectors(
        self,
    ) -> dict[
        str, Callable[[dict[str, Any], dict[str, Any], keys.LaunchKey], Connection]
    ]:
        """The way to log in, per platform."""
        return {"linux": self._connect_linux, "windows": self._connect_windows}

    def _connect_address(self, instance: dict[str, Any], port: int) -> tuple[str, int]:
        if self.resolve_address is not None:
            resolved = self.resolve_address(instance)
            if resolved is not None:
                return resolved

        host = instances.default_address(instance, self.settings.connect)
        if host is None:
            raise self.error(
                f"{instance['InstanceId']} has no {self.settings.connect} address: "
                "use a subnet that assigns public addresses, or --ami-connect=private "
                "from inside the VPC"
            )
        return host, port

    def _wait_for_admin_port(self, instance_id: str, host: str, port: int) -> None:
        self._progress(
            f"{self.label}: {instance_id} running, waiting for {host}:{port}"
        )
        failure = instances.wait_for_port(
            host, port, self.settings.ssh_timeout, self._ssh_interval
        )
        if failure is None:
            return

        console = instances.console_tail(self.ec2, instance_id, self.region)
        error = self.error(
            f"{instance_id} did not answer on {host}:{port} within "
            f"{self.settings.ssh_timeout:.0f}s ({failure}): check that the AMI starts "
            "its admin service, or raise --ami-ssh-timeout; console output follows\n"
            + console
        )
        error.console = console  # type: ignore[attr-defined]
        raise error

    def _connect_linux(
        self, record: dict[str, Any], instance: dict[str, Any], key: keys.LaunchKey
    ) -> Connection:
        """Log in over SSH with the launch key, trying the likely users in order."""
        assert self._address is not None
        address, port = self._address
        instance_id = str(instance["InstanceId"])
        self._wait_for_admin_port(instance_id, address, port)

        users = images.login_users(record, self.settings.user)
        self.created.ssh_config = self._write_ssh_config()

        # sshd often listens before cloud-init has installed the key: retry
        # every user until the SSH timeout rather than giving up on the first no.
        deadline = time.monotonic() + self.settings.ssh_timeout
        refusals: dict[str, str] = {}
        while True:
            for user in users:
                try:
                    host = ssh.open_ssh(
                        self.label,
                        address=address,
                        port=port,
                        user=user,
                        key_file=key.path,
                        ssh_config=self.created.ssh_config,
                        timeout=min(30.0, self.settings.ssh_timeout),
                        # The fix is the user, said once below for all of them.
                        key_name="the launch key made for this run",
                        refused_advice="",
                    )
                except TargetError as error:
                    refusals[user] = error.message.rstrip(".")
                    continue
                self._login_user = user
                return self._connection_for(host, user, record, instance, key)

            if time.monotonic() >= deadline:
                break
            time.sleep(self._ssh_interval)

        # Whether cloud-init installed the key, and for whom, is in the console.
        console = instances.console_tail(self.ec2, instance_id, self.region)
        tried = "; ".join(f"{user}: {why}" for user, why in refusals.items())
        refused = self.error(
            f"no login user was accepted on {address}:{port} with the launch key, "
            f"tried {', '.join(users)} ({tried}); pass --ami-user with the AMI's "
            "default user; console output follows\n" + console
        )
        refused.console = console  # type: ignore[attr-defined]
        raise refused

    def _connect_windows(
        self, record: dict[str, Any], instance: dict[str, Any], key: keys.LaunchKey
    ) -> Connection:
        """Log in as Administrator over WinRM with the password EC2 generated."""
        assert self._address is not None
        instance_id = str(instance["InstanceId"])
        # Known before the login, so that --ami-keep can say how to log in.
        self._login_user = ec2_windows.ADMIN_USER

        # The password comes minutes into the first boot and WinRM after it:
        # waiting for the port first would spend the login timeout on the boot.
        password = ec2_windows.wait_for_password(
            self.label,
            ec2=self.ec2,
            region=self.region,
            instance_id=instance_id,
            key=key,
            settings=self.settings,
            progress=self._progress,
            delay=self._boot_delay,
        )
        self._wait_for_admin_port(instance_id, *self._address)
        host = ec2_windows.log_in(
            self.label,
            address=self._address,
            password=password,
            settings=self.settings,
            progress=self._progress,
            delay=self._boot_delay,
        )

        details = self._launch_details(record, instance, key)
        # Published and decrypted, so a password was generated (WIN-ADMIN-PASSWORD).
        details["password_data_available"] = True
        return Connection(
            host=host,
            platform="windows",
            login_user=ec2_windows.ADMIN_USER,
            details=details,
        )

    def _connection_for(
        self,
        host: Any,
        user: str,
        record: dict[str, Any],
        instance: dict[str, Any],
        key: keys.LaunchKey,
    ) -> Connection:
        assert self._address is not None
        logger.info("%s: logged in as %s at %s:%d", self.label, user, *self._address)
        return Connection(
            host=host,
            platform="linux",
            login_user=user,
            launch_public_key=key.public_openssh,
            details=self._launch_details(record, instance, key),
        )

    def _launch_details(
        self, record: dict[str, Any], instance: dict[str, Any], key: keys.LaunchKey
    ) -> dict[str, Any]:
        """What the launch tells about the target, for the facts and the report."""
        return {
            "instance_id": instance["InstanceId"],
            "instance_type": instance.get("InstanceType"),
            "image": record,
            "region": self.region,
            "address": self._address,
            "key_pair": self.name,
            "key_fingerprint": key.fingerprint,
            "security_group": self.created.group_id,
            "metadata_options": instance.get("MetadataOptions", {}),
            # The instance ran and took a login with IMDSv2 required (AMI-IMDSV2).
            "imdsv2_required_launch": True,
            "run_id": self.run_id,
        }

    def _write_ssh_config(self) -> Path:
        handle, path = tempfile.mkstemp(prefix=f"{self.name}-", suffix=".ssh_config")
        with os.fdopen(handle, "w", encoding="ascii") as stream:
            stream.write(SSH_CONFIG)
        return Path(path)

    def close(self, progress: Progress) -> list[str]:
        """Remove what :meth:`open` created, newest first; return what was removed.

        With ``keep`` the instance, group and key stay, and the lines say how to
        reach them and how to remove them later. Anything that could not be
        removed stays recorded, so a later call tries it again.
        """
        if self._connection is not None:
            ssh.close_ssh(self._connection.host)

        if self.created.empty():
            return []
        if self.settings.keep:
            return self._kept_lines()

        run = self._resources()
        steps: list[Callable[[], list[str]]] = [
            lambda: resources.remove_instances(
                run,
                self.created,
                progress,
                max(60.0, self.settings.boot_timeout),
                self._boot_delay,
            ),
            lambda: resources.remove_groups(run, self.created, self._boot_delay),
            lambda: resources.remove_key_pair(run, self.created),
            lambda: resources.remove_files(self.created),
        ]
        removed: list[str] = []
        failures: list[str] = []
        interrupted: BaseException | None = None
        for name, step in zip(("instance", "group", "key pair", "files"), steps):
            try:
                removed.extend(step())
            except KeyboardInterrupt as interrupt:
                # A second Ctrl-C must not strand the rest: finish, then re-raise.
                interrupted = interrupt
                failures.append(f"removing the {name} was interrupted")
            except AmiPolicyError as error:
                failures.append(str(error))

        for line in removed:
            logger.info("%s", line)
        if failures:
            incomplete = self.error(
                resources.incomplete_message(run, self.created, failures)
            )
            incomplete.removed = removed  # type: ignore[attr-defined]
            if interrupted is None:
                raise incomplete
            logger.error("%s", incomplete)
        if interrupted is not None:
            # The user asked to stop: that wins over reporting what is left.
            raise interrupted
        return removed

    def leftovers(self) -> list[str]:
        """How to remove what is still recorded; empty once nothing is left."""
        if self.created.empty():
            return []
        commands = resources.removal_commands(self._resources(), self.created)
        return commands or [f"rm -f {self.created.key_file or self.created.ssh_config}"]

    def request_termination(self, progress: Progress) -> None:
        """Ask EC2 to end the instance now, without waiting; :meth:`close` waits.

        Called for every open target before any of them is waited for, so that
        a teardown cut short (xdist kills its workers soon after Ctrl-C) has at
        least asked for every termination.
        """
        instance_id = self.created.instance_id
        if self.settings.keep or instance_id is None:
            return
        try:
            instances.request_termination(self.ec2, [instance_id], self.region)
        except AmiPolicyError as error:
            # Not fatal: close asks again, and reports a refusal then.
            logger.info("%s: early termination request failed: %s", self.label, error)
            return
        self.created.termination_requested = True
        progress(f"{self.label}: termination of {instance_id} requested")

    def _resources(self) -> resources.Run:
        return resources.Run(
            label=self.label,
            ec2=self.ec2,
            region=self.region,
            run_id=self.run_id,
            name=self.name,
        )

    def _kept_lines(self) -> list[str]:
        region = self.region
        created = self.created
        lines = [f"{self.label}: kept everything of run {self.run_id} (--ami-keep)"]

        if created.instance_id:
            lines.append(f"instance {created.instance_id} in {region}")
        if created.key_file and self._address and self._login_user == "Administrator":
            lines.append(ec2_windows.reach_line(self._address, region, created))
        elif created.key_file and self._address:
            user = self._login_user or "USER"
            host, port = self._address
            lines.append(f"reach it: ssh -i {created.key_file} -p {port} {user}@{host}")
        elif created.key_file:
            lines.append(f"launch key file {created.key_file}")

        lines.append(
            f"clean up: pytest --ami-cleanup --ami-region={region} "
            f"(once they expire, {cleanup.LIFETIME} after launch), or now:"
        )
        commands = resources.removal_commands(self._resources(), created)
        lines.extend(f"  {command}" for command in commands)
        if created.ssh_config is not None:
            created.ssh_config.unlink(missing_ok=True)
            created.ssh_config = None
        return lines


def _quiet(line: str) -> None:
    """Progress before :meth:`Ec2Target.open` is given the run's reporter."""
