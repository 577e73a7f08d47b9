"""Fixtures for pytester runs of the plugin in this process."""

from __future__ import annotations

import os
from pathlib import Path

import pytest


@pytest.fixture
def boot_tools(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Make this process look like root with systemd-nspawn on the PATH.

    Runs that only collect ``--ami-image`` targets never boot, so a stand-in
    for the tools lets them run as any user.
    """
    tools = tmp_path / "boot-tools"
    tools.mkdir()
    nspawn = tools / "systemd-nspawn"
    nspawn.write_text("#!/bin/sh\nexit 1\n")
    nspawn.chmod(0o755)

    monkeypatch.setenv("PATH", f"{tools}{os.pathsep}{os.environ.get('PATH', '')}")
    monkeypatch.setattr(os, "geteuid", lambda: 0)
