"""The fact script, its transfer through cmd.exe, and the WinRM plumbing."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
import winrm

from pytest_amipolicy.errors import TargetError
from pytest_amipolicy.facts import Facts
from pytest_amipolicy.facts import windows as windows_facts
from pytest_amipolicy.policies import windows as policies
from pytest_amipolicy.targets.winrm import (
    open_winrm_host,
    redacted,
    run_on,
    winrm_hostspec,
)
from pytest_amipolicy.verdicts import Verdict
from tests.support.winrm_server import FakeWinRMEndpoint

PASSWORD = "Launch;Key%Pass@1"


def _strip_strings(script: str) -> str:
    """Drop comments and quoted strings, whose brackets need not balance."""
    script = re.sub(r"(?m)^\s*#.*$", "", script)
    script = re.sub(r"'[^']*'", "''", script)
    return re.sub(r'"[^"]*"', '""', script)


def test_the_fact_script_is_ascii_so_any_console_code_page_reads_it() -> None:
    assert windows_facts.SCRIPT.isascii()


def test_the_fact_script_brackets_balance() -> None:
    code = _strip_strings(windows_facts.SCRIPT)
    pairs = {")": "(", "}": "{", "]": "["}
    stack: list[str] = []

    for char in code:
        if char in "({[":
            stack.append(char)
        elif char in pairs:
            assert stack and stack.pop() == pairs[char], f"unbalanced {char}"

    assert stack == []


def test_the_fact_script_reports_every_documented_key() -> None:
    keys = {
        "os", "local_users", "groups", "services", "paths", "launch", "rdp",
        "winlogon", "unattend_passwords", "saved_credentials", "errors",
    }  # fmt: skip

    assigned = set(re.findall(r"\$R\.(\w+)\s*=", windows_facts.SCRIPT))
    assigned |= set(
        re.findall(r"\$R = @\{ schema = 1; (errors) =", windows_facts.SCRIPT)
    )

    assert keys <= assigned


def test_the_fact_script_never_prints_the_default_password_value() -> None:
    script = windows_facts.SCRIPT

    assert "$w.DefaultPassword }" not in script
    assert "default_password = $d" in script
    assert "adminPassword " not in script


def test_the_fact_command_fits_on_a_cmd_exe_command_line() -> None:
    command = windows_facts.encode_script(windows_facts.SCRIPT)

    assert len(command) <= windows_facts.CMD_LINE_LIMIT
    assert re.fullmatch(r"[A-Za-z0-9+/=_&. -]+", command)


def test_the_fact_command_carries_the_script_unchanged() -> None:
    command = windows_facts.encode_script(windows_facts.SCRIPT)

    assert windows_facts.decode_command(command) == windows_facts.SCRIPT


def test_a_failed_fact_script_keeps_its_error_in_the_section() -> None:
    sections = windows_facts.gather(lambda command: (1, "", "Access is denied."))

    section = sections["windows"]
    assert section.status == 1
    assert section.output == "Access is denied."
    assert "windows.ps1" in section.command


def test_a_fact_script_printing_nothing_is_not_a_success() -> None:
    section = windows_facts.gather(lambda command: (0, "", ""))["windows"]

    assert not section.ok


@pytest.mark.parametrize(
    "given, expected",
    [
        ("10.0.0.5", "winrm://Administrator:pw@10.0.0.5:5986"),
        (
            "10.0.0.5:5985?no_ssl=true",
            "winrm://Administrator:pw@10.0.0.5:5985?no_ssl=true",
        ),
        ("winrm://bob@host:1234", "winrm://bob:pw@host:1234"),
        ("https://host/wsman", "winrm://Administrator:pw@host:5986"),
        ("http://host/wsman", "winrm://Administrator:pw@host:5985?no_ssl=true"),
    ],
)
def test_winrm_addresses_become_testinfra_host_specs(given: str, expected: str) -> None:
    assert winrm_hostspec(given, password="pw") == expected


def test_a_password_full_of_punctuation_survives_the_host_spec() -> None:
    from testinfra.backend.base import BaseBackend

    spec = winrm_hostspec("host", password="p@ss:w/rd?%;#")

    parsed = BaseBackend.parse_hostspec(spec.split("://", 1)[1].split("?")[0])
    assert parsed.password == "p@ss:w/rd?%;#"
    assert parsed.name == "host"
    assert "p@ss" not in redacted(spec)


def test_a_winrm_address_without_a_password_is_refused() -> None:
    with pytest.raises(TargetError, match="no WinRM password"):
        winrm_hostspec("host")


def test_an_address_that_is_not_winrm_is_refused() -> None:
    with pytest.raises(TargetError, match="not a WinRM address"):
        winrm_hostspec("ssh://host", password="pw")


@pytest.fixture
def endpoint() -> Iterator[FakeWinRMEndpoint]:
    with FakeWinRMEndpoint({}, password=PASSWORD) as served:
        yield served


def test_commands_run_over_ntlm_and_https_on_the_fake_endpoint(
    endpoint: FakeWinRMEndpoint,
) -> None:
    host = open_winrm_host(endpoint.address, password=PASSWORD, verify_ssl=False)
    run = run_on(host)

    assert run("echo hello") == (0, "hello\r\n", "")
    assert run("hostname")[1].strip() == "EC2AMAZ-TEST01"


def test_an_unknown_command_fails_as_cmd_exe_would(
    endpoint: FakeWinRMEndpoint,
) -> None:
    run = run_on(open_winrm_host(endpoint.address, password=PASSWORD, verify_ssl=False))

    status, stdout, stderr = run("frobnicate now")

    assert status == 9009
    assert "not recognized" in stderr


def test_a_wrong_password_is_rejected_by_the_fake_endpoint(
    endpoint: FakeWinRMEndpoint,
) -> None:
    host = open_winrm_host(endpoint.address, password="wrong", verify_ssl=False)

    with pytest.raises(winrm.exceptions.InvalidCredentialsError):
        host.run("echo hello")


def test_the_fake_certificate_is_refused_when_verification_is_on(
    endpoint: FakeWinRMEndpoint,
) -> None:
    host = open_winrm_host(endpoint.address, password=PASSWORD, verify_ssl=True)

    with pytest.raises(Exception, match="(?i)certificate"):
        host.run("echo hello")


def test_basic_authentication_over_plain_http_works_with_pywinrm() -> None:
    with FakeWinRMEndpoint({}, password=PASSWORD, tls=False) as served:
        session = winrm.Session(
            served.url, auth=("Administrator", PASSWORD), transport="basic"
        )

        response = session.run_cmd("echo", ["plain"])

    assert response.status_code == 0
    assert response.std_out == b"plain\r\n"


def test_an_unreadable_group_reaches_the_policy_as_an_error_over_winrm() -> None:
    machine = {"groups": {"S-1-5-32-555": {"error": "Failed to compare two elements"}}}

    with FakeWinRMEndpoint(machine, password=PASSWORD) as served:
        host = open_winrm_host(served.address, password=PASSWORD, verify_ssl=False)
        sections = windows_facts.gather(run_on(host))
    facts = Facts(target="t", platform="windows", sections=sections)

    assert policies.check_rdp_users(facts).verdict is Verdict.ERROR
    assert policies.check_guest(facts).verdict is Verdict.PASS
