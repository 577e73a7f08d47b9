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
    """Make ``root`` a tree that names its release, as images are read before a run.

    Enough to pass the checks made before the run; not enough to boot.
    """
    (root / "etc").mkdir(parents=True, exist_ok=True)
    (root / "etc/os-release").write_text("ID=debian\n")
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
