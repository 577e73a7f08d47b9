"""The report of a Windows host: its architecture, pywinrm, the script and its sources.

The host is the fake WS-Management endpoint on loopback, reached the real way
(``--ami-host=winrm://...``, testinfra, pywinrm, NTLM over HTTPS).
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import importlib.resources
import json
import urllib.parse
from collections.abc import Iterator

import cryptography.x509  # noqa: F401  (see tests/functional/test_winrm_plugin.py)
import pytest

from tests.support.winrm_server import FakeWinRMEndpoint

PASSWORD = "Rq8;vT@4%nW/k?2#"
ARM_SERVER = {
    "os": {
        "caption": "Microsoft Windows Server 2022 Datacenter",
        "version": "10.0.20348",
        "architecture": "ARM 64-bit Processor",
        "processor_architecture": "ARM64",
    },
    "winlogon": {"auto_admin_logon": "1", "default_password": "set"},
}


@pytest.fixture
def windows_host() -> Iterator[FakeWinRMEndpoint]:
    with FakeWinRMEndpoint(ARM_SERVER, password=PASSWORD) as served:
        yield served


def run_windows(pytester: pytest.Pytester, endpoint: FakeWinRMEndpoint) -> str:
    """Check the host with every Windows policy; return its target label."""
    quoted = urllib.parse.quote(PASSWORD, safe="")
    pytester.runpytest_subprocess(
        "-p",
        "no:cacheprovider",
        "-p",
        "no:hypothesispytest",
        f"--ami-host=winrm://Administrator:{quoted}@127.0.0.1:{endpoint.port}"
        "?no_verify_ssl=true",
        "--ami-policy=WIN-*",
        "--ami-evidence=evidence.json",
        "--html=report.html",
        "--self-contained-html",
    )
    return f"winrm://Administrator@127.0.0.1:{endpoint.port}"


def test_a_windows_host_has_its_architecture_and_pywinrm_in_the_evidence(
    pytester: pytest.Pytester, windows_host: FakeWinRMEndpoint
) -> None:
    label = run_windows(pytester, windows_host)

    document = json.loads((pytester.path / "evidence.json").read_text())
    page = (pytester.path / "report.html").read_text()
    assert document["targets"][label]["architecture"] == "arm64"
    assert document["targets"][label]["platform"] == "windows"
    version = importlib.metadata.version("pywinrm")
    assert document["environment"]["pywinrm"] == version
    # The environment table's data, as pytest-html stores it in the page.
    data = page.replace("&#34;", '"')
    assert '"Architecture": "arm64"' in data
    assert f'"pywinrm": "{version}"' in data


def test_a_windows_host_report_carries_the_powershell_script_and_its_digest(
    pytester: pytest.Pytester, windows_host: FakeWinRMEndpoint
) -> None:
    script = (
        importlib.resources.files("pytest_amipolicy.facts") / "windows.ps1"
    ).read_bytes()

    run_windows(pytester, windows_host)

    document = json.loads((pytester.path / "evidence.json").read_text())
    assert document["scripts"] == [
        {
            "platform": "windows",
            "name": "pytest_amipolicy/facts/windows.ps1",
            "sha256": hashlib.sha256(script).hexdigest(),
            "lines": len(script.decode().splitlines()),
        }
    ]
    assert (
        hashlib.sha256(script).hexdigest()
        in (pytester.path / "report.html").read_text()
    )


def test_windows_evidence_names_the_registry_key_it_read(
    pytester: pytest.Pytester, windows_host: FakeWinRMEndpoint
) -> None:
    run_windows(pytester, windows_host)

    document = json.loads((pytester.path / "evidence.json").read_text())
    secrets = next(r for r in document["results"] if r["policy"] == "WIN-SECRETS")
    assert secrets["verdict"] == "fail"
    assert any(
        "  at HKLM\\SOFTWARE\\Microsoft\\Windows NT\\CurrentVersion\\Winlogon" in block
        for block in secrets["evidence"]
    )


def test_a_linux_only_run_does_not_name_pywinrm(
    scenario_dir: pytest.Pytester,
) -> None:
    from tests.report.conftest import run_report

    run_report(scenario_dir, "--ami-evidence=evidence.json")

    document = json.loads((scenario_dir.path / "evidence.json").read_text())
    assert "pywinrm" not in document["environment"]
