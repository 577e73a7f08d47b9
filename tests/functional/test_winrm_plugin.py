"""``pytest --ami-host=winrm://...`` from an empty directory, as a seller runs it.

The machine is the fake WS-Management endpoint on loopback, reached through
the real chain: the plugin's options, the host target, testinfra's winrm
backend, pywinrm, NTLM over HTTPS. Verdicts are read from the evidence JSON.
"""

from __future__ import annotations

import json
import socket
import urllib.parse
from collections.abc import Iterator
from typing import Any

import cryptography.x509  # noqa: F401
import pytest

from tests.support.winrm_server import FakeWinRMEndpoint

# No ":" in it: the fake endpoint's NTLM account file cannot hold one.
PASSWORD = "Rq8;vT@4%nW/k?2#"
SERVER_2022 = {
    "os": {
        "caption": "Microsoft Windows Server 2022 Datacenter",
        "version": "10.0.20348",
    }
}
CARELESS = {
    **SERVER_2022,
    "local_users": [
        {"name": "Administrator", "sid": "S-1-5-21-7-8-9-500", "enabled": True},
        {"name": "Guest", "sid": "S-1-5-21-7-8-9-501", "enabled": True},
        {"name": "helpdesk", "sid": "S-1-5-21-7-8-9-1001", "enabled": True},
    ],
    "groups": {"S-1-5-32-555": ["helpdesk"]},
}
WIN_POLICIES = (
    "WIN-LAUNCH-AGENT",
    "WIN-GUEST",
    "WIN-RDP-USERS",
    "WIN-ADMIN-PASSWORD",
    "WIN-SECRETS",
    "WIN-RDP",
)


def host_spec(port: int, password: str = PASSWORD, options: str = "") -> str:
    quoted = urllib.parse.quote(password, safe="")
    query = options or "no_verify_ssl=true"
    return f"winrm://Administrator:{quoted}@127.0.0.1:{port}?{query}"


# pytester drops the modules first imported during a test when it ends; the
# fake endpoint's certificate code must not be among them, because the x509
# classes imported again no longer match the ones cryptography's core caches.
# Hence the import above, and a fresh interpreter for each run.


def check(pytester: pytest.Pytester, spec: str, *args: str) -> pytest.RunResult:
    return pytester.runpytest_subprocess(
        "-p", "no:cacheprovider", "-p", "no:hypothesispytest", f"--ami-host={spec}",
        *args,
    )  # fmt: skip


def verdicts(pytester: pytest.Pytester) -> dict[str, str]:
    document = json.loads((pytester.path / "evidence.json").read_text())
    return {row["policy"]: row["verdict"] for row in document["results"]}


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture
def compliant() -> Iterator[FakeWinRMEndpoint]:
    with FakeWinRMEndpoint(SERVER_2022, password=PASSWORD) as served:
        yield served


def test_a_compliant_windows_host_passes_every_windows_policy(
    pytester: pytest.Pytester, compliant: FakeWinRMEndpoint
) -> None:
    result = check(pytester, host_spec(compliant.port), "--ami-evidence=evidence.json")

    found = verdicts(pytester)
    assert result.ret == pytest.ExitCode.OK
    assert {policy: found[policy] for policy in WIN_POLICIES} == dict.fromkeys(
        WIN_POLICIES, "pass"
    )
    assert found["SSH-PASSWORD"] == "skip"
    assert found["AMI-ARCH"] == "skip"
    assert compliant.open_shells == 0


def test_a_careless_windows_host_fails_the_guest_and_rdp_users_policies(
    pytester: pytest.Pytester,
) -> None:
    with FakeWinRMEndpoint(CARELESS, password=PASSWORD) as served:
        result = check(
            pytester,
            host_spec(served.port),
            "--ami-policy=WIN-*",
            "--ami-evidence=evidence.json",
        )

    assert result.ret == pytest.ExitCode.TESTS_FAILED
    assert verdicts(pytester) == {
        "WIN-LAUNCH-AGENT": "pass",
        "WIN-GUEST": "fail",
        "WIN-RDP-USERS": "fail",
        "WIN-ADMIN-PASSWORD": "pass",
        "WIN-SECRETS": "pass",
        "WIN-RDP": "pass",
    }
    result.stdout.fnmatch_lines(
        ["WIN-RDP-USERS fail on *", "  - helpdesk (S-1-5-21-7-8-9-1001)"]
    )


def test_the_password_is_in_no_output_and_no_evidence(
    pytester: pytest.Pytester, compliant: FakeWinRMEndpoint
) -> None:
    result = check(
        pytester,
        host_spec(compliant.port),
        "-v",
        "-rA",
        "--ami-evidence=evidence.json",
    )

    evidence = (pytester.path / "evidence.json").read_text()
    quoted = urllib.parse.quote(PASSWORD, safe="")
    for text in (result.stdout.str(), result.stderr.str(), evidence):
        assert PASSWORD not in text
        assert quoted not in text
    result.stdout.fnmatch_lines([f"*winrm://Administrator@127.0.0.1:{compliant.port}*"])


@pytest.mark.parametrize(
    ("case", "expected"),
    [
        ("wrong password", "rejected the password of Administrator"),
        ("closed port", "cannot connect to WinRM at 127.0.0.1:{port} (*refused)"),
        ("untrusted certificate", "TLS certificate*is not trusted*no_verify_ssl=true"),
    ],
)
def test_a_host_that_cannot_be_logged_into_is_one_readable_line_per_check(
    pytester: pytest.Pytester,
    compliant: FakeWinRMEndpoint,
    case: str,
    expected: str,
) -> None:
    specs: dict[str, Any] = {
        "wrong password": (compliant.port, "Wr0ng;Pass", ""),
        "closed port": (closed_port(), PASSWORD, ""),
        "untrusted certificate": (compliant.port, PASSWORD, "read_timeout_sec=30"),
    }
    port, password, options = specs[case]

    result = check(
        pytester,
        host_spec(port, password, options),
        "--ami-policy=WIN-*",
        "--ami-evidence=evidence.json",
    )

    label = f"winrm://Administrator@127.0.0.1:{port}"
    output = result.stdout.str() + result.stderr.str()
    assert set(verdicts(pytester).values()) == {"error"}
    # The first check shows the reason; the others refer to it in one line.
    result.stdout.fnmatch_lines(
        [
            f"WIN-LAUNCH-AGENT: {label}: *{expected.format(port=port)}*",
            f"WIN-GUEST: not checked, {label} could not be opened *WIN-LAUNCH-AGENT*",
        ]
    )
    assert "Traceback" not in output
    assert password not in output
    assert urllib.parse.quote(password, safe="") not in output
