"""ROOT-PASSWORD, NO-PASSWORDS, SUDO and OUTSIDE-ACCESS on recorded facts."""

from __future__ import annotations

import pytest

from pytest_amipolicy.facts import linux
from pytest_amipolicy.policies.accounts import (
    check_no_passwords,
    check_outside_access,
    check_root_password,
    check_sudo,
)
from pytest_amipolicy.verdicts import Verdict
from tests.unit import factsets
from tests.unit.factsets import section

REAL = linux.parse(factsets.real_output())


def with_shadow(**fields: str) -> factsets.Facts:
    """Recorded facts with some shadow fields replaced (raw, as a case lays them)."""
    classes = linux.shadow_classes(REAL["shadow"])
    for name, field in fields.items():
        classes[name] = linux.classify_password(field)
    text = "".join(f"{n}:{c}\n" for n, c in classes.items())
    return factsets.debian(shadow=section("shadow", text))


def test_the_recorded_debian_host_passes_the_password_policies() -> None:
    facts = factsets.debian()

    assert check_root_password(facts).verdict is Verdict.PASS
    assert check_no_passwords(facts).verdict is Verdict.PASS


@pytest.mark.parametrize(
    ("fields", "root", "everyone"),
    [
        ({"root": ""}, Verdict.FAIL, Verdict.FAIL),
        ({"deploy": ""}, Verdict.PASS, Verdict.FAIL),
        ({"svc": "Qx7bLm2PzR9tE"}, Verdict.PASS, Verdict.FAIL),
        ({"root": "*"}, Verdict.PASS, Verdict.PASS),
        ({"root": "!locked"}, Verdict.PASS, Verdict.PASS),
        ({"root": "*LOCK*"}, Verdict.PASS, Verdict.PASS),
        ({"root": "!!"}, Verdict.PASS, Verdict.PASS),
        ({"admin": "$6$abc$defghijk"}, Verdict.PASS, Verdict.FAIL),
    ],
)
def test_shadow_cases(fields: dict[str, str], root: Verdict, everyone: Verdict) -> None:
    facts = with_shadow(**fields)

    assert check_root_password(facts).verdict is root
    assert check_no_passwords(facts).verdict is everyone


def test_a_hash_in_passwd_without_x_is_a_usable_password() -> None:
    text = (
        REAL["passwd"].output + "legacy:Qx7bLm2PzR9tE:1500:1500::/home/legacy:/bin/sh\n"
    )

    outcome = check_no_passwords(factsets.debian(passwd=section("passwd", text)))

    assert outcome.verdict is Verdict.FAIL
    assert "legacy" in outcome.reason


def test_password_evidence_never_shows_a_hash() -> None:
    outcome = check_no_passwords(with_shadow(svc="$6$saltsalt$SECRETHASHVALUE"))

    rendered = outcome.reason + "".join(e.render() for e in outcome.evidence)
    assert "SECRETHASHVALUE" not in rendered and "saltsalt" not in rendered


def test_unreadable_shadow_is_an_error() -> None:
    facts = factsets.debian(shadow=section("shadow", "/etc/shadow: not readable\n", 1))

    assert check_root_password(facts).verdict is Verdict.ERROR
    assert check_no_passwords(facts).verdict is Verdict.ERROR


def test_sudo_passes_when_sudo_n_true_succeeded() -> None:
    assert check_sudo(factsets.debian(sudo=section("sudo", ""))).verdict is Verdict.PASS


def test_sudo_fails_when_a_password_is_required() -> None:
    facts = factsets.debian(sudo=section("sudo", "sudo: a password is required\n", 1))

    assert check_sudo(facts).verdict is Verdict.FAIL


def test_sudo_fails_when_sudo_is_missing() -> None:
    facts = factsets.debian(sudo=section("sudo", "sh: 1: sudo: not found\n", 127))

    outcome = check_sudo(facts)

    assert outcome.verdict is Verdict.FAIL and "not installed" in outcome.reason


def test_sudo_without_the_fact_is_an_error() -> None:
    assert check_sudo(factsets.debian(sudo=None)).verdict is Verdict.ERROR


def test_outside_access_passes_on_the_recorded_host() -> None:
    assert check_outside_access(factsets.debian()).verdict is Verdict.PASS


def test_an_extra_uid_0_account_fails() -> None:
    text = REAL["passwd"].output + "toor:@x:0:0::/root:/bin/sh\n"

    outcome = check_outside_access(factsets.debian(passwd=section("passwd", text)))

    assert outcome.verdict is Verdict.FAIL and "toor" in outcome.reason


def test_an_enabled_remote_access_agent_fails() -> None:
    agents = "enabled teamviewerd.service /etc/systemd/system/multi-user.target.wants/teamviewerd.service\n"

    outcome = check_outside_access(
        factsets.debian(remote_agents=section("remote-agents", agents))
    )

    assert outcome.verdict is Verdict.FAIL


def test_an_installed_but_disabled_agent_is_only_reported() -> None:
    agents = "unit x11vnc.service /lib/systemd/system/x11vnc.service\n"

    outcome = check_outside_access(
        factsets.debian(remote_agents=section("remote-agents", agents))
    )

    assert outcome.verdict is Verdict.PASS
    assert any("x11vnc" in e.output for e in outcome.evidence)


def test_a_telnet_listener_fails() -> None:
    listeners = 'tcp LISTEN 0 128 0.0.0.0:23 0.0.0.0:* users:(("inetd",pid=90,fd=5))\n'

    outcome = check_outside_access(
        factsets.debian(listeners=section("listeners", listeners))
    )

    assert outcome.verdict is Verdict.FAIL


def test_root_without_a_shadow_entry_is_an_error() -> None:
    classes = linux.shadow_classes(REAL["shadow"])
    text = "".join(f"{n}:{c}\n" for n, c in classes.items() if n != "root")

    outcome = check_root_password(factsets.debian(shadow=section("shadow", text)))

    assert outcome.verdict is Verdict.ERROR


def test_root_with_its_hash_in_passwd_and_no_shadow_entry_says_so() -> None:
    classes = linux.shadow_classes(REAL["shadow"])
    shadow = "".join(f"{n}:{c}\n" for n, c in classes.items() if n != "root")
    passwd = REAL["passwd"].output.replace("root:@x:", "root:Qx7bLm2PzR9tE:", 1)

    outcome = check_root_password(
        factsets.debian(
            shadow=section("shadow", shadow), passwd=section("passwd", passwd)
        )
    )

    assert outcome.verdict is Verdict.PASS
    assert "a usable password (old 13-character DES crypt hash)" in outcome.reason


def test_an_unreadable_passwd_is_an_error_for_root_password_too() -> None:
    facts = factsets.debian(
        passwd=section("passwd", "cat: /etc/passwd: I/O error\n", 1)
    )

    assert check_root_password(facts).verdict is Verdict.ERROR


def test_sudo_that_could_not_be_tried_as_the_login_user_is_an_error() -> None:
    facts = factsets.debian(sudo=section("sudo", "cannot act as admin\n", 2))

    assert check_sudo(facts).verdict is Verdict.ERROR


def test_outside_access_without_passwd_is_an_error() -> None:
    assert check_outside_access(factsets.debian(passwd=None)).verdict is Verdict.ERROR


def test_an_enabled_xrdp_is_remote_access_beyond_admin_ssh() -> None:
    agents = (
        "binary xrdp /usr/sbin/xrdp\n"
        "enabled xrdp.service /etc/systemd/system/multi-user.target.wants/xrdp.service\n"
    )

    outcome = check_outside_access(
        factsets.debian(remote_agents=section("remote-agents", agents))
    )

    assert outcome.verdict is Verdict.FAIL
    assert "xrdp.service" in outcome.reason


def test_an_rdp_listener_fails() -> None:
    listeners = 'tcp LISTEN 0 2 *:3389 *:* users:(("xrdp",pid=700,fd=11))\n'

    outcome = check_outside_access(
        factsets.debian(listeners=section("listeners", listeners))
    )

    assert outcome.verdict is Verdict.FAIL and "3389" in outcome.reason


SHA512 = "$6$salt$" + "h" * 86


def test_a_usable_password_names_the_account_the_file_and_the_hash_in_words() -> None:
    outcome = check_no_passwords(with_shadow(deploy=SHA512))

    assert outcome.verdict is Verdict.FAIL
    assert outcome.reason == (
        "1 account can log in with a password or without one: deploy: /etc/shadow "
        "holds a usable password (SHA-512 crypt hash)"
    )
    assert "h" * 20 not in outcome.reason + "".join(
        e.render() for e in outcome.evidence
    )


def test_a_blank_password_says_no_password_is_needed() -> None:
    outcome = check_no_passwords(with_shadow(deploy="", ops=SHA512))

    assert outcome.verdict is Verdict.FAIL
    assert outcome.reason.startswith("2 accounts can log in")
    assert "deploy: its /etc/shadow field is blank, so no password is needed" in (
        outcome.reason
    )


def test_root_password_evidence_says_what_each_field_means() -> None:
    outcome = check_root_password(factsets.debian())

    (evidence,) = outcome.evidence
    assert outcome.reason == "root's password field is not blank: it is locked"
    assert evidence.command == "shadow_facts; passwd_facts"
    assert "root in /etc/passwd: x: the password is kept in /etc/shadow" in (
        evidence.output
    )


def test_the_sudo_rules_show_the_command_with_the_login_user_filled_in() -> None:
    outcome = check_sudo(factsets.debian())

    commands = [e.command for e in outcome.evidence]
    assert "sudo -n -l -U admin" in commands
    assert not any("$user" in command for command in commands)


def test_no_remote_access_software_says_none_was_found() -> None:
    outcome = check_outside_access(factsets.debian())

    assert outcome.verdict is Verdict.PASS
    assert outcome.evidence[0].output == "none found"
