"""The --ami path against moto: describe, launch, log in, and leave nothing behind.

The login step is routed by ``resolve_address`` to a fake sshd on loopback that
holds the imported launch key; moto's invented addresses are never contacted.
"""

from __future__ import annotations

import base64
import dataclasses
import datetime
import socket
import stat
import tempfile
from pathlib import Path
from typing import Any, Callable

import boto3
import pytest
from botocore.stub import Stubber

from pytest_amipolicy.aws import cleanup, instances, keys, network
from pytest_amipolicy.aws.session import make_session
from pytest_amipolicy.errors import CloudError, TargetError
from pytest_amipolicy.runtime import TargetRun
from pytest_amipolicy.session import AmiPolicySession
from pytest_amipolicy.settings import Settings
from pytest_amipolicy.targets import ssh
from tests.functional.conftest import AMAZON_LINUX_AMI, REGION, TEST_CIDR
from tests.functional.sshfake import FakeSshServer

# Built into moto: a RHEL image (users ec2-user, cloud-user). Windows AMIs are
# tested in test_ec2_windows.py.
RHEL_AMI = "ami-bb9a6bc2"
MISSING_AMI = "ami-0123456789abcdef0"


def quiet(line: str) -> None:
    pass


def run_resources(ec2: Any) -> dict[str, list[str]]:
    """What moto holds of any run: live instances, tagged groups and key pairs."""
    tagged = [{"Name": "tag-key", "Values": [cleanup.TAG_RUN]}]
    live = [
        instance["InstanceId"]
        for reservation in ec2.describe_instances()["Reservations"]
        for instance in reservation["Instances"]
        if instance["State"]["Name"] not in ("terminated", "shutting-down")
    ]
    groups = ec2.describe_security_groups(Filters=tagged)["SecurityGroups"]
    pairs = ec2.describe_key_pairs()["KeyPairs"]
    return {
        "instances": live,
        "groups": [group["GroupId"] for group in groups],
        "key_pairs": [pair["KeyName"] for pair in pairs],
    }


NOTHING = {"instances": [], "groups": [], "key_pairs": []}


def stubbed_client(record: dict[str, Any]) -> tuple[Any, Stubber]:
    client = boto3.client("ec2", region_name=REGION)
    stubber = Stubber(client)
    stubber.add_response("describe_images", {"Images": [record]})
    return client, stubber


# Describing and validating


def test_the_image_record_is_described_once(make_target: Any) -> None:
    target = make_target()

    first = target.image_record()

    assert first["ImageId"] == AMAZON_LINUX_AMI
    assert target.image_record() is first
    assert target.label == AMAZON_LINUX_AMI
    assert target.region == REGION


def test_the_snapshots_of_the_image_are_described(make_target: Any) -> None:
    target = make_target()

    snapshots = target.snapshots()

    mapped = target.image_record()["BlockDeviceMappings"][0]["Ebs"]["SnapshotId"]
    assert list(snapshots) == [mapped]
    assert snapshots[mapped]["Encrypted"] is False


def test_a_missing_ami_is_reported_with_its_region(make_target: Any) -> None:
    target = make_target(MISSING_AMI)

    with pytest.raises(
        CloudError, match=f"{MISSING_AMI} does not exist in region {REGION}"
    ):
        target.image_record()


def test_a_deregistered_ami_is_reported_as_missing(make_target: Any, ec2: Any) -> None:
    image_id = ec2.register_image(Name="gone-image")["ImageId"]
    ec2.deregister_image(ImageId=image_id)
    target = make_target(image_id)

    with pytest.raises(CloudError, match=f"does not exist in region {REGION}"):
        target.image_record()


def test_a_deregistered_state_is_named_when_ec2_still_reports_the_ami(
    make_target: Any,
) -> None:
    client, stubber = stubbed_client({"ImageId": MISSING_AMI, "State": "deregistered"})

    with stubber, pytest.raises(CloudError, match="was deregistered in us-east-1"):
        make_target(MISSING_AMI, client=client).image_record()


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"Architecture": "i386", "State": "available"}, "architecture 'i386'"),
        ({"Architecture": "x86_64", "State": "pending"}, "is pending, not available"),
    ],
)
def test_an_unlaunchable_ami_is_refused_before_anything_is_created(
    make_target: Any, ec2: Any, fields: dict[str, Any], message: str
) -> None:
    client, stubber = stubbed_client({"ImageId": MISSING_AMI, **fields})

    with stubber, pytest.raises(CloudError, match=message):
        make_target(MISSING_AMI, client=client).open(quiet)

    assert run_resources(ec2) == NOTHING


def test_a_refused_describe_names_the_missing_iam_action(make_target: Any) -> None:
    client = boto3.client("ec2", region_name=REGION)
    stubber = Stubber(client)
    stubber.add_client_error(
        "describe_images", "UnauthorizedOperation", "You are not authorized"
    )

    with stubber, pytest.raises(CloudError, match="ec2:DescribeImages") as caught:
        make_target(client=client).image_record()

    assert caught.value.__cause__ is not None


def test_no_region_anywhere_names_the_option_and_the_variable(
    moto: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("AWS_DEFAULT_REGION")

    with pytest.raises(
        CloudError, match="--ami-region=REGION or set AWS_DEFAULT_REGION"
    ):
        make_session(None)


def test_no_default_vpc_and_no_subnet_asks_for_a_subnet(
    make_target: Any, ec2: Any
) -> None:
    vpc = ec2.describe_vpcs(Filters=[{"Name": "is-default", "Values": ["true"]}])
    vpc_id = vpc["Vpcs"][0]["VpcId"]
    subnets = ec2.describe_subnets(Filters=[{"Name": "vpc-id", "Values": [vpc_id]}])
    for subnet in subnets["Subnets"]:
        ec2.delete_subnet(SubnetId=subnet["SubnetId"])
    ec2.delete_vpc(VpcId=vpc_id)

    with pytest.raises(CloudError, match="no default VPC: pass --ami-subnet"):
        make_target().open(quiet)

    assert run_resources(ec2) == NOTHING


# Launching, logging in, removing


def test_an_ami_is_launched_as_a_buyer_would_and_reached_over_ssh(
    make_target: Any, ec2: Any, sshd: FakeSshServer, boot_into: Any
) -> None:
    target = make_target(resolve_address=boot_into(sshd))

    connection = target.open(quiet)

    details = connection.details
    instance = ec2.describe_instances(InstanceIds=[details["instance_id"]])
    instance = instance["Reservations"][0]["Instances"][0]
    assert connection.platform == "linux"
    assert connection.login_user == "ec2-user"
    assert connection.host.run("echo hello").stdout == "hello\n"
    assert instance["MetadataOptions"]["HttpTokens"] == "required"
    assert instance["InstanceType"] == "t3.micro" == details["instance_type"]
    assert {t["Key"] for t in instance["Tags"]} >= {
        cleanup.TAG_RUN,
        cleanup.TAG_EXPIRES,
    }
    assert details["image"]["ImageId"] == AMAZON_LINUX_AMI
    assert details["imdsv2_required_launch"] is True
    assert details["address"] == ("127.0.0.1", sshd.port)

    pair = ec2.describe_key_pairs(KeyNames=[target.name], IncludePublicKey=True)
    assert (
        pair["KeyPairs"][0]["PublicKey"].split()[1]
        == (connection.launch_public_key.split()[1])
    )
    assert stat.S_IMODE(target.created.key_file.stat().st_mode) == 0o600


def test_the_security_group_admits_only_ssh_from_the_configured_range(
    make_target: Any, ec2: Any, sshd: FakeSshServer, boot_into: Any
) -> None:
    target = make_target(resolve_address=boot_into(sshd))

    target.open(quiet)

    group = ec2.describe_security_groups(GroupIds=[target.created.group_id])
    rules = group["SecurityGroups"][0]["IpPermissions"]
    assert [(r["FromPort"], r["ToPort"]) for r in rules] == [(22, 22)]
    assert [ip["CidrIp"] for ip in rules[0]["IpRanges"]] == [TEST_CIDR]


def test_close_removes_everything_in_reverse_order_and_says_so(
    make_target: Any, ec2: Any, sshd: FakeSshServer, boot_into: Any
) -> None:
    target = make_target(resolve_address=boot_into(sshd))
    connection = target.open(quiet)
    key_file = target.created.key_file

    removed = target.close(quiet)

    assert [line.split()[0] for line in removed] == [
        "terminated",
        "deleted",
        "deleted",
        "removed",
    ]
    assert connection.details["instance_id"] in removed[0]
    assert run_resources(ec2) == NOTHING
    assert not key_file.exists()
    assert target.close(quiet) == []


def test_login_users_are_tried_in_order_until_one_is_accepted(
    make_target: Any, sshd: FakeSshServer, boot_into: Any
) -> None:
    sshd.users = ("cloud-user",)
    target = make_target(RHEL_AMI, resolve_address=boot_into(sshd))

    connection = target.open(quiet)

    assert connection.login_user == "cloud-user"
    assert sshd.attempts.index("ec2-user") < sshd.attempts.index("cloud-user")


def test_every_login_user_refused_lists_the_users_tried(
    make_target: Any, sshd: FakeSshServer
) -> None:
    # The fake holds no key of ours, as if cloud-init had installed another one.
    settings = Settings(ingress_cidr=TEST_CIDR, boot_timeout=2.0, ssh_timeout=0.5)
    target = make_target(
        RHEL_AMI, settings=settings, resolve_address=lambda i: ("127.0.0.1", sshd.port)
    )

    with pytest.raises(TargetError, match="tried ec2-user, cloud-user") as caught:
        target.open(quiet)

    # Whether cloud-init installed the key, and for whom, shows in the console.
    assert "Linux version" in caught.value.console


def test_ssh_never_answering_attaches_the_console_output(
    make_target: Any, ec2: Any
) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed_port = probe.getsockname()[1]
    settings = Settings(ingress_cidr=TEST_CIDR, boot_timeout=2.0, ssh_timeout=0.5)
    target = make_target(
        settings=settings, resolve_address=lambda i: ("127.0.0.1", closed_port)
    )

    with pytest.raises(
        TargetError, match=f"did not answer on 127.0.0.1:{closed_port}"
    ) as caught:
        target.open(quiet)

    # moto's console output is a canned Linux boot log.
    assert "Linux version" in caught.value.console
    assert "Linux version" in str(caught.value)


def test_keep_leaves_the_run_and_says_how_to_reach_and_remove_it(
    make_target: Any, ec2: Any, sshd: FakeSshServer, boot_into: Any
) -> None:
    settings = Settings(
        ingress_cidr=TEST_CIDR, boot_timeout=2.0, ssh_timeout=2.0, keep=True
    )
    target = make_target(settings=settings, resolve_address=boot_into(sshd))
    target.open(quiet)

    lines = target.close(quiet)

    text = "\n".join(lines)
    assert f"ssh -i {target.created.key_file} -p {sshd.port} ec2-user@127.0.0.1" in text
    assert "pytest --ami-cleanup --ami-region=us-east-1" in text
    assert (
        f"aws ec2 terminate-instances --region us-east-1 --instance-ids {target.created.instance_id}"
        in text
    )
    assert len(run_resources(ec2)["instances"]) == 1
    assert target.created.key_file.exists()

    later = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(hours=3)
    cleanup.cleanup_expired(ec2, later, delay=0.1)
    assert run_resources(ec2) == NOTHING
    target.created.key_file.unlink()


# Faults at every step leave nothing behind


def _after(module: Any, name: str, fault: type[BaseException]) -> Callable[..., Any]:
    real = getattr(module, name)

    def wrapped(*args: Any, **kwargs: Any) -> Any:
        real(*args, **kwargs)
        raise fault(f"injected after {name}")

    return wrapped


def _instead(module: Any, name: str, fault: type[BaseException]) -> Callable[..., Any]:
    def wrapped(*args: Any, **kwargs: Any) -> Any:
        raise fault(f"injected in {name}")

    return wrapped


# Each fault strikes right after a resource was created: in the next call the
# target makes, in its progress line for the launch, or inside the creating
# call itself, after AWS made the resource but before its id came back.
STEPS = {
    "after key import": (keys, "import_key_pair", _after),
    "inside CreateSecurityGroup, before the id is recorded": (
        network,
        "create_security_group",
        _after,
    ),
    "after group creation": (network, "allow_admin_ports", _instead),
    "inside RunInstances, before the id is recorded": (
        instances,
        "run_instance",
        _after,
    ),
    "after launch": (None, "launched", None),
    "while waiting for running": (instances, "wait_running", _instead),
    "while waiting for the port": (instances, "wait_for_port", _instead),
    "during connect": (ssh, "open_ssh", _instead),
}


@pytest.mark.parametrize("fault", [RuntimeError, KeyboardInterrupt])
@pytest.mark.parametrize("step", list(STEPS))
def test_a_fault_at_any_step_leaves_nothing_of_the_run(
    make_target: Any,
    ec2: Any,
    sshd: FakeSshServer,
    boot_into: Any,
    monkeypatch: pytest.MonkeyPatch,
    step: str,
    fault: type[BaseException],
) -> None:
    module, name, inject = STEPS[step]
    progress = quiet
    if inject is not None:
        monkeypatch.setattr(module, name, inject(module, name, fault))
    else:

        def progress(line: str) -> None:
            if name in line:
                raise fault(f"injected after {name}")

    target = make_target(resolve_address=boot_into(sshd))

    with pytest.raises(fault, match="injected"):
        target.open(progress)
    key_file = target.created.key_file
    target.close(quiet)

    assert run_resources(ec2) == NOTHING
    assert key_file is not None and not key_file.exists()
    assert target.created.empty()


def test_an_interrupt_during_close_still_removes_the_rest_then_stops(
    make_target: Any,
    ec2: Any,
    sshd: FakeSshServer,
    boot_into: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    target = make_target(resolve_address=boot_into(sshd))
    target.open(quiet)
    real_terminate = instances.terminate
    monkeypatch.setattr(
        instances, "terminate", _instead(instances, "terminate", KeyboardInterrupt)
    )

    with pytest.raises(KeyboardInterrupt):
        target.close(quiet)

    assert run_resources(ec2)["key_pairs"] == []
    assert target.created.instance_id is not None

    monkeypatch.setattr(instances, "terminate", real_terminate)
    target.close(quiet)
    assert run_resources(ec2) == NOTHING


def test_close_before_open_does_nothing(make_target: Any) -> None:
    assert make_target().close(quiet) == []


def test_settings_are_not_changed_by_a_run(
    make_target: Any, settings: Settings, sshd: FakeSshServer, boot_into: Any
) -> None:
    before = dataclasses.asdict(settings)

    make_target(resolve_address=boot_into(sshd)).open(quiet)

    assert dataclasses.asdict(settings) == before


def test_a_failed_launch_is_not_tried_again_and_its_key_file_is_removed(
    make_target: Any,
    ec2: Any,
    monkeypatch: pytest.MonkeyPatch,
    pytestconfig: pytest.Config,
) -> None:
    monkeypatch.setattr(
        network,
        "allow_admin_ports",
        _instead(network, "allow_admin_ports", RuntimeError),
    )
    target = make_target()
    run = TargetRun(target, target.settings, pytestconfig)

    with pytest.raises(TargetError, match="opening the target failed: RuntimeError"):
        run.machine_facts(quiet)
    with pytest.raises(TargetError, match="opening the target failed"):
        run.machine_facts(quiet)
    with pytest.raises(TargetError, match="not launched again"):
        target.open(quiet)

    assert len(ec2.describe_key_pairs()["KeyPairs"]) == 1
    run.close(quiet)
    assert run_resources(ec2) == NOTHING
    assert list(Path(tempfile.gettempdir()).glob(f"{target.name}-*")) == []


def test_a_failed_termination_keeps_the_group_and_says_how_to_remove_both(
    make_target: Any,
    ec2: Any,
    sshd: FakeSshServer,
    boot_into: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    target = make_target(resolve_address=boot_into(sshd))
    target.open(quiet)
    instance_id, group_id = target.created.instance_id, target.created.group_id
    real_terminate = instances.terminate
    group_deletions: list[str] = []

    def refused(*args: Any, **kwargs: Any) -> bool:
        raise CloudError("TerminateInstances was refused in us-east-1")

    def record_deletion(client: Any, group: str, *args: Any, **kwargs: Any) -> bool:
        group_deletions.append(group)
        return True

    monkeypatch.setattr(instances, "terminate", refused)
    monkeypatch.setattr(network, "delete_security_group", record_deletion)

    with pytest.raises(TargetError) as caught:
        target.close(quiet)

    message = str(caught.value)
    assert group_deletions == []
    assert f"security group {group_id} kept: instance {instance_id}" in message
    assert (
        f"`aws ec2 terminate-instances --region {REGION} --instance-ids {instance_id}`"
        in message
    )
    assert (
        f"`aws ec2 delete-security-group --region {REGION} --group-id {group_id}`"
        in message
    )
    assert "\n" not in message
    assert target.leftovers()

    monkeypatch.setattr(instances, "terminate", real_terminate)
    monkeypatch.undo()
    target.close(quiet)
    assert run_resources(ec2) == NOTHING
    assert target.leftovers() == []


def test_an_interrupted_teardown_is_not_marked_closed_so_it_is_retried(
    make_target: Any,
    ec2: Any,
    sshd: FakeSshServer,
    boot_into: Any,
    monkeypatch: pytest.MonkeyPatch,
    pytestconfig: pytest.Config,
) -> None:
    target = make_target(resolve_address=boot_into(sshd))
    target.open(quiet)
    run = TargetRun(target, target.settings, pytestconfig)
    monkeypatch.setattr(
        instances, "terminate", _instead(instances, "terminate", KeyboardInterrupt)
    )

    with pytest.raises(KeyboardInterrupt):
        run.close(quiet)

    assert run.closing and not run.closed
    monkeypatch.undo()
    run.close(quiet)
    assert run.closed
    assert run_resources(ec2) == NOTHING


def test_teardown_asks_to_terminate_every_instance_before_waiting_for_any(
    make_target: Any,
    ec2: Any,
    sshd: FakeSshServer,
    boot_into: Any,
    monkeypatch: pytest.MonkeyPatch,
    pytestconfig: pytest.Config,
) -> None:
    targets = [
        make_target(ami, resolve_address=boot_into(sshd))
        for ami in (AMAZON_LINUX_AMI, RHEL_AMI)
    ]
    launched = [target.open(quiet).details["instance_id"] for target in targets]
    session = AmiPolicySession(pytestconfig, targets[0].settings, targets)
    session.progress = quiet  # type: ignore[method-assign]
    calls: list[tuple[str, str]] = []
    real_request, real_terminate = instances.request_termination, instances.terminate

    def request(client: Any, ids: list[str], region: str) -> None:
        calls.extend(("request", instance_id) for instance_id in ids)
        real_request(client, ids, region)

    def terminate(client: Any, instance_id: str, *args: Any, **kwargs: Any) -> bool:
        calls.append(("wait", instance_id))
        return real_terminate(client, instance_id, *args, **kwargs)

    monkeypatch.setattr(instances, "request_termination", request)
    monkeypatch.setattr(instances, "terminate", terminate)

    session.close_all()

    # Asked once each, then only waited for.
    assert calls == [
        ("request", launched[0]),
        ("request", launched[1]),
        ("wait", launched[0]),
        ("wait", launched[1]),
    ]
    assert run_resources(ec2) == NOTHING


@pytest.mark.parametrize(
    ("instance_type", "message"),
    [
        (
            "t9.nano",
            "instance type 't9.nano' does not exist in us-east-1: pass "
            "--ami-instance-type with a type offered there, such as t3.micro",
        ),
        (
            "t4g.micro",
            "instance type t4g.micro runs arm64 but the AMI is x86_64: pass "
            "--ami-instance-type with an x86_64 type, such as t3.micro",
        ),
    ],
)
def test_a_wrong_instance_type_is_refused_before_anything_is_created(
    make_target: Any, ec2: Any, instance_type: str, message: str
) -> None:
    settings = Settings(
        ingress_cidr=TEST_CIDR,
        boot_timeout=2.0,
        ssh_timeout=2.0,
        instance_type=instance_type,
    )
    target = make_target(settings=settings)

    with pytest.raises(CloudError) as caught:
        target.open(quiet)

    assert str(caught.value) == message
    assert run_resources(ec2) == NOTHING
    assert target.created.empty()


def test_a_refused_instance_type_lookup_only_skips_the_check() -> None:
    client = boto3.client("ec2", region_name=REGION)
    with Stubber(client) as stubber:
        stubber.add_client_error(
            "describe_instance_types",
            "UnauthorizedOperation",
            "You are not authorized to perform this operation.",
            expected_params={"InstanceTypes": ["m7i.large"]},
        )

        instances.check_instance_type(
            client, "m7i.large", "x86_64", REGION, default="t3.micro"
        )


def test_a_refused_zone_lookup_lets_ec2_choose_the_subnet() -> None:
    client = boto3.client("ec2", region_name=REGION)
    with Stubber(client) as stubber:
        stubber.add_response(
            "describe_subnets",
            {"Subnets": [{"SubnetId": "subnet-1", "AvailabilityZone": "us-east-1a"}]},
        )
        stubber.add_client_error(
            "describe_instance_type_offerings",
            "UnauthorizedOperation",
            "You are not authorized to perform this operation.",
        )

        subnet = network.pick_subnet(client, "vpc-1", "t3.micro", REGION)

    assert subnet is None


def test_the_default_vpc_is_asked_for_with_the_documented_filter_name() -> None:
    client = boto3.client("ec2", region_name=REGION)
    with Stubber(client) as stubber:
        stubber.add_response(
            "describe_vpcs",
            {"Vpcs": [{"VpcId": "vpc-1", "CidrBlock": "172.31.0.0/16"}]},
            {"Filters": [{"Name": "is-default", "Values": ["true"]}]},
        )

        assert network.find_vpc(client, None, REGION) == ("vpc-1", None)


def test_private_connect_admits_the_vpcs_range_when_no_range_is_given(
    make_target: Any, ec2: Any, sshd: FakeSshServer, boot_into: Any
) -> None:
    settings = Settings(boot_timeout=2.0, ssh_timeout=2.0, connect="private")
    target = make_target(settings=settings, resolve_address=boot_into(sshd))
    lines: list[str] = []

    target.open(lines.append)

    group = ec2.describe_security_groups(GroupIds=[target.created.group_id])
    rules = group["SecurityGroups"][0]["IpPermissions"]
    assert [ip["CidrIp"] for ip in rules[0]["IpRanges"]] == ["172.31.0.0/16"]
    assert any(
        "for 172.31.0.0/16 (the range of vpc-" in line
        and "--ami-connect=private" in line
        for line in lines
    )


def test_the_latest_console_output_is_asked_for_then_the_snapshot_if_refused() -> None:
    client = boto3.client("ec2", region_name=REGION)
    boot_log = base64.b64encode(b"cloud-init: ssh keys installed\n").decode()
    with Stubber(client) as stubber:
        stubber.add_client_error(
            "get_console_output",
            "UnsupportedOperation",
            "Latest is only supported on Nitro instances.",
            expected_params={"InstanceId": "i-0abc", "Latest": True},
        )
        stubber.add_response(
            "get_console_output",
            {"InstanceId": "i-0abc", "Output": boot_log},
            {"InstanceId": "i-0abc"},
        )

        tail = instances.console_tail(client, "i-0abc", REGION)

    assert tail == "cloud-init: ssh keys installed"
