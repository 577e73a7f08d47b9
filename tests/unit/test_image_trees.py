"""What a root tree says about its first boot, read before it is booted."""

from __future__ import annotations

from pathlib import Path

import pytest

from pytest_amipolicy.imaging.tree import first_boot_problem, login_user, sshd_enabled


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


# The login user


def default_user_config(name: str) -> str:
    return f"system_info:\n  default_user:\n    name: {name}\n    lock_passwd: true\n"


def test_the_login_user_is_cloud_inits_default_user_with_drop_ins_winning(
    tree: Path,
) -> None:
    touch(tree, "etc/cloud/cloud.cfg", default_user_config("debian"))
    touch(tree, "etc/cloud/cloud.cfg.d/90-vendor.cfg", default_user_config("admin"))
    # A later file that sets other fields of the user keeps its name.
    touch(
        tree,
        "etc/cloud/cloud.cfg.d/95-shell.cfg",
        "system_info:\n  default_user:\n    shell: /bin/zsh\n",
    )

    assert login_user(tree) == "admin"


def test_the_last_drop_in_naming_a_user_wins(tree: Path) -> None:
    touch(tree, "etc/cloud/cloud.cfg.d/10-a.cfg", default_user_config("first"))
    touch(tree, "etc/cloud/cloud.cfg.d/50-b.cfg", default_user_config("second"))
    touch(tree, "etc/cloud/cloud.cfg.d/60-c.txt", default_user_config("ignored"))

    assert login_user(tree) == "second"


def test_a_config_file_that_is_not_yaml_is_skipped_as_cloud_init_does(
    tree: Path,
) -> None:
    touch(tree, "etc/cloud/cloud.cfg", default_user_config("ubuntu"))
    touch(tree, "etc/cloud/cloud.cfg.d/50-broken.cfg", "system_info: [unclosed\n")

    assert login_user(tree) == "ubuntu"


@pytest.mark.parametrize(
    ("release", "user"),
    [
        ('ID="amzn"\nNAME="Amazon Linux"\n', "ec2-user"),
        ("ID=ubuntu\nID_LIKE=debian\nNAME=Ubuntu\n", "ubuntu"),
        ('ID="rhel"\nNAME="Red Hat Enterprise Linux"\n', "ec2-user"),
        ('ID=rocky\nID_LIKE="rhel centos fedora"\n', "rocky"),
        ("ID=debian\n", "admin"),
        ("ID=mystery\nID_LIKE=ubuntu\n", "ubuntu"),
        ("ID=mystery\n", "ec2-user"),
    ],
)
def test_without_a_default_user_the_distributions_ec2_user_is_taken(
    tree: Path, release: str, user: str
) -> None:
    touch(tree, "etc/os-release", release)

    assert login_user(tree) == user
