"""What a root tree says about its first boot, read before it is booted."""

from __future__ import annotations

from pathlib import Path

import pytest

from pytest_amipolicy.imaging.tree import first_boot_problem, sshd_enabled


def touch(root: Path, relative: str, text: str = "") -> Path:
    path = root / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def link(root: Path, relative: str, target: str) -> None:
    path = root / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    path.symlink_to(target)


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    """A systemd tree with cloud-init and sshd, nothing enabled yet."""
    root = tmp_path / "tree"
    touch(root, "usr/lib/systemd/systemd")
    touch(root, "usr/bin/cloud-init")
    touch(root, "usr/lib/systemd/system/ssh.service")
    touch(root, "etc/machine-id")
    link(root, "lib", "usr/lib")
    return root


def test_a_tree_with_sshd_wanted_at_boot_has_no_problem(tree: Path) -> None:
    link(
        tree,
        "etc/systemd/system/multi-user.target.wants/ssh.service",
        "/lib/systemd/system/ssh.service",
    )

    assert first_boot_problem(tree) is None


def test_an_enabled_ssh_socket_counts(tree: Path) -> None:
    link(
        tree,
        "etc/systemd/system/sockets.target.wants/ssh.socket",
        "/lib/systemd/system/ssh.socket",
    )

    assert sshd_enabled(tree)


def test_a_tree_without_cloud_init_is_named_at_once(tree: Path) -> None:
    (tree / "usr/bin/cloud-init").unlink()

    assert "has no cloud-init" in str(first_boot_problem(tree))


def test_a_tree_with_cloud_init_turned_off_is_named_at_once(tree: Path) -> None:
    touch(tree, "etc/cloud/cloud-init.disabled")

    assert "cloud-init turned off" in str(first_boot_problem(tree))


def test_a_tree_whose_sshd_is_not_enabled_is_named_at_once(tree: Path) -> None:
    assert "does not start sshd at boot" in str(first_boot_problem(tree))


def test_a_masked_sshd_is_not_enabled_even_if_wanted(tree: Path) -> None:
    link(
        tree,
        "etc/systemd/system/multi-user.target.wants/ssh.service",
        "/lib/systemd/system/ssh.service",
    )
    link(tree, "etc/systemd/system/ssh.service", "/dev/null")

    assert not sshd_enabled(tree)


@pytest.mark.parametrize(
    ("machine_id", "enabled"),
    [("", True), ("uninitialized\n", True), ("ab12\n", False)],
)
def test_a_preset_enables_sshd_only_on_a_first_boot(
    tree: Path, machine_id: str, enabled: bool
) -> None:
    touch(tree, "etc/machine-id", machine_id)
    touch(tree, "usr/lib/systemd/system-preset/90-default.preset", "enable sshd.*\n")
    touch(tree, "usr/lib/systemd/system-preset/99-default.preset", "disable *\n")

    assert sshd_enabled(tree) is enabled


def test_the_first_matching_preset_decides(tree: Path) -> None:
    touch(tree, "usr/lib/systemd/system-preset/10-off.preset", "disable ssh*\n")
    touch(tree, "usr/lib/systemd/system-preset/90-on.preset", "enable ssh.service\n")

    assert not sshd_enabled(tree)


def test_a_tree_with_another_init_system_is_booted_unchecked(tmp_path: Path) -> None:
    root = tmp_path / "sysv"
    touch(root, "sbin/init")
    touch(root, "usr/bin/cloud-init")

    assert first_boot_problem(root) is None
