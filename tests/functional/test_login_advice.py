"""A refused SSH login says what to fix for the kind of target that refused it.

Only ``--ami-host`` logs in with a key the user gives (``--ami-key``); an AMI or
a local image is given a key the plugin made for the run, so the fix there is
the login user or the image's own sshd and cloud-init. The fake sshd holds no
key of the plugin's, as if cloud-init had never installed the launch key.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from pytest_amipolicy.errors import TargetError
from pytest_amipolicy.settings import Settings
from pytest_amipolicy.targets import ssh
from pytest_amipolicy.targets.image import ImageTarget
from tests.functional.conftest import TEST_CIDR
from tests.functional.sshfake import FakeSshServer

RHEL_AMI = "ami-bb9a6bc2"


def quiet(line: str) -> None:
    pass


def test_a_host_that_refuses_the_key_advises_ami_key_or_the_user(
    sshd: FakeSshServer, tmp_path: Path
) -> None:
    key = ssh.LaunchKey()

    with pytest.raises(TargetError) as caught:
        ssh.open_ssh(
            "ssh://ec2-user@127.0.0.1",
            address="127.0.0.1",
            port=sshd.port,
            user="ec2-user",
            key_file=key.path,
            ssh_config=key.ssh_config,
        )

    assert "(--ami-key or ?ssh_identity_file=)" in caught.value.message
    key.remove()


def test_an_ami_that_refuses_the_launch_key_advises_its_default_user_not_a_key(
    make_target: Any, sshd: FakeSshServer
) -> None:
    settings = Settings(ingress_cidr=TEST_CIDR, boot_timeout=2.0, ssh_timeout=0.5)
    target = make_target(
        RHEL_AMI, settings=settings, resolve_address=lambda i: ("127.0.0.1", sshd.port)
    )

    with pytest.raises(TargetError) as caught:
        target.open(quiet)

    message = caught.value.message
    assert "--ami-key" not in message
    assert "ssh_identity_file" not in message
    assert "ec2-user@127.0.0.1:" in message
    assert "refused the launch key made for this run" in message
    assert "pass --ami-user with the AMI's default user" in message


@pytest.fixture
def fake_boot(
    monkeypatch: pytest.MonkeyPatch, sshd: FakeSshServer
) -> Iterator[list[str]]:
    """Boot nothing: the image "answers SSH" at the fake sshd on loopback."""
    from pytest_amipolicy.imaging import boot, source

    booted_users: list[str] = []

    @contextlib.contextmanager
    def booted(root: Path, *, login_user: str, **kwargs: Any) -> Iterator[Any]:
        booted_users.append(login_user)
        yield SimpleNamespace(
            address="127.0.0.1", port=sshd.port, boot_time=0.1, name="fake"
        )

    monkeypatch.setattr(boot, "booted", booted)
    monkeypatch.setattr(source, "require_boot_tools", lambda: None)
    monkeypatch.setattr(source, "_check_tree", lambda path, root: None)
    yield booted_users


def test_an_image_that_refuses_the_launch_key_points_at_its_sshd_and_cloud_init(
    fake_boot: list[str], tmp_path: Path
) -> None:
    tree = tmp_path / "tree"
    (tree / "etc").mkdir(parents=True)
    (tree / "etc/os-release").write_text("ID=debian\n")
    target = ImageTarget(str(tree), Settings(ssh_timeout=5.0))

    with pytest.raises(TargetError) as caught:
        target.open(quiet)

    message = caught.value.message
    assert fake_boot == ["admin"]
    assert "--ami-key" not in message
    assert "admin@127.0.0.1:" in message
    assert "refused the launch key made for this run" in message
    assert "cloud-init" in message
    assert "sshd" in message
    target.close(quiet)
