"""Every Windows case, served by a fake WinRM endpoint and checked end to end.

The path is the real one: testinfra's winrm backend, pywinrm, NTLM over HTTPS
to the endpoint on loopback, the fact script's JSON, ``windows.gather``, then
the policy checks. The endpoint answers the fact script from the described
state without running it, so the script itself is parsed here too: by
PowerShell's own parser where ``pwsh`` is installed, and by the tree-sitter
PowerShell grammar where that is.
"""

from __future__ import annotations

import importlib.util
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from pytest_amipolicy.facts import Facts
from pytest_amipolicy.facts import windows as windows_facts
from pytest_amipolicy.policies import windows as windows_policies
from pytest_amipolicy.targets.winrm import open_winrm_host, run_on
from tests.support.cases import Case, cases_dir, load_cases
from tests.support.winrm_server import FakeWinRMEndpoint

CHECKS = {
    "WIN-LAUNCH-AGENT": windows_policies.check_launch_agent,
    "WIN-GUEST": windows_policies.check_guest,
    "WIN-RDP-USERS": windows_policies.check_rdp_users,
    "WIN-ADMIN-PASSWORD": windows_policies.check_admin_password,
    "WIN-SECRETS": windows_policies.check_secrets,
    "WIN-RDP": windows_policies.check_rdp,
}


CASES = [pytest.param(case, id=case.id) for case in load_cases("windows")]


def test_the_windows_cases_are_found() -> None:
    assert CASES, f"no Windows case in {cases_dir()}"


@pytest.mark.parametrize("case", CASES)
def test_windows_case_gets_its_expected_verdicts_over_winrm(
    case: Case,
) -> None:
    with FakeWinRMEndpoint(case.machine) as endpoint:
        host = open_winrm_host(
            endpoint.address,
            user=endpoint.user,
            password=endpoint.password,
            verify_ssl=False,
        )
        sections = windows_facts.gather(run_on(host))
        actions = endpoint.actions
        open_shells = endpoint.open_shells

    facts = Facts(target=case.id, platform="windows", sections=sections)
    verdicts = {
        policy_id: CHECKS[policy_id](facts).verdict.value for policy_id in case.expect
    }

    assert verdicts == case.expect
    assert actions[:3] == ["Create", "Command", "Receive"]
    assert actions[-2:] == ["Signal", "Delete"]
    assert open_shells == 0


PWSH = shutil.which("pwsh")


@pytest.mark.skipif(
    PWSH is None,
    reason="needs PowerShell (pwsh), which neither Debian nor PyPI ships, to "
    "parse the fact script with PowerShell's own parser",
)
def test_powershell_parses_the_fact_script_and_its_loader_without_errors(
    tmp_path: Path,
) -> None:
    assert PWSH is not None
    script = tmp_path / "windows.ps1"
    script.write_text(windows_facts.SCRIPT, encoding="utf-8")
    loader = tmp_path / "loader.ps1"
    loader.write_text(windows_facts.LOADER, encoding="utf-8")
    # Each syntax error as "file:line:column: message"; the count is the status.
    command = (
        "$n = 0; foreach ($f in $args) { $t = $null; $e = $null; "
        "[void][System.Management.Automation.Language.Parser]::ParseFile("
        "$f, [ref]$t, [ref]$e); foreach ($x in $e) { $n++; "
        "'{0}:{1}:{2}: {3}' -f $f, $x.Extent.StartLineNumber, "
        "$x.Extent.StartColumnNumber, $x.Message } }; exit $n"
    )

    result = subprocess.run(
        [PWSH, "-NoProfile", "-NonInteractive", "-Command", command, script, loader],
        capture_output=True,
        text=True,
        timeout=300,
    )

    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.skipif(
    importlib.util.find_spec("tree_sitter_powershell") is None,
    reason="needs the tree-sitter PowerShell grammar "
    "(pip install tree-sitter tree-sitter-powershell)",
)
def test_the_fact_script_and_its_loader_parse_with_the_powershell_grammar() -> None:
    import tree_sitter
    import tree_sitter_powershell

    parser = tree_sitter.Parser(tree_sitter.Language(tree_sitter_powershell.language()))

    for name, code in (
        ("windows.ps1", windows_facts.SCRIPT),
        ("loader", windows_facts.LOADER),
    ):
        source = code.encode("utf-8")
        tree = parser.parse(source)

        broken = [
            f"{name}:{node.start_point[0] + 1}: "
            f"{source[node.start_byte : node.end_byte][:60]!r}"
            for node in _nodes(tree.root_node)
            if node.type == "ERROR" or node.is_missing
        ]
        assert broken == []


def _nodes(node: Any) -> Any:
    yield node
    for child in node.children:
        yield from _nodes(child)
