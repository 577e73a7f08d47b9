"""One moto server for the functional tier, reset before every test.

Every EC2 call in these tests goes through real boto3 to moto on loopback;
nothing may reach AWS, so the endpoint, credentials and config files are all
pinned here for the whole session.
"""

from __future__ import annotations

import contextlib
import ipaddress
import socket
from collections.abc import Iterator
from typing import Any, Callable

import boto3
import pytest

from pytest_amipolicy.settings import Settings
from pytest_amipolicy.targets.ec2 import Ec2Target
from tests.functional.sshfake import FakeSshServer
from tests.support.moto import REGION, moto_server, reset

# Amazon Linux 2 (x86_64, hvm, ebs) from moto's built-in catalogue.
AMAZON_LINUX_AMI = "ami-04e486878a41da19c"
# A documentation address: the ingress range is only ever written into moto.
TEST_CIDR = "203.0.113.7/32"


def _is_loopback(address: Any) -> bool:
    """Whether a socket address stays on this machine (Unix sockets always do)."""
    if not isinstance(address, tuple):
        return True
    host = str(address[0])
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.split("%")[0]).is_loopback
    except ValueError:
        # A name that is not localhost would be resolved and reached elsewhere.
        return False


@pytest.fixture(autouse=True)
def offsite_connections(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """Fail the test on any connect to an address off this machine.

    moto invents public and private addresses that belong to nobody; the
    tests must route every connection to loopback, and must never reach AWS.
    The failure is raised (not as an OSError, which retry loops swallow) and
    recorded, so a caught one still fails the test at teardown.
    """
    refused: list[str] = []
    real_connect, real_connect_ex = socket.socket.connect, socket.socket.connect_ex

    def guard(address: Any) -> None:
        if not _is_loopback(address):
            refused.append(repr(address))
            pytest.fail(f"a test connected off this machine, to {address!r}")

    def connect(self: socket.socket, address: Any) -> None:
        guard(address)
        real_connect(self, address)

    def connect_ex(self: socket.socket, address: Any) -> int:
        guard(address)
        return real_connect_ex(self, address)

    monkeypatch.setattr(socket.socket, "connect", connect)
    monkeypatch.setattr(socket.socket, "connect_ex", connect_ex)
    yield refused
    assert not refused, f"connections off this machine were tried: {refused}"


@pytest.fixture(scope="session")
def moto_endpoint() -> Iterator[str]:
    with moto_server() as environment, pytest.MonkeyPatch.context() as patch:
        for name in ("AWS_PROFILE", "AWS_REGION"):
            patch.delenv(name, raising=False)
        for name, value in environment.items():
            patch.setenv(name, value)
        yield environment["AWS_ENDPOINT_URL"]


@pytest.fixture
def moto(moto_endpoint: str) -> str:
    """A moto server in its initial state (default VPC, built-in AMIs)."""
    reset(moto_endpoint)
    return moto_endpoint


@pytest.fixture
def ec2(moto: str) -> Any:
    return boto3.client("ec2", region_name=REGION)


@pytest.fixture
def settings() -> Settings:
    """Settings with timeouts short enough for a suite measured in seconds."""
    return Settings(ingress_cidr=TEST_CIDR, boot_timeout=2.0, ssh_timeout=2.0)


def _no_public_address_lookup() -> str:
    raise AssertionError("tests must never look up the public address")


@pytest.fixture
def make_target(ec2: Any, settings: Settings) -> Iterator[Callable[..., Ec2Target]]:
    """Build Ec2Targets on moto; every one is closed after the test."""
    made: list[Ec2Target] = []

    def make(
        ami: str = AMAZON_LINUX_AMI,
        settings: Settings = settings,
        resolve_address: Callable[[dict[str, Any]], Any] | None = None,
        client: Any = None,
    ) -> Ec2Target:
        target = Ec2Target(
            ami,
            settings,
            resolve_address=resolve_address,
            ec2=client or ec2,
            public_address=_no_public_address_lookup,
        )
        made.append(target)
        return target

    yield make

    for target in made:
        with contextlib.suppress(Exception):
            target.close(lambda line: None)


@pytest.fixture
def sshd() -> Iterator[FakeSshServer]:
    server = FakeSshServer(users=("ec2-user",)).start()
    yield server
    server.stop()


@pytest.fixture
def boot_into(ec2: Any) -> Callable[[FakeSshServer], Callable[[dict[str, Any]], Any]]:
    """Route the connect step to a fake sshd that holds the launch key, as
    cloud-init would after a real boot."""

    def route(server: FakeSshServer) -> Callable[[dict[str, Any]], Any]:
        def resolve(instance: dict[str, Any]) -> tuple[str, int]:
            pairs = ec2.describe_key_pairs(
                KeyNames=[instance["KeyName"]], IncludePublicKey=True
            )["KeyPairs"]
            server.authorize(pairs[0]["PublicKey"])
            return "127.0.0.1", server.port

        return resolve

    return route
