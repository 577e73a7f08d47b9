"""Fixtures for integration tests on real images booted on this machine.

Other integration tests may use:

- ``debian_image``: path of the cached, pristine Debian 12 test image tree
  (built on first use, about a minute; never write into it, boot it with
  :func:`pytest_amipolicy.imaging.boot.booted` and lay faults in ``prepare``);
- ``launch_key``: a fresh ed25519 key pair for the session, as the key pair an
  EC2 launch would use (``.public`` for ``booted``, ``.pkey`` for paramiko).

Every test in this directory is skipped, with the reason, unless it runs as
root on a machine with systemd-nspawn.
"""

from __future__ import annotations

import io
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

import paramiko
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from pytest_amipolicy.imaging.build import build_debian_image


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "integration: needs root and systemd-nspawn; boots real images"
    )


@pytest.fixture(autouse=True)
def _needs_root_and_nspawn() -> None:
    if os.geteuid() != 0:
        pytest.skip("integration tests boot containers and need root")
    if shutil.which("systemd-nspawn") is None:
        pytest.skip("integration tests need systemd-nspawn (systemd-container)")


@dataclass(frozen=True)
class LaunchKey:
    """An SSH key pair standing in for the key pair of an EC2 launch."""

    public: str
    pkey: paramiko.PKey


@pytest.fixture(scope="session")
def launch_key() -> LaunchKey:
    private = Ed25519PrivateKey.generate()
    public = private.public_key().public_bytes(
        serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH
    )
    pem = private.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.OpenSSH,
        serialization.NoEncryption(),
    )

    return LaunchKey(
        public=public.decode() + " amipolicy-launch-key",
        pkey=paramiko.Ed25519Key.from_private_key(io.StringIO(pem.decode())),
    )


@pytest.fixture(scope="session")
def debian_image(request: pytest.FixtureRequest) -> Path:
    if os.geteuid() != 0 or shutil.which("mmdebstrap") is None:
        pytest.skip("building the Debian test image needs root and mmdebstrap")

    reporter = request.config.pluginmanager.get_plugin("terminalreporter")

    def progress(message: str) -> None:
        if reporter is not None:
            reporter.write_line(message)

    return build_debian_image(progress=progress)
