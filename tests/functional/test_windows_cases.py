"""Every Windows case, served by a fake WinRM endpoint and checked end to end.

The path is the real one: testinfra's winrm backend, pywinrm, NTLM over HTTPS
to the endpoint on loopback, the fact script's JSON, ``windows.gather``, then
the policy checks.
"""

from __future__ import annotations

import copy
import json
import os
from pathlib import Path
from typing import Any

import pytest

from pytest_amipolicy.facts import Facts
from pytest_amipolicy.facts import windows as windows_facts
from pytest_amipolicy.policies import windows as windows_policies
from pytest_amipolicy.targets.winrm import open_winrm_host, run_on
from tests.support.winrm_server import FakeWinRMEndpoint

CHECKS = {
    "WIN-LAUNCH-AGENT": windows_policies.check_launch_agent,
    "WIN-GUEST": windows_policies.check_guest,
    "WIN-RDP-USERS": windows_policies.check_rdp_users,
    "WIN-ADMIN-PASSWORD": windows_policies.check_admin_password,
    "WIN-SECRETS": windows_policies.check_secrets,
    "WIN-RDP": windows_policies.check_rdp,
}


def cases_directory() -> Path:
    configured = os.environ.get("AMIPOLICY_CASES")
    if configured:
        return Path(configured)
    return Path(__file__).resolve().parents[2].parent / "shared" / "cases"


def overlay(base: dict[str, Any], top: dict[str, Any]) -> dict[str, Any]:
    """Lay ``top``'s fields over ``base``; ``expect`` is merged key by key."""
    merged = copy.deepcopy(base)
    for key, value in top.items():
        if key == "expect":
            merged["expect"] = {**merged.get("expect", {}), **value}
        else:
            merged[key] = copy.deepcopy(value)
    return merged


def windows_cases() -> list[Any]:
    params = []
    for path in sorted(cases_directory().glob("*.json")):
        case = json.loads(path.read_text(encoding="utf-8"))
        if case.get("platform") != "windows":
            continue

        variants = case.pop("variants", None)
        if not variants:
            params.append(pytest.param(case, id=case["id"]))
            continue
        for number, variant in enumerate(variants, start=1):
            params.append(
                pytest.param(overlay(case, variant), id=f"{case['id']}-{number}")
            )
    return params


CASES = windows_cases()


def test_the_windows_cases_are_found() -> None:
    assert CASES, f"no Windows case in {cases_directory()}"


@pytest.mark.parametrize("case", CASES)
def test_windows_case_gets_its_expected_verdicts_over_winrm(
    case: dict[str, Any],
) -> None:
    with FakeWinRMEndpoint(case.get("machine", {})) as endpoint:
        host = open_winrm_host(
            endpoint.address,
            user=endpoint.user,
            password=endpoint.password,
            verify_ssl=False,
        )
        sections = windows_facts.gather(run_on(host))
        actions = endpoint.actions
        open_shells = endpoint.open_shells

    facts = Facts(target=case["id"], platform="windows", sections=sections)
    verdicts = {
        policy_id: CHECKS[policy_id](facts).verdict.value
        for policy_id in case["expect"]
    }

    assert verdicts == case["expect"]
    assert actions[:3] == ["Create", "Command", "Receive"]
    assert actions[-2:] == ["Signal", "Delete"]
    assert open_shells == 0
