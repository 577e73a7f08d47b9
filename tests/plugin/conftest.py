"""Fixtures for pytester runs of the plugin in this process."""

from __future__ import annotations

import os
from pathlib import Path

import pytest


def stand_in_tools(directory: Path, *names: str) -> Path:
    """Make ``directory`` hold executables of these names that do nothing."""
    directory.mkdir(exist_ok=True)
    for name in names:
        tool = directory / name
        tool.write_text("#!/bin/sh\nexit 1\n")
        tool.chmod(0o755)
    return directory


def release_tree(root: Path) -> Path:
    """Make ``root`` a tree that passes the checks made before a run.

    It names its release and has an init, sshd and cloud-init, as empty
    files: enough for a directory image to be accepted, not enough to boot.
    """
    for name in ("etc/os-release", "sbin/init", "usr/sbin/sshd", "usr/bin/cloud-init"):
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text("ID=debian\n" if name == "etc/os-release" else "")
    return root


@pytest.fixture
def boot_tools(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Make this process look like root with the boot tools on the PATH.

    Runs that only collect ``--ami-image`` targets never boot, so stand-ins
    for the tools let them run as any user.
    """
    tools = stand_in_tools(tmp_path / "boot-tools", "systemd-nspawn", "ip")

    monkeypatch.setenv("PATH", f"{tools}{os.pathsep}{os.environ.get('PATH', '')}")
    monkeypatch.setattr(os, "geteuid", lambda: 0)
