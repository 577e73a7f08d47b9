"""--ami-image without what booting needs is one usage error before the run."""

from __future__ import annotations

import os
import tarfile
from pathlib import Path

import pytest

from tests.plugin.conftest import release_tree, stand_in_tools


@pytest.fixture
def tree(pytester: pytest.Pytester) -> Path:
    return release_tree(pytester.path / "rootfs")


def test_an_image_without_root_is_a_usage_error_saying_so(
    pytester: pytest.Pytester, tree: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(os, "geteuid", lambda: 1000)

    result = pytester.runpytest(f"--ami-image={tree}")

    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        [f"ERROR: --ami-image='{tree}' needs root: *run pytest as root*"]
    )


@pytest.mark.parametrize(
    ("present", "missing", "package"),
    [
        ((), "systemd-nspawn", "systemd-container"),
        (("systemd-nspawn",), "ip", "iproute2"),
    ],
)
def test_an_image_without_a_boot_tool_is_a_usage_error_naming_its_package(
    pytester: pytest.Pytester,
    tree: Path,
    monkeypatch: pytest.MonkeyPatch,
    present: tuple[str, ...],
    missing: str,
    package: str,
) -> None:
    monkeypatch.setattr(os, "geteuid", lambda: 0)
    monkeypatch.setenv("PATH", str(stand_in_tools(pytester.path / "bin", *present)))

    result = pytester.runpytest(f"--ami-image={tree}")

    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        [f"ERROR: --ami-image='{tree}' needs {missing}, *apt-get install {package}*"]
    )


def test_the_demo_without_a_built_image_or_mmdebstrap_says_what_to_install(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(os, "geteuid", lambda: 0)
    tools = stand_in_tools(pytester.path / "bin", "systemd-nspawn", "ip")
    monkeypatch.setenv("PATH", str(tools))
    monkeypatch.setenv("AMIPOLICY_CACHE", str(pytester.path / "empty-cache"))

    result = pytester.runpytest("--ami-image=demo")

    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["ERROR: --ami-image=demo *needs mmdebstrap*"])


@pytest.mark.usefixtures("boot_tools")
def test_an_image_that_cannot_be_opened_is_reported_under_its_label(
    pytester: pytest.Pytester, tree: Path
) -> None:
    # An archive is only listed before the run: that it has no init shows when
    # it is extracted.
    (tree / "sbin/init").unlink()
    archive = pytester.path / "rootfs.tar"
    with tarfile.open(archive, "w") as tar:
        tar.add(tree, arcname=".")

    result = pytester.runpytest(f"--ami-image={archive}", "--ami-policy=SUDO")

    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.stdout.fnmatch_lines(
        [f"SUDO: image:rootfs.tar: image {archive} has no init (sbin/init or *"]
    )
    assert "Traceback" not in result.stdout.str()


@pytest.mark.usefixtures("boot_tools")
def test_keep_with_an_image_warns_that_it_applies_to_amis_only(
    pytester: pytest.Pytester, tree: Path
) -> None:
    result = pytester.runpytest("--collect-only", f"--ami-image={tree}", "--ami-keep")

    result.stdout.fnmatch_lines(["*--ami-keep applies to --ami only*"])
    assert result.stdout.str().count("--ami-keep applies") == 1
    assert "launched instances are left running" not in result.stdout.str()


@pytest.mark.usefixtures("boot_tools")
def test_a_tree_that_would_never_answer_ssh_is_refused_before_the_run(
    pytester: pytest.Pytester, tree: Path
) -> None:
    (tree / "usr/bin/cloud-init").unlink()

    result = pytester.runpytest(f"--ami-image={tree}", "--ami-policy=SUDO")

    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([f"ERROR: --ami-image='{tree}' has no cloud-init*"])
    assert result.duration < 30
