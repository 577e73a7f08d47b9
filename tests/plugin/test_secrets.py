"""A WinRM spec carries a password: it must never be shown or written anywhere."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from pytest_amipolicy.errors import TargetError
from pytest_amipolicy.targets.winrm import open_winrm_host

PASSWORD = "Sup3rS3cret"


def everything_written(result: pytest.RunResult, directory: Path) -> str:
    """The run's terminal output and every file it wrote."""
    files = [path for path in directory.rglob("*") if path.is_file()]
    written = [path.read_text(errors="replace") for path in files]
    return "\n".join([result.stdout.str(), result.stderr.str(), *written])


@pytest.mark.parametrize(
    "spec",
    [
        f"winrm://Administrator:{PASSWORD}@192.0.2.10?no_ssl=maybe",
        f"winrm://Administrator:{PASSWORD}@192.0.2.10:0",
        f"winrm://Administrator:{PASSWORD}@192.0.2.10?transport=basic",
        f"winrm://Administrator:{PASSWORD}/x@192.0.2.10",
        f"winrm://Administrator:{PASSWORD}@[192.0.2.10",
    ],
)
def test_a_bad_winrm_spec_is_refused_without_showing_its_password(
    pytester: pytest.Pytester, spec: str
) -> None:
    result = pytester.runpytest(f"--ami-host={spec}")

    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["ERROR: --ami-host='winrm://Administrator:**@*"])
    assert PASSWORD not in result.stdout.str() + result.stderr.str()


def test_an_unreachable_windows_host_leaves_its_password_out_of_every_output(
    pytester: pytest.Pytester,
) -> None:
    # Port 1 on loopback refuses at once.
    spec = f"winrm://Administrator:{PASSWORD}@127.0.0.1:1?no_ssl=true"

    result = pytester.runpytest(
        f"--ami-host={spec}",
        "--ami-policy=WIN-GUEST,WIN-RDP",
        "--ami-evidence=evidence.json",
        "--junitxml=junit.xml",
        "--html=report.html",
        "-rA",
    )

    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.stdout.fnmatch_lines(
        ["*WIN-GUEST: winrm://Administrator@127.0.0.1:1: cannot connect to WinRM*"]
    )
    for name in ("evidence.json", "junit.xml", "report.html"):
        assert (pytester.path / name).exists(), name
    assert PASSWORD not in everything_written(result, pytester.path)


def test_a_windows_host_without_pywinrm_is_a_usage_error_without_the_password(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "winrm", None)

    result = pytester.runpytest(f"--ami-host=winrm://Administrator:{PASSWORD}@h")

    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        ["ERROR: --ami-host='winrm://Administrator:***@h': WinRM targets need pywinrm*"]
    )
    assert PASSWORD not in result.stdout.str() + result.stderr.str()


def test_opening_a_windows_host_without_pywinrm_names_it_without_the_password(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(sys.modules, "winrm", None)

    with pytest.raises(TargetError, match="need pywinrm") as raised:
        open_winrm_host(f"winrm://Administrator:{PASSWORD}@h")

    assert PASSWORD not in str(raised.value)
    assert raised.value.target == "winrm://Administrator:***@h"
