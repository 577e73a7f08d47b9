"""SSH-PASSWORD and SSH-ROOT on real sshd -T output of the SSH cases."""

from __future__ import annotations

import pytest

from pytest_amipolicy.facts import sshd
from pytest_amipolicy.policies.ssh import (
    ORDINARY_USER,
    check_ssh_password,
    check_ssh_root,
)
from pytest_amipolicy.verdicts import Verdict
from tests.unit import factsets
from tests.unit.factsets import section


def settings(**values: str) -> str:
    base = {
        "usepam": "yes",
        "permitrootlogin": "without-password",
        "passwordauthentication": "no",
        "kbdinteractiveauthentication": "no",
        "permitemptypasswords": "no",
    }
    base.update(values)
    return "".join(f"{k} {v}\n" for k, v in base.items())


def with_sshd(text: str, cloud: str = "") -> factsets.Facts:
    return factsets.debian(
        sshd_root=section("sshd-root", text),
        sshd_login=section("sshd-login", text),
        sshd_user=section("sshd-user", text),
        sshd_contexts=factsets.NO_MATCH,
        cloud_init=section("cloud-init", cloud),
    )


@pytest.mark.parametrize(
    ("case", "policy", "verdict"),
    [
        ("ssh-dropin-only", "SSH-PASSWORD", Verdict.PASS),
        ("ssh-dropin-overrides-main", "SSH-PASSWORD", Verdict.FAIL),
        ("ssh-kbdinteractive-left-on", "SSH-PASSWORD", Verdict.FAIL),
        ("ssh-no-appended-inside-match", "SSH-PASSWORD", Verdict.FAIL),
        ("ssh-root-prohibit-password-alias", "SSH-PASSWORD", Verdict.PASS),
        ("ssh-root-prohibit-password-alias", "SSH-ROOT", Verdict.PASS),
    ],
)
def test_ssh_cases_get_the_expected_verdict(
    case: str, policy: str, verdict: Verdict
) -> None:
    check = check_ssh_password if policy == "SSH-PASSWORD" else check_ssh_root

    outcome = check(factsets.ssh_case(case))

    assert outcome.verdict is verdict, outcome.reason


def test_keyboard_interactive_with_pam_counts_as_password_login() -> None:
    outcome = check_ssh_password(
        with_sshd(settings(kbdinteractiveauthentication="yes"))
    )

    assert outcome.verdict is Verdict.FAIL
    assert "keyboard-interactive" in outcome.reason


@pytest.mark.parametrize(
    ("kbdinteractive", "challengeresponse", "verdict"),
    [
        # sshd before 8.7 prints both keywords; PAM's password prompt needs both
        ("yes", "yes", Verdict.FAIL),
        ("yes", "no", Verdict.PASS),
        ("no", "yes", Verdict.PASS),
        ("no", "no", Verdict.PASS),
    ],
)
def test_older_sshd_asks_pam_for_a_password_only_with_both_keyboard_settings_on(
    kbdinteractive: str, challengeresponse: str, verdict: Verdict
) -> None:
    text = settings(
        kbdinteractiveauthentication=kbdinteractive,
        challengeresponseauthentication=challengeresponse,
    )

    assert check_ssh_password(with_sshd(text)).verdict is verdict


def test_newer_sshd_prints_only_kbdinteractive_and_it_alone_decides() -> None:
    text = settings(kbdinteractiveauthentication="yes")

    assert "challengeresponseauthentication" not in text
    assert check_ssh_password(with_sshd(text)).verdict is Verdict.FAIL


def test_keyboard_interactive_without_pam_has_no_password_path() -> None:
    text = settings(kbdinteractiveauthentication="yes", usepam="no")

    assert check_ssh_password(with_sshd(text)).verdict is Verdict.PASS


def test_permit_empty_passwords_fails() -> None:
    outcome = check_ssh_password(with_sshd(settings(permitemptypasswords="yes")))

    assert outcome.verdict is Verdict.FAIL
    assert "PermitEmptyPasswords" in outcome.reason


@pytest.mark.parametrize("value", ["true", "yes", "True", "'yes'"])
def test_cloud_init_ssh_pwauth_on_fails_because_it_enables_passwords_at_boot(
    value: str,
) -> None:
    cloud = f"/etc/cloud/cloud.cfg.d/50-pw.cfg:1:ssh_pwauth: {value}\n"

    outcome = check_ssh_password(with_sshd(settings(), cloud))

    assert outcome.verdict is Verdict.FAIL
    assert "cloud-init" in outcome.reason


def test_a_later_cloud_init_file_turning_passwords_off_wins() -> None:
    cloud = "/etc/cloud/cloud.cfg:9:ssh_pwauth: true\n/etc/cloud/cloud.cfg.d/90-off.cfg:1:ssh_pwauth: false\n"

    assert check_ssh_password(with_sshd(settings(), cloud)).verdict is Verdict.PASS


def test_a_match_block_for_the_login_user_counts() -> None:
    facts = with_sshd(settings())
    facts.sections["sshd-login"] = section(
        "sshd-login", settings(passwordauthentication="yes")
    )

    outcome = check_ssh_password(facts)

    assert outcome.verdict is Verdict.FAIL
    assert "admin" in outcome.reason


def test_logged_in_as_root_roots_answer_is_shown_once() -> None:
    facts = with_sshd(settings())
    facts.login_user = "root"

    outcome = check_ssh_password(facts)

    labels = [evidence.label for evidence in outcome.evidence]
    assert outcome.verdict is Verdict.PASS
    assert "2 connections checked: user root (the login user) and any other" in (
        outcome.reason
    )
    assert len([label for label in labels if "for user root" in label]) == 1


def test_a_failed_sshd_t_is_an_error() -> None:
    broken = section(
        "sshd-root", "Missing privilege separation directory: /run/sshd\n", 255
    )
    facts = factsets.debian(sshd_root=broken)

    assert check_ssh_password(facts).verdict is Verdict.ERROR
    assert check_ssh_root(facts).verdict is Verdict.ERROR


def test_no_sshd_at_all_is_not_applicable() -> None:
    facts = factsets.debian(
        sshd_root=section("sshd-root", "sshd: not installed\n", 127)
    )

    assert check_ssh_password(facts).verdict is Verdict.SKIP


@pytest.mark.parametrize(
    ("value", "verdict"),
    [
        ("no", Verdict.PASS),
        ("prohibit-password", Verdict.PASS),
        ("without-password", Verdict.PASS),
        ("forced-commands-only", Verdict.PASS),
        ("yes", Verdict.FAIL),
    ],
)
def test_permit_root_login_values(value: str, verdict: Verdict) -> None:
    assert check_ssh_root(with_sshd(settings(permitrootlogin=value))).verdict is verdict


def test_evidence_names_the_drop_in_line_that_decided() -> None:
    outcome = check_ssh_password(factsets.ssh_case("ssh-dropin-overrides-main"))

    text = "\n".join(e.render() for e in outcome.evidence)
    assert (
        "/etc/ssh/sshd_config.d/50-cloud-init.conf:1: PasswordAuthentication yes"
        in text
    )


def test_attribution_skips_a_match_block_that_does_not_apply() -> None:
    files = factsets.case("ssh-no-appended-inside-match")["files"]

    origin = sshd.find_setting(files, "passwordauthentication", sshd.Connection("root"))

    assert origin is None


def test_attribution_applies_a_match_block_for_its_user() -> None:
    files = {
        "/etc/ssh/sshd_config": "PermitRootLogin no\nMatch User admin,!root\n  PasswordAuthentication yes\n"
    }

    admin = sshd.find_setting(files, "PasswordAuthentication", sshd.Connection("admin"))
    root = sshd.find_setting(files, "passwordauthentication", sshd.Connection("root"))

    assert admin is not None and admin.line == 3
    assert root is None


def test_attribution_matches_address_ranges() -> None:
    files = {
        "/etc/ssh/sshd_config": "Match Address 203.0.113.0/24\nPasswordAuthentication yes\n"
    }

    origin = sshd.find_setting(files, "passwordauthentication", sshd.Connection("x"))

    assert origin is not None and origin.line == 2


def test_a_match_block_for_the_user_overrides_an_earlier_server_wide_line() -> None:
    files = {
        "/etc/ssh/sshd_config": "PasswordAuthentication no\nMatch User admin\n  PasswordAuthentication yes\n"
    }

    admin = sshd.find_setting(files, "passwordauthentication", sshd.Connection("admin"))
    root = sshd.find_setting(files, "passwordauthentication", sshd.Connection("root"))

    assert admin is not None and admin.line == 3
    assert root is not None and root.line == 1


def test_evidence_names_the_match_line_that_opened_passwords() -> None:
    config = (
        "PasswordAuthentication no\nMatch User admin\n  PasswordAuthentication yes\n"
    )
    facts = with_sshd(settings())
    facts.sections["sshd-login"] = section(
        "sshd-login", settings(passwordauthentication="yes")
    )
    facts.sections["sshd-config"] = section(
        "sshd-config", factsets.config_dump({"/etc/ssh/sshd_config": config})
    )

    outcome = check_ssh_password(facts)

    text = "\n".join(e.render() for e in outcome.evidence)
    assert outcome.verdict is Verdict.FAIL
    assert (
        "passwordauthentication for user admin: /etc/ssh/sshd_config:3: "
        "PasswordAuthentication yes" in text
    )


@pytest.mark.parametrize(
    "line", ["PasswordAuthentication=no", "passwordauthentication = no"]
)
def test_attribution_reads_keyword_equals_value(line: str) -> None:
    files = {"/etc/ssh/sshd_config": f"{line}\n"}

    origin = sshd.find_setting(files, "PasswordAuthentication", sshd.Connection("x"))

    assert origin is not None and origin.line == 1


def test_attribution_reads_match_criteria_written_with_equals() -> None:
    files = {"/etc/ssh/sshd_config": "Match User=admin\n  PermitRootLogin yes\n"}

    origin = sshd.find_setting(files, "permitrootlogin", sshd.Connection("admin"))

    assert origin is not None and origin.line == 2


def test_an_include_glob_does_not_reach_into_subdirectories_or_dotfiles() -> None:
    files = {
        "/etc/ssh/sshd_config": "Include /etc/ssh/sshd_config.d/*\n",
        "/etc/ssh/sshd_config.d/old/10.conf": "PasswordAuthentication yes\n",
        "/etc/ssh/sshd_config.d/.hidden": "PasswordAuthentication yes\n",
        "/etc/ssh/sshd_config.d/50.conf": "PasswordAuthentication no\n",
    }

    origin = sshd.find_setting(files, "passwordauthentication", sshd.Connection("x"))

    assert origin is not None and origin.path == "/etc/ssh/sshd_config.d/50.conf"


def test_a_file_included_from_a_match_that_does_not_apply_never_matches() -> None:
    # As sshd: "Match all" inside such a file does not reopen the server-wide
    # scope, and the same file included again later is read again.
    files = {
        "/etc/ssh/sshd_config": "Match User nobody\n  Include in.conf\nMatch all\nInclude in.conf\n",
        "/etc/ssh/in.conf": "Match all\nPermitRootLogin no\n",
    }

    origin = sshd.find_setting(files, "permitrootlogin", sshd.Connection("root"))

    assert origin == sshd.Origin("/etc/ssh/in.conf", 2, "PermitRootLogin no")
    assert (
        sshd.find_setting(
            {**files, "/etc/ssh/sshd_config": "Match User nobody\n  Include in.conf\n"},
            "permitrootlogin",
            sshd.Connection("root"),
        )
        is None
    )


def test_a_match_group_block_applies_to_members_of_the_group() -> None:
    files = {"/etc/ssh/sshd_config": "Match Group sudo\n  PasswordAuthentication yes\n"}

    member = sshd.Connection("admin", groups=("admin", "sudo"))
    outsider = sshd.Connection("admin", groups=("admin",))

    assert sshd.find_setting(files, "passwordauthentication", member) is not None
    assert sshd.find_setting(files, "passwordauthentication", outsider) is None


def test_evidence_does_not_blame_a_line_that_disagrees_with_sshd() -> None:
    files = {
        "/etc/ssh/sshd_config": "PasswordAuthentication no\nMatch LocalPort 2222\n  PasswordAuthentication yes\n"
    }

    said = sshd.describe(
        files, "passwordauthentication", sshd.Connection("root"), effective="yes"
    )

    assert "sshd -T says yes, which no line read here explains" in said


def test_prohibit_password_in_the_file_agrees_with_sshds_alias() -> None:
    files = {"/etc/ssh/sshd_config": "PermitRootLogin prohibit-password\n"}

    said = sshd.describe(
        files, "permitrootlogin", sshd.Connection("root"), "without-password"
    )

    assert said.endswith("/etc/ssh/sshd_config:1: PermitRootLogin prohibit-password")


def test_group_membership_from_the_facts_reaches_the_evidence() -> None:
    config = "Match Group sudo\n  PasswordAuthentication yes\n"
    facts = with_sshd(settings())
    facts.sections["sshd-login"] = section(
        "sshd-login", settings(passwordauthentication="yes")
    )
    facts.sections["sshd-config"] = section(
        "sshd-config", factsets.config_dump({"/etc/ssh/sshd_config": config})
    )
    facts.sections["user-groups"] = section(
        "user-groups", "root:root\nadmin:adm sudo\n"
    )

    outcome = check_ssh_password(facts)

    text = "\n".join(e.render() for e in outcome.evidence)
    assert "for user admin: /etc/ssh/sshd_config:2: PasswordAuthentication yes" in text


def test_without_sshd_t_for_every_connection_there_is_no_verdict() -> None:
    facts = with_sshd(settings())
    del facts.sections["sshd-user"]

    outcome = check_ssh_password(facts)

    assert outcome.verdict is Verdict.ERROR
    assert ORDINARY_USER in outcome.reason


def test_cloud_init_ssh_pwauth_with_a_trailing_comment_still_counts() -> None:
    cloud = "/etc/cloud/cloud.cfg.d/50-pw.cfg:3:ssh_pwauth: true  # for the demo\n"

    outcome = check_ssh_password(with_sshd(settings(), cloud))

    assert outcome.verdict is Verdict.FAIL
    assert "cloud-init" in outcome.reason


MATCH_DEPLOY = (
    "PasswordAuthentication no\nKbdInteractiveAuthentication no\n"
    "Match User deploy\n    PasswordAuthentication yes\n"
)


def with_contexts(config: str, *evaluations: tuple[str, str]) -> factsets.Facts:
    facts = with_sshd(settings())
    facts.sections["sshd-contexts"] = factsets.contexts(*evaluations)
    facts.sections["sshd-config"] = section(
        "sshd-config", factsets.config_dump({"/etc/ssh/sshd_config": config})
    )
    return facts


def test_a_match_block_for_an_account_other_than_root_or_the_login_user_counts() -> (
    None
):
    facts = with_contexts(
        MATCH_DEPLOY,
        ("root", settings()),
        ("admin", settings()),
        ("deploy", settings(passwordauthentication="yes")),
    )

    outcome = check_ssh_password(facts)

    text = "\n".join(e.render() for e in outcome.evidence)
    assert outcome.verdict is Verdict.FAIL
    assert "PasswordAuthentication yes for user deploy" in outcome.reason
    assert (
        "passwordauthentication for user deploy: /etc/ssh/sshd_config:4: "
        "PasswordAuthentication yes" in text
    )


def test_a_match_group_block_names_the_member_it_opens_passwords_to() -> None:
    config = "PasswordAuthentication no\nMatch Group developers\n  PasswordAuthentication yes\n"
    facts = with_contexts(
        config, ("root", settings()), ("dev1", settings(passwordauthentication="yes"))
    )
    facts.sections["user-groups"] = section(
        "user-groups", "root:root\nadmin:adm sudo\ndev1:dev1 developers\n"
    )

    outcome = check_ssh_password(facts)

    text = "\n".join(e.render() for e in outcome.evidence)
    assert outcome.verdict is Verdict.FAIL and "dev1" in outcome.reason
    assert "for user dev1: /etc/ssh/sshd_config:3: PasswordAuthentication yes" in text


def test_every_account_evaluated_without_a_password_path_passes() -> None:
    facts = with_contexts(
        MATCH_DEPLOY, ("root", settings()), ("deploy", settings()), ("svc", settings())
    )

    outcome = check_ssh_password(facts)

    assert outcome.verdict is Verdict.PASS
    assert "5 connections" in outcome.reason


def test_match_blocks_without_per_account_evaluations_decide_nothing() -> None:
    facts = with_contexts(MATCH_DEPLOY)
    del facts.sections["sshd-contexts"]

    outcome = check_ssh_password(facts)

    assert outcome.verdict is Verdict.ERROR
    assert "Match blocks" in outcome.reason


def test_a_failed_per_account_evaluation_is_an_error_naming_the_account() -> None:
    facts = with_contexts(MATCH_DEPLOY)
    facts.sections["sshd-contexts"] = section(
        "sshd-contexts",
        "@@context user=deploy lport=2222 laddr=10.0.0.5@@\n@@context-failed 255@@\n"
        "'Match RDomain' in configuration but 'rdomain' not in connection test "
        "specification.\n",
    )

    outcome = check_ssh_password(facts)

    assert outcome.verdict is Verdict.ERROR
    assert "user deploy on local port 2222 at 10.0.0.5" in outcome.reason
    assert "rdomain" in outcome.evidence[0].output


def test_root_with_a_password_on_one_local_port_fails_ssh_root() -> None:
    config = (
        "Port 22\nPort 2222\nPermitRootLogin prohibit-password\n"
        "Match LocalPort 2222\n  PermitRootLogin yes\n"
    )
    facts = with_contexts(config)
    facts.sections["sshd-contexts"] = section(
        "sshd-contexts",
        "@@context user=root lport=22 laddr=10.0.0.5@@\n"
        + settings()
        + "@@context user=root lport=2222 laddr=10.0.0.5@@\n"
        + settings(permitrootlogin="yes"),
    )

    outcome = check_ssh_root(facts)

    text = "\n".join(e.render() for e in outcome.evidence)
    assert outcome.verdict is Verdict.FAIL
    assert "user root on local port 2222 at 10.0.0.5" in outcome.reason
    assert "/etc/ssh/sshd_config:5: PermitRootLogin yes" in text
    assert "lport=2222,laddr=10.0.0.5" in text


def test_the_probe_account_is_named_for_every_other_user_it_stands_for() -> None:
    facts = with_sshd(settings(passwordauthentication="yes"))
    facts.sections["sshd-config"] = section(
        "sshd-config",
        factsets.config_dump({"/etc/ssh/sshd_config": "PasswordAuthentication yes\n"}),
    )

    outcome = check_ssh_password(facts)

    text = "\n".join(e.render() for e in outcome.evidence)
    stands_for = f"any other user (probed as {ORDINARY_USER})"
    assert outcome.verdict is Verdict.FAIL
    assert (
        "PasswordAuthentication yes for user root, user admin (the login user), "
        f"{stands_for}" in outcome.reason
    )
    assert f"effective sshd settings for {stands_for}" in text
    assert f"passwordauthentication for {stands_for}: /etc/ssh/sshd_config:1" in text
    assert f"user {ORDINARY_USER}" not in outcome.reason + text


def test_a_pass_names_the_connections_sshd_was_asked_about() -> None:
    outcome = check_ssh_password(with_sshd(settings()))

    assert outcome.verdict is Verdict.PASS
    assert outcome.reason == (
        "sshd accepts no password on any of the 3 connections checked: user root, "
        f"user admin (the login user) and any other user (probed as {ORDINARY_USER})"
    )


@pytest.mark.parametrize(
    ("value", "words"),
    [
        ("without-password", "prohibit-password (sshd -T prints it as without"),
        ("no", "root cannot log in over SSH at all"),
        ("forced-commands-only", "only with a key restricted to one command"),
    ],
)
def test_ssh_root_says_what_its_value_lets_root_do(value: str, words: str) -> None:
    outcome = check_ssh_root(with_sshd(settings(permitrootlogin=value)))

    assert outcome.verdict is Verdict.PASS
    assert words in outcome.reason
