"""Every target gets a label of its own: none is silently merged into another."""

from __future__ import annotations

import pytest

from tests.plugin.conftest import release_tree


@pytest.mark.usefixtures("boot_tools")
def test_two_images_of_one_name_are_two_targets_told_apart_by_their_folders(
    pytester: pytest.Pytester,
) -> None:
    for folder in ("a", "b"):
        release_tree(pytester.path / folder / "rootfs")

    result = pytester.runpytest(
        "--collect-only",
        "-q",
        "--ami-image=a/rootfs",
        "--ami-image=b/rootfs",
        "--ami-policy=SUDO",
    )

    result.stdout.fnmatch_lines(
        [
            "amipolicy::policy[[]image:a/rootfs-SUDO[]]",
            "amipolicy::policy[[]image:b/rootfs-SUDO[]]",
            "2 tests collected*",
        ]
    )


@pytest.mark.usefixtures("boot_tools")
def test_images_of_different_names_keep_their_short_labels(
    pytester: pytest.Pytester,
) -> None:
    for name in ("web", "db"):
        release_tree(pytester.path / "images" / name)

    result = pytester.runpytest(
        "--collect-only", "-q", "--ami-image=images/web", "--ami-image=images/db"
    )

    assert "image:web-SUDO" in result.stdout.str()
    assert "image:db-SUDO" in result.stdout.str()


@pytest.mark.usefixtures("boot_tools")
def test_one_image_named_in_two_spellings_is_a_usage_error(
    pytester: pytest.Pytester,
) -> None:
    release_tree(pytester.path / "a" / "rootfs")

    result = pytester.runpytest("--ami-image=a/rootfs", "--ami-image=./a/rootfs/")

    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        [
            "ERROR: --ami-image='a/rootfs' and --ami-image='./a/rootfs/' name the "
            "same target (image:rootfs); give it once."
        ]
    )


def test_one_host_with_two_keys_is_a_usage_error(pytester: pytest.Pytester) -> None:
    for name in ("one", "two"):
        (pytester.path / name).write_text("not really a key\n")

    result = pytester.runpytest(
        "--ami-host=ssh://admin@192.0.2.10?ssh_identity_file=one",
        "--ami-host=ssh://admin@192.0.2.10?ssh_identity_file=two",
    )

    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        ["ERROR: *name the same target (ssh://admin@192.0.2.10); give it once."]
    )


def test_two_passwords_for_one_windows_host_are_refused_without_showing_them(
    pytester: pytest.Pytester,
) -> None:
    result = pytester.runpytest(
        "--ami-host=winrm://Administrator:Sup3rS3cret@192.0.2.10",
        "--ami-host=winrm://Administrator:0therS3cret@192.0.2.10",
    )

    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        [
            "ERROR: --ami-host='winrm://Administrator:***@192.0.2.10' and *"
            "(winrm://Administrator@192.0.2.10); give it once."
        ]
    )
    assert "S3cret" not in result.stdout.str() + result.stderr.str()
