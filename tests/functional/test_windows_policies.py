"""Each branch of the Windows policies, on recorded fact documents."""

from __future__ import annotations

import json
from typing import Any

import pytest

from pytest_amipolicy.facts import Facts, Section
from pytest_amipolicy.policies import windows as policies
from pytest_amipolicy.verdicts import Verdict
from tests.support.winrm_server import render_facts

SID = "S-1-5-21-1111111111-2222222222-3333333333"
SERVER_2012_R2 = {
    "caption": "Microsoft Windows Server 2012 R2 Datacenter",
    "version": "6.3.9600",
}
SERVER_2019 = {
    "caption": "Microsoft Windows Server 2019 Datacenter",
    "version": "10.0.17763",
}


def facts_of(machine: dict[str, Any], **settings: Any) -> Facts:
    document = json.dumps(render_facts(machine))
    section = Section(name="windows", command="windows.ps1", status=0, output=document)
    return Facts(
        target="recorded",
        platform="windows",
        sections={"windows": section},
        settings=settings,
    )


def verdict(check: Any, machine: dict[str, Any], **settings: Any) -> Verdict:
    return check(facts_of(machine, **settings)).verdict


def test_a_well_prepared_image_passes_every_windows_policy() -> None:
    facts = facts_of({})

    outcomes = {name: check(facts) for name, check in ALL_CHECKS}

    assert {name: o.verdict for name, o in outcomes.items()} == {
        name: Verdict.PASS for name, _ in ALL_CHECKS
    }
    assert all(o.evidence for o in outcomes.values())


ALL_CHECKS = [
    ("WIN-LAUNCH-AGENT", policies.check_launch_agent),
    ("WIN-GUEST", policies.check_guest),
    ("WIN-RDP-USERS", policies.check_rdp_users),
    ("WIN-ADMIN-PASSWORD", policies.check_admin_password),
    ("WIN-SECRETS", policies.check_secrets),
    ("WIN-RDP", policies.check_rdp),
]


@pytest.mark.parametrize("name, check", ALL_CHECKS)
def test_every_windows_policy_is_an_error_when_the_script_failed(
    name: str, check: Any
) -> None:
    section = Section(
        name="windows", command="windows.ps1", status=1, output="Access is denied."
    )
    facts = Facts(target="t", platform="windows", sections={"windows": section})

    outcome = check(facts)

    assert outcome.verdict is Verdict.ERROR
    assert "Access is denied" in outcome.reason


@pytest.mark.parametrize("name, check", ALL_CHECKS)
def test_every_windows_policy_is_an_error_when_the_output_is_not_json(
    name: str, check: Any
) -> None:
    section = Section(
        name="windows", command="windows.ps1", status=0, output="#< CLIXML"
    )
    facts = Facts(target="t", platform="windows", sections={"windows": section})

    assert check(facts).verdict is Verdict.ERROR


@pytest.mark.parametrize("name, check", ALL_CHECKS)
def test_every_windows_policy_is_an_error_when_nothing_was_gathered(
    name: str, check: Any
) -> None:
    facts = Facts(target="t", platform="windows")

    assert check(facts).verdict is Verdict.ERROR


def test_an_enabled_guest_account_fails_whatever_its_name() -> None:
    users = [{"name": "Gast", "sid": f"{SID}-501", "enabled": True}]

    outcome = policies.check_guest(facts_of({"local_users": users}))

    assert outcome.verdict is Verdict.FAIL
    assert "Gast" in outcome.reason


def test_a_missing_guest_account_passes() -> None:
    users = [{"name": "Administrator", "sid": f"{SID}-500", "enabled": True}]

    assert verdict(policies.check_guest, {"local_users": users}) is Verdict.PASS


def test_an_account_named_guest_with_another_rid_is_not_the_guest() -> None:
    users = [
        {"name": "Guest", "sid": f"{SID}-1001", "enabled": True},
        {"name": "visitor", "sid": f"{SID}-501", "enabled": False},
    ]

    assert verdict(policies.check_guest, {"local_users": users}) is Verdict.PASS


def test_unreadable_local_accounts_are_an_error_for_the_guest_check() -> None:
    machine = {"errors": {"local_users": "Access denied"}}

    outcome = policies.check_guest(facts_of(machine))

    assert outcome.verdict is Verdict.ERROR
    assert "Access denied" in outcome.reason


def test_a_member_of_remote_desktop_users_fails() -> None:
    machine = {"groups": {"S-1-5-32-555": ["seller"]}}

    outcome = policies.check_rdp_users(facts_of(machine))

    assert outcome.verdict is Verdict.FAIL
    assert outcome.findings == ("seller",)


def test_an_orphaned_sid_in_remote_desktop_users_fails() -> None:
    members = [{"name": f"{SID}-1009", "sid": f"{SID}-1009"}]
    machine = {"groups": {"S-1-5-32-555": {"members": members}}}

    assert verdict(policies.check_rdp_users, machine) is Verdict.FAIL


def test_unreadable_remote_desktop_users_membership_is_an_error_not_a_pass() -> None:
    machine = {"groups": {"S-1-5-32-555": {"error": "Failed to compare two elements"}}}

    outcome = policies.check_rdp_users(facts_of(machine))

    assert outcome.verdict is Verdict.ERROR
    assert "Failed to compare" in outcome.reason


def test_server_2012_r2_with_ec2config_features_on_passes_the_launch_agent_check() -> (
    None
):
    machine = {"os": SERVER_2012_R2}

    assert verdict(policies.check_launch_agent, machine) is Verdict.PASS


@pytest.mark.parametrize("feature", policies.EC2CONFIG_FEATURES)
def test_server_2012_r2_with_an_ec2config_feature_off_fails(feature: str) -> None:
    plugins = dict.fromkeys(policies.EC2CONFIG_FEATURES, "Enabled")
    plugins[feature] = "Disabled"
    machine = {"os": SERVER_2012_R2, "launch": {"ec2config": plugins}}

    outcome = policies.check_launch_agent(facts_of(machine))

    assert outcome.verdict is Verdict.FAIL
    assert feature in outcome.reason


def test_server_2012_r2_without_ec2config_fails() -> None:
    machine = {"os": SERVER_2012_R2, "services": {}, "paths": []}

    assert verdict(policies.check_launch_agent, machine) is Verdict.FAIL


def test_server_2012_r2_with_unreadable_ec2config_settings_is_an_error() -> None:
    machine = {
        "os": SERVER_2012_R2,
        "launch": {},
        "errors": {"launch_ec2config": "XML is malformed"},
    }

    assert verdict(policies.check_launch_agent, machine) is Verdict.ERROR


def test_an_unreadable_os_version_is_an_error_for_the_launch_agent_check() -> None:
    machine = {"os": {"caption": "Windows", "version": "unknown"}}

    assert verdict(policies.check_launch_agent, machine) is Verdict.ERROR


def test_unreadable_services_are_an_error_for_the_launch_agent_check() -> None:
    machine = {"os": SERVER_2019, "errors": {"services": "RPC server unavailable"}}

    assert verdict(policies.check_launch_agent, machine) is Verdict.ERROR


@pytest.mark.parametrize(
    "launch, expected",
    [
        ({"v2": {"admin_task": True, "password_type": "random"}}, Verdict.PASS),
        ({"v2": {"admin_task": True, "password_type": None}}, Verdict.PASS),
        ({"v2": {"admin_task": True, "password_type": "static"}}, Verdict.FAIL),
        ({"v2": {"admin_task": False, "password_type": None}}, Verdict.FAIL),
        ({}, Verdict.ERROR),
    ],
    ids=["random", "default-type", "static", "no-task", "unreadable"],
)
def test_ec2launch_v2_password_setting_decides_the_admin_password_check(
    launch: dict[str, Any], expected: Verdict
) -> None:
    assert verdict(policies.check_admin_password, {"launch": launch}) is expected


@pytest.mark.parametrize(
    "kind, expected", [("Random", Verdict.PASS), ("Specify", Verdict.FAIL)]
)
def test_ec2launch_v1_admin_password_type_decides_the_admin_password_check(
    kind: str, expected: Verdict
) -> None:
    machine = {
        "os": SERVER_2019,
        "services": {},
        "paths": [
            "C:\\ProgramData\\Amazon\\EC2-Windows\\Launch\\Module\\Ec2Launch.psd1"
        ],
        "launch": {"v1": {"admin_password_type": kind, "handle_user_data": True}},
    }

    assert verdict(policies.check_admin_password, machine) is expected


@pytest.mark.parametrize(
    "state, expected", [("Enabled", Verdict.PASS), ("Disabled", Verdict.FAIL)]
)
def test_ec2config_set_password_decides_the_admin_password_check(
    state: str, expected: Verdict
) -> None:
    plugins = dict.fromkeys(policies.EC2CONFIG_FEATURES, "Enabled")
    plugins["Ec2SetPassword"] = state
    machine = {"os": SERVER_2012_R2, "launch": {"ec2config": plugins}}

    assert verdict(policies.check_admin_password, machine) is expected


def test_missing_password_data_on_ec2_fails_the_admin_password_check() -> None:
    assert (
        verdict(policies.check_admin_password, {}, password_data_available=False)
        is Verdict.FAIL
    )


def test_available_password_data_is_shown_as_evidence() -> None:
    outcome = policies.check_admin_password(facts_of({}, password_data_available=True))

    assert outcome.verdict is Verdict.PASS
    assert any("GetPasswordData" in e.label for e in outcome.evidence)


def test_an_image_without_any_launch_agent_fails_the_admin_password_check() -> None:
    machine = {"services": {"TermService": "Running"}, "paths": []}

    assert verdict(policies.check_admin_password, machine) is Verdict.FAIL


@pytest.mark.parametrize(
    "machine",
    [
        {"winlogon": {"auto_admin_logon": "1", "default_password": "set"}},
        {"winlogon": {"auto_admin_logon": "0", "default_password": "set"}},
        {"winlogon": {"auto_admin_logon": "1", "default_password": "absent"}},
        {"unattend_passwords": ["C:\\Windows\\Panther\\Unattend.xml"]},
        {"saved_credentials": 2},
    ],
    ids=["autologon-password", "leftover-password", "autologon", "unattend", "cmdkey"],
)
def test_a_stored_logon_password_fails_the_secrets_check(
    machine: dict[str, Any],
) -> None:
    outcome = policies.check_secrets(facts_of(machine))

    assert outcome.verdict is Verdict.FAIL
    assert outcome.findings


def test_the_secrets_evidence_never_holds_a_password_value() -> None:
    machine = {"winlogon": {"auto_admin_logon": "1", "default_password": "set"}}

    outcome = policies.check_secrets(facts_of(machine))

    rendered = "\n".join(e.render() for e in outcome.evidence)
    assert '"default_password": "set"' in rendered


def test_an_unreadable_unattend_file_is_an_error_for_the_secrets_check() -> None:
    machine = {"errors": {"unattend C:\\Windows\\Panther\\Unattend.xml": "denied"}}

    assert verdict(policies.check_secrets, machine) is Verdict.ERROR


def test_unreadable_saved_credentials_are_an_error_for_the_secrets_check() -> None:
    machine = {"errors": {"saved_credentials": "cmdkey /list exited 1"}}

    assert verdict(policies.check_secrets, machine) is Verdict.ERROR


def test_a_finding_fails_the_secrets_check_even_when_another_place_is_unreadable() -> (
    None
):
    machine = {"saved_credentials": 1, "errors": {"winlogon": "denied"}}

    assert verdict(policies.check_secrets, machine) is Verdict.FAIL


@pytest.mark.parametrize(
    "rdp, expected",
    [
        ({"deny_connections": 0}, Verdict.PASS),
        ({"deny_connections": 1}, Verdict.FAIL),
        ({"deny_connections": None}, Verdict.ERROR),
    ],
)
def test_fdenytsconnections_decides_the_rdp_check(
    rdp: dict[str, Any], expected: Verdict
) -> None:
    assert verdict(policies.check_rdp, {"rdp": rdp}) is expected


def test_the_windows_policies_keep_the_os_keys_the_eol_policy_reads() -> None:
    document = render_facts({"os": SERVER_2019})

    assert document["os"]["caption"] == SERVER_2019["caption"]
    assert document["os"]["version"] == SERVER_2019["version"]
