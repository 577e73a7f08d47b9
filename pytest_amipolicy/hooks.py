"""Hook specifications of pytest-amipolicy.

Implement them in a ``conftest.py`` or a plugin to change how targets are
reached or prepared. Provider hooks return the first non-``None`` answer; the
plugin ships the default implementation, so an override only answers when it
wants to.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest


@pytest.hookspec(firstresult=True)
def pytest_amipolicy_connect_address(
    config: pytest.Config, instance: dict[str, Any], target: str
) -> tuple[str, int] | None:
    """Return the (host, port) to reach a launched EC2 instance's admin port."""


@pytest.hookspec
def pytest_amipolicy_prepare_image(
    config: pytest.Config, target: str, root: Path
) -> None:
    """Change the writable root of a local image before it boots."""


@pytest.hookspec
def pytest_amipolicy_facts_gathered(
    config: pytest.Config, target: str, facts: Any
) -> None:
    """Inspect or extend the facts gathered from a target before policies read them."""
