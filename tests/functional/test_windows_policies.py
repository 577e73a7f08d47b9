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
# A profile other than the one WinRM logs in as: cmdkey /list would not see it.
CREDENTIALS = "C:\\Users\\deploy\\AppData\\Roaming\\Microsoft\\Credentials"
ADMINISTRATOR = {"name": "Administrator", "sid": f"{SID}-500", "enabled": True}


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
    users = [ADMINISTRATOR, {"name": "Gast", "sid": f"{SID}-501", "enabled": True}]

    outcome = policies.check_guest(facts_of({"local_users": users}))

    assert outcome.verdict is Verdict.FAIL
    assert "Gast" in outcome.reason


def test_a_missing_guest_account_passes() -> None:
    users = [{"name": "Administrator", "sid": f"{SID}-500", "enabled": True}]

    assert verdict(policies.check_guest, {"local_users": users}) is Verdict.PASS


def test_an_account_named_guest_with_another_rid_is_not_the_guest() -> None:
    users = [
        ADMINISTRATOR,
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
        {"saved_credentials": {CREDENTIALS: 2}},
    ],
    ids=[
        "autologon-password",
        "leftover-password",
        "autologon",
        "unattend",
        "saved-credentials",
    ],
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
    machine = {"errors": {"saved_credentials": "Access to C:\\Users is denied"}}

    assert verdict(policies.check_secrets, machine) is Verdict.ERROR


def test_a_finding_fails_the_secrets_check_even_when_another_place_is_unreadable() -> (
    None
):
    machine = {"saved_credentials": {CREDENTIALS: 1}, "errors": {"winlogon": "denied"}}

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


def test_an_account_list_without_the_built_in_administrator_is_an_error() -> None:
    users = [{"name": "visitor", "sid": f"{SID}-501", "enabled": False}]

    outcome = policies.check_guest(facts_of({"local_users": users}))

    assert outcome.verdict is Verdict.ERROR
    assert "RID 500" in outcome.reason


def test_an_empty_account_list_is_an_error_not_a_pass_for_the_guest_check() -> None:
    assert verdict(policies.check_guest, {"local_users": []}) is Verdict.ERROR


def test_saved_credentials_of_another_profile_fail_the_secrets_check() -> None:
    machine = {"saved_credentials": {CREDENTIALS: 3}}

    outcome = policies.check_secrets(facts_of(machine))

    assert outcome.verdict is Verdict.FAIL
    assert outcome.findings == (f"3 saved credential file(s) in {CREDENTIALS}",)


def test_an_unreadable_credential_folder_is_an_error_for_the_secrets_check() -> None:
    folder = "C:\\Users\\deploy\\AppData\\Local\\Microsoft\\Vault"
    machine = {"errors": {f"credentials {folder}": "Access is denied"}}

    outcome = policies.check_secrets(facts_of(machine))

    assert outcome.verdict is Verdict.ERROR
    assert f"{folder}: Access is denied" in outcome.reason


def test_no_saved_credential_file_in_any_profile_passes_the_secrets_check() -> None:
    outcome = policies.check_secrets(facts_of({"saved_credentials": {}}))

    assert outcome.verdict is Verdict.PASS
    assert any("Microsoft\\Credentials" in e.source for e in outcome.evidence)


@pytest.mark.parametrize(
    "rdp, expected",
    [
        ({"policy_deny_connections": 1}, Verdict.FAIL),
        ({"deny_connections": 1, "policy_deny_connections": 0}, Verdict.PASS),
        ({"deny_connections": 1, "policy_deny_connections": None}, Verdict.FAIL),
    ],
    ids=["policy-denies", "policy-allows", "no-policy"],
)
def test_the_group_policy_value_wins_over_the_local_rdp_setting(
    rdp: dict[str, Any], expected: Verdict
) -> None:
    outcome = policies.check_rdp(facts_of({"rdp": rdp}))

    assert outcome.verdict is expected
    if rdp.get("policy_deny_connections") == 1:
        assert "Group Policy fDenyTSConnections=1" in outcome.reason


@pytest.mark.parametrize("start", ["Disabled", "absent"])
def test_remote_desktop_without_its_service_fails(start: str) -> None:
    outcome = policies.check_rdp(facts_of({"rdp": {"service_start_mode": start}}))

    assert outcome.verdict is Verdict.FAIL
    assert "TermService" in outcome.reason


@pytest.mark.parametrize(
    "errors, left_out",
    [
        ({"rdp_policy": "Requested registry access is not allowed."}, "policy"),
        ({"rdp_service": "Access denied"}, "service"),
        ({}, "policy"),
        ({}, "service"),
    ],
    ids=["policy-unreadable", "service-unreadable", "policy-unsaid", "service-unsaid"],
)
def test_an_unreadable_part_of_the_rdp_settings_is_an_error(
    errors: dict[str, str], left_out: str
) -> None:
    # As the script writes it: the part it could not read is left out.
    document = render_facts({"errors": errors})
    key = {"policy": "policy_deny_connections", "service": "service_start_mode"}
    del document["rdp"][key[left_out]]
    section = Section("windows", "windows.ps1", 0, json.dumps(document))
    facts = Facts(target="t", platform="windows", sections={"windows": section})

    outcome = policies.check_rdp(facts)

    assert outcome.verdict is Verdict.ERROR
    assert all(why in outcome.reason for why in errors.values())


def test_the_rdp_evidence_names_the_registry_keys_and_shows_the_firewall_rules() -> (
    None
):
    outcome = policies.check_rdp(facts_of({}))

    text = "\n".join(e.render() for e in outcome.evidence)
    assert outcome.verdict is Verdict.PASS
    assert "at HKLM\\System\\CurrentControlSet\\Control\\Terminal Server" in text
    assert "HKLM\\SOFTWARE\\Policies\\Microsoft\\Windows NT\\Terminal Services" in text
    assert "Remote Desktop - User Mode (TCP-In)" in text


@pytest.mark.parametrize(
    "name, check, source",
    [
        ("WIN-GUEST", policies.check_guest, "Win32_UserAccount"),
        ("WIN-RDP-USERS", policies.check_rdp_users, "WinNT://"),
        ("WIN-SECRETS", policies.check_secrets, "CurrentVersion\\Winlogon"),
        ("WIN-ADMIN-PASSWORD", policies.check_admin_password, "agent-config.yml"),
        ("WIN-LAUNCH-AGENT", policies.check_launch_agent, "Get-Service"),
    ],
)
def test_windows_evidence_names_where_it_was_read(
    name: str, check: Any, source: str
) -> None:
    outcome = check(facts_of({}))

    assert any(source in evidence.source for evidence in outcome.evidence), name


@pytest.mark.parametrize(
    "replace, fact",
    [
        ({"winlogon": "1"}, "windows.winlogon"),
        ({"rdp": [0]}, "windows.rdp"),
        ({"errors": ["denied"]}, "windows.errors"),
        ({"saved_credentials": 2}, "windows.saved_credentials"),
        ({"local_users": {"Administrator": True}}, "windows.local_users"),
        ({"groups": ["S-1-5-32-555"]}, "windows.groups"),
        ({"services": ["EC2Launch"]}, "windows.services"),
        ({"launch": ["v2"]}, "windows.launch"),
    ],
    ids=lambda value: value if isinstance(value, str) else "",
)
def test_a_fact_of_an_unexpected_shape_is_an_error_naming_it(
    replace: dict[str, Any], fact: str
) -> None:
    document = {**render_facts({}), **replace}
    section = Section("windows", "windows.ps1", 0, json.dumps(document))
    facts = Facts(target="t", platform="windows", sections={"windows": section})

    outcomes = {name: check(facts) for name, check in ALL_CHECKS}

    named = [o for o in outcomes.values() if fact in o.reason]
    assert named, f"no verdict names {fact}"
    assert all(o.verdict is Verdict.ERROR for o in named)
    assert all(o.verdict in (Verdict.ERROR, Verdict.PASS) for o in outcomes.values())


@pytest.mark.parametrize(
    "replace",
    [
        {"local_users": ["Administrator"]},
        {"saved_credentials": {CREDENTIALS: "many"}},
        {"winlogon": {"auto_admin_logon": "0", "default_password": ["set"]}},
    ],
    ids=["user-not-an-object", "count-not-a-number", "value-not-a-string"],
)
def test_a_nested_part_of_an_unexpected_shape_is_an_error_not_a_crash(
    replace: dict[str, Any],
) -> None:
    document = {**render_facts({}), **replace}
    section = Section("windows", "windows.ps1", 0, json.dumps(document))
    facts = Facts(target="t", platform="windows", sections={"windows": section})

    outcomes = [check(facts) for _, check in ALL_CHECKS]

    assert all(o.verdict in (Verdict.ERROR, Verdict.PASS) for o in outcomes)
    assert any(o.verdict is Verdict.ERROR for o in outcomes)
