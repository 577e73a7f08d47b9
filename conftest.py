"""The project's own test configuration (not part of the installed plugin)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

pytest_plugins = ["pytester"]


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "integration: boots real images; needs root and systemd-nspawn."
    )
    config.addinivalue_line(
        "markers", "slow: takes minutes (package downloads, full scans)."
    )


def pytest_collection_modifyitems(
    config: pytest.Config, items: list[pytest.Item]
) -> None:
    # Booting containers needs root and systemd-nspawn; elsewhere the
    # integration tier is skipped with the reason instead of failing.
    if os.geteuid() == 0 and os.path.exists("/usr/bin/systemd-nspawn"):
        return

    skip = pytest.mark.skip(reason="integration tests need root and systemd-nspawn")
    for item in items:
        if "integration" in item.keywords:
            item.add_marker(skip)


def pytest_ignore_collect(collection_path: Path, config: pytest.Config) -> bool | None:
    # `pytest --ami-image=demo` from the repository root checks the target only;
    # the project's own tests run when they are named, as in `pytest tests`.
    named_a_target = any(
        config.getoption(option) for option in ("ami", "ami_host", "ami_image")
    )
    if named_a_target and config.args_source is not pytest.Config.ArgsSource.ARGS:
        tests = config.rootpath / "tests"
        if collection_path == tests or tests in collection_path.parents:
            return True
    return None
