"""A login user other than the image's cloud-init default user is refused.

The launch key goes to that user, as on EC2; logged in as anyone else (a user
the seed would create at boot), SUDO and AUTHORIZED-KEYS judge a machine no
buyer gets. A directory is read before the run; an archive when it is opened.
"""

from __future__ import annotations

import tarfile
from pathlib import Path

import pytest

from pytest_amipolicy.imaging.build import recipe_hash
from tests.plugin.conftest import release_tree

pytestmark = pytest.mark.usefixtures("boot_tools")

DEFAULT_ADMIN = "system_info:\n  default_user:\n    name: admin\n"
# Enough for the image to be opened (and refused) without booting it.
OPENABLE_FILES = (
    "lib/systemd/systemd",
    "lib/systemd/system/ssh.service",
    "usr/sbin/sshd",
    "usr/bin/cloud-init",
)
SSH_WANTED = "etc/systemd/system/multi-user.target.wants/ssh.service"


def tree_with_default_user(root: Path, config: str = DEFAULT_ADMIN) -> Path:
    release_tree(root)
    (root / "etc/cloud").mkdir(parents=True)
    (root / "etc/cloud/cloud.cfg").write_text(config)
    return root


@pytest.fixture
def tree(pytester: pytest.Pytester) -> Path:
    return tree_with_default_user(pytester.path / "rootfs")


def test_another_user_than_the_trees_default_is_a_usage_error_naming_both(
    pytester: pytest.Pytester, tree: Path
) -> None:
    result = pytester.runpytest(
        f"--ami-image={tree}", "--ami-user=nosuchuser", "--ami-policy=SSH-ROOT,SUDO"
    )

    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        [
            f"ERROR: --ami-image='{tree}': --ami-user='nosuchuser' is not the "
            "image's cloud-init default user 'admin', * drop --ami-user, or use "
            "--ami-user=admin."
        ]
    )


def test_the_ini_key_is_named_when_the_user_came_from_it(
    pytester: pytest.Pytester, tree: Path
) -> None:
    pytester.makeini("[pytest]\namipolicy_user = ec2-user\n")

    result = pytester.runpytest(f"--ami-image={tree}")

    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        [
            "ERROR: *: amipolicy_user='ec2-user' is not the image's cloud-init "
            "default user 'admin', * remove amipolicy_user from the ini file, or "
            "set amipolicy_user = admin."
        ]
    )


def test_a_later_drop_in_names_the_default_user_that_counts(
    pytester: pytest.Pytester, tree: Path
) -> None:
    (tree / "etc/cloud/cloud.cfg.d").mkdir()
    (tree / "etc/cloud/cloud.cfg.d/95-vendor.cfg").write_text(
        "system_info:\n  default_user:\n    name: ubuntu\n"
    )

    result = pytester.runpytest(f"--ami-image={tree}", "--ami-user=admin")

    result.stderr.fnmatch_lines(
        ["ERROR: *default user 'ubuntu'*use --ami-user=ubuntu."]
    )


@pytest.mark.parametrize(
    "config",
    [DEFAULT_ADMIN, "datasource_list: [NoCloud]\n"],
    ids=["the default user itself", "an image naming no default user"],
)
def test_the_given_user_is_used_when_it_is_the_default_or_there_is_none(
    pytester: pytest.Pytester, config: str
) -> None:
    tree = tree_with_default_user(pytester.path / "rootfs", config)

    result = pytester.runpytest(
        "--collect-only", "-q", f"--ami-image={tree}", "--ami-user=admin"
    )

    assert result.ret == pytest.ExitCode.OK, result.stderr.str()


def test_the_demo_image_once_built_is_read_before_the_run(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    cache = pytester.path / "cache"
    tree_with_default_user(cache / recipe_hash() / "rootfs")
    monkeypatch.setenv("AMIPOLICY_CACHE", str(cache))

    result = pytester.runpytest(
        "--ami-image=demo", "--ami-user=nosuchuser", "--ami-policy=SSH-ROOT,SUDO"
    )

    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        ["ERROR: --ami-image='demo': --ami-user='nosuchuser' is not * 'admin'*"]
    )


def test_an_archive_is_refused_when_opened_in_one_line_before_any_boot(
    pytester: pytest.Pytester, tree: Path
) -> None:
    for name in OPENABLE_FILES:
        (tree / name).parent.mkdir(parents=True, exist_ok=True)
        (tree / name).touch()
    (tree / "sbin/init").unlink()
    (tree / "sbin/init").symlink_to("/lib/systemd/systemd")
    (tree / SSH_WANTED).parent.mkdir(parents=True)
    (tree / SSH_WANTED).symlink_to("/lib/systemd/system/ssh.service")
    archive = pytester.path / "tree.tar"
    with tarfile.open(archive, "w") as tar:
        tar.add(tree, arcname=".")

    result = pytester.runpytest(
        f"--ami-image={archive}", "--ami-user=nosuchuser", "--ami-policy=SSH-ROOT,SUDO"
    )

    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.stdout.fnmatch_lines(
        [
            "SSH-ROOT: image:tree.tar: --ami-user='nosuchuser' is not the image's "
            "cloud-init default user 'admin', * drop --ami-user, or use "
            "--ami-user=admin",
        ]
    )
    assert "booting" not in result.stdout.str()
