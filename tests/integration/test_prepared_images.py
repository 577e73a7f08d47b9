"""An image a hook changed before it booted says so, and who changed it.

One run boots the demo image twice: as itself, and under another name that a
conftest's ``pytest_amipolicy_prepare_image`` changes (and a plugin's
implementation leaves alone). Only the changed one names who may have changed
it, in the JSON evidence and in the HTML report's environment table.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

CHANGED = "image:changed"

CONFTEST = f"""
def pytest_amipolicy_prepare_image(config, target, root):
    if target == {CHANGED!r}:
        (root / "etc/motd").write_text("changed by the test\\n")
"""

# Implements the hook and changes nothing: it is named only where something
# was changed.
IDLE_PLUGIN = """
def pytest_amipolicy_prepare_image(config, target, root):
    pass
"""


def test_only_the_image_a_hook_changed_names_the_hooks_that_may_have(
    debian_image: Path, tmp_path: Path
) -> None:
    (tmp_path / "conftest.py").write_text(CONFTEST)
    (tmp_path / "idle_preparer.py").write_text(IDLE_PLUGIN)
    (tmp_path / "changed").symlink_to(debian_image, target_is_directory=True)

    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-p",
            "no:cacheprovider",
            "-p",
            "idle_preparer",
            "--ami-image=demo",
            f"--ami-image={tmp_path / 'changed'}",
            "--ami-policy=SUDO",
            "--ami-evidence=e.json",
            "--html=report.html",
            "--self-contained-html",
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        env={
            **os.environ,
            "PYTHONPATH": f"{tmp_path}:{os.environ.get('PYTHONPATH', '')}",
        },
        timeout=300,
    )

    targets = json.loads((tmp_path / "e.json").read_text(encoding="utf-8"))["targets"]
    page = (tmp_path / "report.html").read_text(encoding="utf-8")
    assert run.returncode == pytest.ExitCode.OK, run.stdout[-3000:]
    assert targets[CHANGED]["prepared_by"] == (
        "conftest.py, idle_preparer (pytest_amipolicy_prepare_image)"
    )
    assert targets[CHANGED]["image_path"] == str(debian_image)
    assert "prepared_by" not in targets["image:demo"]
    assert page.count("Image changed before boot by") == 1
