"""The --ami path for Windows against moto: password, WinRM, verdicts, cleanup.

Everything but one call goes through real boto3 to moto. moto answers
GetPasswordData with random text that no key decrypts, so that call alone is
served by a botocore Stubber, with what EC2 really publishes: nothing for a
while, then the password encrypted (RSA, PKCS#1 v1.5) with the public key of
the imported key pair. The login is routed by ``resolve_address`` to a fake
WS-Management endpoint on loopback that plays a Windows Server 2022 machine;
moto's invented addresses are never contacted.
"""

from __future__ import annotations

import base64
import datetime
import logging
from collections.abc import Iterator
from typing import Any, Callable

import boto3
import pytest
from botocore.stub import Stubber
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from pytest_amipolicy.aws import cleanup, keys, passwords
from pytest_amipolicy.errors import CloudError, TargetError
from pytest_amipolicy.facts import Facts
from pytest_amipolicy.policies import windows as windows_policies
from pytest_amipolicy.runtime import TargetRun, gather_facts
from pytest_amipolicy.settings import Settings
from pytest_amipolicy.targets import Connection, ec2_windows
from tests.functional.conftest import REGION, TEST_CIDR
from tests.support.winrm_server import FakeWinRMEndpoint

# Generated passwords are full of punctuation; this one needs quoting in a spec
# (no ":" though: the fake endpoint's NTLM account file cannot hold one).
PASSWORD = "Xk7;pQ@2%zR/t?9#wE&"
# moto's Windows Server 2016 base image, only the seed of the test's own AMI.
SEED_AMI = "ami-b7e93bce"
SERVER_2022 = {
    "os": {
        "caption": "Microsoft Windows Server 2022 Datacenter",
        "version": "10.0.20348",
    }
}
CHECKS = {
    "WIN-LAUNCH-AGENT": windows_policies.check_launch_agent,
    "WIN-GUEST": windows_policies.check_guest,
    "WIN-RDP-USERS": windows_policies.check_rdp_users,
    "WIN-ADMIN-PASSWORD": windows_policies.check_admin_password,
    "WIN-SECRETS": windows_policies.check_secrets,
    "WIN-RDP": windows_policies.check_rdp,
}


def quiet(line: str) -> None:
    pass


def encrypt_for(public_openssh: str, password: str) -> str:
    """Return password data as EC2 publishes it for a key pair's public key."""
    public_key = serialization.load_ssh_public_key(public_openssh.encode("ascii"))
    assert isinstance(public_key, rsa.RSAPublicKey)
    secret = public_key.encrypt(password.encode("utf-8"), padding.PKCS1v15())
    return base64.b64encode(secret).decode("ascii")


class PasswordService:
    """GetPasswordData through a Stubber; every other call goes to moto.

    ``publish`` is called when the instance is reached, as EC2 publishes the
    data some minutes after launch: ``pending`` empty answers, then the
    password encrypted for the key pair the instance was launched with.
    """

    def __init__(self, moto_client: Any) -> None:
        self.moto = moto_client
        self.stubbed = boto3.client("ec2", region_name=REGION)
        self.stubber = Stubber(self.stubbed)
        self.stubber.activate()

    def publish(
        self, instance: dict[str, Any], password: str | None, pending: int = 2
    ) -> None:
        instance_id = instance["InstanceId"]
        answer = {"InstanceId": instance_id, "Timestamp": datetime.datetime.now()}

        for _ in range(pending):
            self.stubber.add_response(
                "get_password_data",
                {**answer, "PasswordData": ""},
                {"InstanceId": instance_id},
            )
        if password is None:
            return

        pairs = self.moto.describe_key_pairs(
            KeyNames=[instance["KeyName"]], IncludePublicKey=True
        )["KeyPairs"]
        data = encrypt_for(pairs[0]["PublicKey"], password)
        # Once for the waiter, once more for the data itself.
        for _ in range(2):
            self.stubber.add_response(
                "get_password_data",
                {**answer, "PasswordData": data},
                {"InstanceId": instance_id},
            )


class RoutedClient:
    """An EC2 client that is moto's, except for GetPasswordData."""

    def __init__(self, service: PasswordService) -> None:
        self._service = service

    def __getattr__(self, name: str) -> Any:
        return getattr(self._service.moto, name)

    def get_password_data(self, **kwargs: Any) -> Any:
        return self._service.stubbed.get_password_data(**kwargs)

    def get_waiter(self, name: str) -> Any:
        if name == "password_data_available":
            return self._service.stubbed.get_waiter(name)
        return self._service.moto.get_waiter(name)


def run_resources(ec2: Any) -> dict[str, list[str]]:
    """What moto holds of any run: live instances, tagged groups and key pairs."""
    tagged = [{"Name": "tag-key", "Values": [cleanup.TAG_RUN]}]
    live = [
        instance["InstanceId"]
        for reservation in ec2.describe_instances(Filters=tagged)["Reservations"]
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


NOTHING: dict[str, list[str]] = {"instances": [], "groups": [], "key_pairs": []}


@pytest.fixture
def windows_ami(ec2: Any) -> str:
    """A seller's Windows Server 2022 AMI, registered in moto.

    moto's RegisterImage takes no platform, but an image made from an instance
    of a Windows AMI is marked Platform=windows, as on EC2.
    """
    seed = ec2.run_instances(
        ImageId=SEED_AMI, MinCount=1, MaxCount=1, InstanceType="t3.micro"
    )["Instances"][0]["InstanceId"]
    image_id = str(
        ec2.create_image(
            InstanceId=seed,
            Name="acme-app-Windows_Server-2022-English-Full-Base-2024.06.12",
            Description="ACME App on Microsoft Windows Server 2022",
        )["ImageId"]
    )
    ec2.terminate_instances(InstanceIds=[seed])
    return image_id


@pytest.fixture
def password_service(ec2: Any) -> PasswordService:
    return PasswordService(ec2)


@pytest.fixture
def endpoint() -> Iterator[FakeWinRMEndpoint]:
    with FakeWinRMEndpoint(SERVER_2022, password=PASSWORD) as served:
        yield served


@pytest.fixture
def launch_windows(
    make_target: Any,
    windows_ami: str,
    password_service: PasswordService,
    endpoint: FakeWinRMEndpoint,
) -> Callable[..., Any]:
    """Make an Ec2Target for the Windows AMI whose instance "boots into" the
    fake endpoint and publishes ``password`` (None: never publishes one)."""

    def make(
        password: str | None = PASSWORD,
        settings: Settings | None = None,
        served: FakeWinRMEndpoint = endpoint,
        pending: int = 2,
    ) -> Any:
        def resolve(instance: dict[str, Any]) -> tuple[str, int]:
            password_service.publish(instance, password, pending)
            return "127.0.0.1", served.port

        options: dict[str, Any] = {
            "resolve_address": resolve,
            "client": RoutedClient(password_service),
        }
        if settings is not None:
            options["settings"] = settings
        return make_target(windows_ami, **options)

    return make


def gathered(target: Any, connection: Connection, config: pytest.Config) -> Facts:
    run = TargetRun(target, target.settings, config)
    run.connection = connection
    return gather_facts(run, quiet)


# The password data


def test_the_test_ami_is_a_windows_image_in_moto(ec2: Any, windows_ami: str) -> None:
    image = ec2.describe_images(ImageIds=[windows_ami])["Images"][0]

    assert image["Platform"] == "windows"
    assert image["Architecture"] == "x86_64"


def test_password_data_decrypts_with_the_launch_key() -> None:
    key = keys.make_launch_key("windows", "amipolicy-test")

    data = encrypt_for(key.public_openssh, PASSWORD)
    password = passwords.decrypt_password(data, key.path, "i-0abc")

    assert password.reveal() == PASSWORD
    assert PASSWORD not in repr(password) and PASSWORD not in f"{password}"
    key.path.unlink()


def test_password_data_wrapped_in_lines_still_decrypts() -> None:
    key = keys.make_launch_key("windows", "amipolicy-test")
    data = encrypt_for(key.public_openssh, PASSWORD)

    wrapped = "\n".join(data[i : i + 76] for i in range(0, len(data), 76))

    assert passwords.decrypt_password(wrapped, key.path, "i-0abc").reveal() == PASSWORD
    key.path.unlink()


def test_motos_password_data_is_not_decryptable_so_it_is_stubbed(
    ec2: Any, windows_ami: str
) -> None:
    # Why GetPasswordData is stubbed: moto returns random text for Windows.
    instance_id = ec2.run_instances(
        ImageId=windows_ami, MinCount=1, MaxCount=1, InstanceType="t3.micro"
    )["Instances"][0]["InstanceId"]
    data = ec2.get_password_data(InstanceId=instance_id)["PasswordData"]
    key = keys.make_launch_key("windows", "amipolicy-test")

    with pytest.raises(CloudError, match="cannot be decrypted") as caught:
        passwords.decrypt_password(data, key.path, instance_id)

    assert data and data not in str(caught.value)
    assert "\n" not in str(caught.value)
    ec2.terminate_instances(InstanceIds=[instance_id])
    key.path.unlink()


def test_a_refused_get_password_data_names_the_missing_permission() -> None:
    client = boto3.client("ec2", region_name=REGION)
    stubber = Stubber(client)
    stubber.add_client_error(
        "get_password_data", "UnauthorizedOperation", "You are not authorized"
    )

    with stubber, pytest.raises(CloudError, match="ec2:GetPasswordData"):
        passwords.wait_for_password_data(client, "i-0abc", 1.0, 0.1, REGION)


# Launching and logging in


def test_a_windows_ami_is_launched_and_reached_over_winrm_as_administrator(
    launch_windows: Any, ec2: Any, endpoint: FakeWinRMEndpoint
) -> None:
    target = launch_windows()

    connection = target.open(quiet)

    details = connection.details
    pair = ec2.describe_key_pairs(KeyNames=[target.name], IncludePublicKey=True)
    assert connection.platform == "windows"
    assert connection.login_user == "Administrator"
    assert details["password_data_available"] is True
    assert details["imdsv2_required_launch"] is True
    assert details["address"] == ("127.0.0.1", endpoint.port)
    assert pair["KeyPairs"][0]["PublicKey"].startswith("ssh-rsa ")
    assert connection.host.run("echo hello").stdout_bytes == b"hello\r\n"
    assert endpoint.actions[:3] == ["Create", "Command", "Receive"]


def test_the_password_is_waited_for_while_ec2_publishes_nothing(
    launch_windows: Any, password_service: PasswordService
) -> None:
    target = launch_windows()

    target.open(quiet)

    # The two empty answers and both answers with data were all asked for.
    password_service.stubber.assert_no_pending_responses()


def test_the_security_group_admits_winrm_and_rdp_only_from_the_range(
    launch_windows: Any, ec2: Any
) -> None:
    target = launch_windows()

    target.open(quiet)

    group = ec2.describe_security_groups(GroupIds=[target.created.group_id])
    rules = group["SecurityGroups"][0]["IpPermissions"]
    ports = sorted((rule["FromPort"], rule["ToPort"]) for rule in rules)
    assert ports == [(3389, 3389), (5986, 5986)]
    assert all(
        [ip["CidrIp"] for ip in rule["IpRanges"]] == [TEST_CIDR] for rule in rules
    )
    assert all(not rule.get("Ipv6Ranges") for rule in rules)


@pytest.mark.parametrize(
    ("machine", "expected"),
    [
        pytest.param(
            SERVER_2022,
            dict.fromkeys(CHECKS, "pass"),
            id="well-prepared",
        ),
        pytest.param(
            {
                **SERVER_2022,
                "local_users": [
                    {
                        "name": "Administrator",
                        "sid": "S-1-5-21-1-2-3-500",
                        "enabled": True,
                    },
                    {"name": "Guest", "sid": "S-1-5-21-1-2-3-501", "enabled": True},
                    {"name": "support", "sid": "S-1-5-21-1-2-3-1001", "enabled": True},
                ],
                "groups": {"S-1-5-32-555": ["support"]},
            },
            {
                **dict.fromkeys(CHECKS, "pass"),
                "WIN-GUEST": "fail",
                "WIN-RDP-USERS": "fail",
            },
            id="guest-enabled-and-an-rdp-user",
        ),
    ],
)
def test_the_win_verdicts_are_judged_on_facts_gathered_through_ec2(
    launch_windows: Any,
    pytestconfig: pytest.Config,
    machine: dict[str, Any],
    expected: dict[str, str],
) -> None:
    with FakeWinRMEndpoint(machine, password=PASSWORD) as served:
        target = launch_windows(served=served)
        facts = gathered(target, target.open(quiet), pytestconfig)

    verdicts = {name: check(facts).verdict.value for name, check in CHECKS.items()}

    assert verdicts == expected
    assert facts.platform == "windows"
    assert facts.settings["password_data_available"] is True
    assert facts.remote_commands == 1


def test_the_admin_password_verdict_shows_the_password_data_evidence(
    launch_windows: Any, pytestconfig: pytest.Config
) -> None:
    target = launch_windows()
    facts = gathered(target, target.open(quiet), pytestconfig)

    outcome = windows_policies.check_admin_password(facts)

    rendered = str([evidence.render() for evidence in outcome.evidence])
    assert outcome.verdict.value == "pass"
    assert "available: True" in rendered
    assert PASSWORD not in rendered


def test_close_removes_the_instance_group_key_pair_and_key_file(
    launch_windows: Any, ec2: Any
) -> None:
    target = launch_windows()
    connection = target.open(quiet)
    key_file = target.created.key_file
    assert run_resources(ec2) != NOTHING

    removed = target.close(quiet)

    assert connection.details["instance_id"] in removed[0]
    assert run_resources(ec2) == NOTHING
    assert not key_file.exists()


def test_keep_says_how_to_fetch_the_password_without_showing_it(
    launch_windows: Any, ec2: Any
) -> None:
    settings = Settings(
        ingress_cidr=TEST_CIDR, boot_timeout=2.0, ssh_timeout=2.0, keep=True
    )
    target = launch_windows(settings=settings)
    target.open(quiet)

    text = "\n".join(target.close(quiet))

    assert "WinRM over HTTPS at 127.0.0.1" in text
    assert f"--priv-launch-key {target.created.key_file}" in text
    assert PASSWORD not in text
    later = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(hours=3)
    cleanup.cleanup_expired(ec2, later, delay=0.1)
    assert run_resources(ec2) == NOTHING
    target.created.key_file.unlink()


# Failures: one line naming the target, nothing left behind


def test_a_password_never_published_times_out_in_one_line_and_leaves_nothing(
    launch_windows: Any, ec2: Any, windows_ami: str
) -> None:
    settings = Settings(ingress_cidr=TEST_CIDR, boot_timeout=1.0, ssh_timeout=1.0)
    # More empty answers than the waiter has attempts.
    target = launch_windows(password=None, pending=50, settings=settings)

    with pytest.raises(TargetError) as caught:
        target.open(quiet)
    target.close(quiet)

    message = str(caught.value)
    assert message.startswith(f"{windows_ami}: i-")
    assert "published no administrator password within 1s" in message
    assert "--ami-boot-timeout" in message
    assert "\n" not in message
    assert run_resources(ec2) == NOTHING


def test_a_wrong_password_is_one_line_naming_the_target(
    launch_windows: Any, ec2: Any, windows_ami: str, endpoint: FakeWinRMEndpoint
) -> None:
    published = "Not;The%Real@Pass1"
    target = launch_windows(password=published)

    with pytest.raises(TargetError) as caught:
        target.open(quiet)
    target.close(quiet)

    message = str(caught.value)
    assert message.startswith(f"{windows_ami}: WinRM at 127.0.0.1:{endpoint.port}")
    assert "rejected the password of Administrator" in message
    assert "\n" not in message
    assert published not in message and PASSWORD not in message
    assert run_resources(ec2) == NOTHING


def test_the_password_appears_in_no_log_line_or_progress_line(
    launch_windows: Any, pytestconfig: pytest.Config, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    lines: list[str] = []
    target = launch_windows()

    facts = gathered(target, target.open(lines.append), pytestconfig)
    verdicts = [check(facts) for check in CHECKS.values()]
    lines.extend(target.close(lines.append))

    assert lines and caplog.records
    assert PASSWORD not in caplog.text
    assert PASSWORD not in "\n".join(lines)
    assert PASSWORD not in repr(facts.settings)
    assert all(PASSWORD not in repr(outcome) for outcome in verdicts)


class FlakyHost:
    """A testinfra host stand-in whose first commands fail with ``errors``."""

    def __init__(self, *errors: BaseException) -> None:
        self.errors = list(errors)
        self.calls = 0

    def run(self, command: str) -> Any:
        self.calls += 1
        if self.errors:
            raise self.errors.pop(0)
        return type("Result", (), {"rc": 0})()


def test_a_listener_not_ready_yet_is_retried_until_it_answers() -> None:
    import requests.exceptions

    refused = requests.exceptions.ConnectionError("[Errno 111] Connection refused")
    host = FlakyHost(refused, refused)

    ec2_windows._check_login("ami-0abc", host, "127.0.0.1:5986", 5.0, 0.01)

    assert host.calls == 3


def test_a_rejected_password_is_not_retried() -> None:
    import winrm.exceptions

    host = FlakyHost(winrm.exceptions.InvalidCredentialsError("rejected"))

    with pytest.raises(TargetError, match="rejected the password"):
        ec2_windows._check_login("ami-0abc", host, "127.0.0.1:5986", 5.0, 0.01)

    assert host.calls == 1


def test_the_password_is_waited_for_before_the_winrm_port(
    launch_windows: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from pytest_amipolicy.aws import instances

    steps: list[str] = []
    real_password, real_port = passwords.wait_for_password_data, instances.wait_for_port

    def password_data(*args: Any) -> str:
        steps.append("password")
        return real_password(*args)

    def port(*args: Any) -> str | None:
        steps.append("port")
        return real_port(*args)

    monkeypatch.setattr(passwords, "wait_for_password_data", password_data)
    monkeypatch.setattr(instances, "wait_for_port", port)
    target = launch_windows()

    target.open(quiet)

    assert steps == ["password", "port"]


def test_the_windows_launch_key_is_a_traditional_pem_of_a_documented_size() -> None:
    import paramiko

    key = keys.make_launch_key("windows", "amipolicy-test")

    text = key.path.read_text(encoding="ascii")
    loaded = serialization.load_pem_private_key(text.encode("ascii"), None)
    assert text.startswith("-----BEGIN RSA PRIVATE KEY-----\n")
    assert isinstance(loaded, rsa.RSAPrivateKey)
    # ImportKeyPair documents RSA keys of 1024, 2048 and 4096 bits.
    assert loaded.key_size in (1024, 2048, 4096)
    assert paramiko.RSAKey.from_private_key_file(str(key.path)).get_bits() == (
        loaded.key_size
    )
    key.path.unlink()
