"""Bad option values end in one clear usage error that names the value and the fix."""

from __future__ import annotations

import pytest

from pytest_amipolicy.session import SESSION_KEY

BAD_VALUES = [
    (["--ami=ami-123"], "--ami='ami-123' is not an AMI id"),
    (["--ami=ami-0123456789ABCDEF0"], "8 or 17"),
    (["--ami=i-0123456789abcdef0"], "is not an AMI id"),
    (["--ami-host=admin@host"], "is not a host spec"),
    (["--ami-host=ftp://host"], "is not a host spec"),
    (["--ami-host=ssh://admin@host:99999"], "port that is not a number"),
    (["--ami-host=ssh://admin@host:70000"], "'ssh://admin@host:70000' has a port"),
    (["--ami-host=ssh://admin@host:0"], "'ssh://admin@host:0' has port 0"),
    (["--ami-host=ssh://[::1"], "--ami-host='ssh://[[]::1' is not a host spec"),
    (["--ami-host=ssh://h?timeout=abc"], "timeout='abc' must be a positive number"),
    (["--ami-host=ssh://h?timeout=inf"], "timeout='inf' must be a positive number"),
    (["--ami-host=ssh://h?timeout=0"], "timeout='0' must be a positive number"),
    (["--ami-host=ssh://h?sudo=true"], "sudo is not an option the plugin reads"),
    (
        ["--ami-host=ssh://h?ssh_config=/nonexistent/config"],
        "the ssh_config file '/nonexistent/config' does not exist",
    ),
    (
        ["--ami-host=winrm://Administrator:pw@h?no_ssl=maybe"],
        "no_ssl='maybe' must be true or false",
    ),
    (
        ["--ami-host=winrm://Administrator:pw@h?read_timeout_sec=-1"],
        "read_timeout_sec='-1' must be a positive number",
    ),
    (
        ["--ami-host=winrm://Administrator:pass/word@h"],
        "has a port that is not a number * in a password as %XX",
    ),
    (
        ["--ami-host=ssh://admin@host?ssh_identity_file=/nonexistent/key"],
        "the key file '/nonexistent/key' does not exist",
    ),
    (
        ["--ami-host=ssh://h", "--ami-key=/nonexistent/id"],
        "--ami-key='/nonexistent/id'",
    ),
    (
        ["--ami-host=ssh://h", "--ami-policy=NOPE"],
        "--ami-policy='NOPE' matches no policy",
    ),
    (["--ami-host=ssh://h", "--ami-region=mars"], "--ami-region='mars'"),
    (["--ami-host=ssh://h", "--ami-subnet=sn-1"], "--ami-subnet='sn-1'"),
    (["--ami-host=ssh://h", "--ami-ingress-cidr=everyone"], "is not a CIDR block"),
    (["--ami-host=ssh://h", "--ami-check-date=tomorrow"], "YYYY-MM-DD"),
    (
        ["--ami-host=ssh://h", "--ami-check-date="],
        "--ami-check-date was given an empty",
    ),
    (["--ami="], "--ami was given an empty value"),
    (["--ami-host=ssh://h", "--ami-policy=,"], "--ami-policy was given an empty"),
    (
        ["--ami-image=/nonexistent/tree"],
        "--ami-image='/nonexistent/tree' does not exist",
    ),
    (["--ami-host=winrm://Administrator@host"], "has no password"),
    (["--ami-host=ssh://h", "--ami-key=/"], "--ami-key='/' is a directory"),
    (
        ["--ami=ami-0123456789abcdef0", "--ami-key=/etc/hostname"],
        "--ami-key='/etc/hostname' applies to --ami-host only, and no --ami-host "
        "was given * drop --ami-key, or add --ami-host=ssh://user@host.",
    ),
    (["--ami-key=/etc/hostname"], "--ami-key='/etc/hostname' applies to --ami-host"),
    (
        ["--ami-host=ssh://h", "--ami-evidence=/proc/nope/ev.json"],
        "--ami-evidence='/proc/nope/ev.json': cannot write in '/proc'",
    ),
    (
        ["--ami-host=ssh://h", "--ami-evidence=/etc/hostname/ev.json"],
        "'/etc/hostname' is a file, not a folder",
    ),
    (
        ["--ami-host=ssh://h", "--ami-evidence=/proc/ev.json"],
        "--ami-evidence='/proc/ev.json': cannot write in '/proc'",
    ),
    (["--ami-host=ssh://h", "--ami-evidence=/tmp"], "--ami-evidence='/tmp' is a dir"),
    (["--ami-host=ssh://h", "--ami-evidence="], "--ami-evidence was given an empty"),
    (["--ami-host=ssh://h", "--ami-ssh-timeout=soon"], "--ami-ssh-timeout='soon'"),
    (["--ami-host=ssh://h", "--ami-boot-timeout=nan"], "must be a positive number"),
    (["--ami-host=ssh://h", "--ami-boot-timeout=-5"], "--ami-boot-timeout='-5'"),
]


@pytest.mark.parametrize(("args", "message"), BAD_VALUES)
def test_a_bad_value_is_a_usage_error_naming_it(
    pytester: pytest.Pytester, args: list[str], message: str
) -> None:
    result = pytester.runpytest(*args)

    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([f"ERROR: *{message}*"])
    assert "Traceback" not in result.stderr.str()


def test_an_unknown_policy_error_lists_the_known_ids(pytester: pytest.Pytester) -> None:
    result = pytester.runpytest("--ami-host=ssh://h", "--ami-policy=SSH-PASSWROD")

    result.stderr.fnmatch_lines(["*SSH-PASSWORD*SSH-ROOT*"])


def test_without_a_target_the_plugin_collects_nothing(
    pytester: pytest.Pytester,
) -> None:
    result = pytester.runpytest()

    assert result.ret == pytest.ExitCode.NO_TESTS_COLLECTED


def test_one_item_per_target_and_policy_with_readable_ids(
    pytester: pytest.Pytester,
) -> None:
    result = pytester.runpytest(
        "--collect-only",
        "-q",
        "--ami-host=ssh://admin@192.0.2.10",
        "--ami-host=ssh://admin@192.0.2.11:2222",
        "--ami-policy=SSH-*",
    )

    result.stdout.fnmatch_lines(
        [
            "amipolicy::policy[[]ssh://admin@192.0.2.10-SSH-PASSWORD[]]",
            "amipolicy::policy[[]ssh://admin@192.0.2.10-SSH-ROOT[]]",
            "amipolicy::policy[[]ssh://admin@192.0.2.11:2222-SSH-PASSWORD[]]",
            "amipolicy::policy[[]ssh://admin@192.0.2.11:2222-SSH-ROOT[]]",
        ]
    )


def test_policies_can_be_chosen_by_glob_and_comma_list(
    pytester: pytest.Pytester,
) -> None:
    result = pytester.runpytest(
        "--collect-only", "-q", "--ami-host=ssh://h", "--ami-policy=SSH-ROOT,SUDO"
    )

    result.stdout.fnmatch_lines(["*SSH-ROOT*", "*SUDO*", "2 tests collected*"])


def test_a_target_named_twice_is_checked_once(pytester: pytest.Pytester) -> None:
    result = pytester.runpytest(
        "--collect-only",
        "-q",
        "--ami-host=ssh://h",
        "--ami-host=ssh://h",
        "--ami-policy=SUDO",
    )

    result.stdout.fnmatch_lines(["1 test collected*"])


def test_the_header_names_the_targets_and_the_check_date(
    pytester: pytest.Pytester,
) -> None:
    result = pytester.runpytest(
        "--collect-only", "--ami-host=ssh://h", "--ami-check-date=2025-01-31"
    )

    result.stdout.fnmatch_lines(
        ["amipolicy *: targets ssh://h", "amipolicy: * policies, check date 2025-01-31"]
    )


def test_an_ami_without_any_configured_region_is_a_usage_error(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    empty = pytester.path / "aws-config"
    empty.write_text("")
    for name in ("AWS_DEFAULT_REGION", "AWS_REGION", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(empty))

    result = pytester.runpytest("--ami=ami-0123456789abcdef0")

    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        ["ERROR: --ami needs an AWS region*--ami-region=REGION*"]
    )


def test_a_timeout_option_wins_over_its_ini_key(pytester: pytest.Pytester) -> None:
    pytester.makeini(
        "[pytest]\namipolicy_ssh_timeout = 5\namipolicy_boot_timeout = 9\n"
    )

    config = pytester.parseconfigure("--ami-host=ssh://h", "--ami-ssh-timeout=7")

    settings = config.stash[SESSION_KEY].settings
    assert (settings.ssh_timeout, settings.boot_timeout) == (7.0, 9.0)


BAD_INI_VALUES = [
    ("amipolicy_region = mars", "amipolicy_region='mars' is not an AWS region"),
    ("amipolicy_subnet = sn-1", "amipolicy_subnet='sn-1' is not a subnet id"),
    ("amipolicy_ingress_cidr = everyone", "amipolicy_ingress_cidr='everyone' is not"),
    ("amipolicy_connect = both", "amipolicy_connect='both' must be"),
    ("amipolicy_inspector_severity = dire", "amipolicy_inspector_severity='dire'"),
    ("amipolicy_product = 12345", "amipolicy_product='12345' is not"),
    ("amipolicy_policies = NOPE", "amipolicy_policies='NOPE' matches no policy"),
    ("amipolicy_ssh_timeout = soon", "amipolicy_ssh_timeout='soon' must be"),
]


@pytest.mark.parametrize(("line", "message"), BAD_INI_VALUES)
def test_a_bad_ini_value_is_a_usage_error_naming_the_ini_key(
    pytester: pytest.Pytester, line: str, message: str
) -> None:
    pytester.makeini(f"[pytest]\n{line}\n")

    result = pytester.runpytest("--ami-host=ssh://h")

    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([f"ERROR: {message}*"])


def test_a_bad_option_is_named_as_the_option_even_with_the_ini_key_set(
    pytester: pytest.Pytester,
) -> None:
    pytester.makeini("[pytest]\namipolicy_region = us-east-1\n")

    result = pytester.runpytest("--ami-host=ssh://h", "--ami-region=mars")

    result.stderr.fnmatch_lines(["ERROR: --ami-region='mars' is not*"])


POLICY_LISTS = [
    pytest.param("amipolicy_policies = SSH-*, EOL", [], id="ini-comma-space"),
    pytest.param("amipolicy_policies = SSH-*,EOL", [], id="ini-comma"),
    pytest.param("amipolicy_policies =\n    SSH-*\n    EOL", [], id="ini-lines"),
    pytest.param("amipolicy_policies =\n    SSH-*,\n    EOL,", [], id="ini-both"),
    pytest.param("", ["--ami-policy=SSH-*, EOL"], id="option-comma-space"),
    pytest.param("", ["--ami-policy=SSH-*,\nEOL"], id="option-lines"),
    pytest.param("", ["--ami-policy= SSH-* ", "--ami-policy=EOL"], id="repeated"),
]


@pytest.mark.parametrize(("ini", "args"), POLICY_LISTS)
def test_a_policy_list_may_be_separated_by_commas_spaces_or_lines(
    pytester: pytest.Pytester, ini: str, args: list[str]
) -> None:
    pytester.makeini(f"[pytest]\n{ini}\n")

    result = pytester.runpytest("--collect-only", "-q", "--ami-host=ssh://h", *args)

    result.stdout.fnmatch_lines(
        ["*-SSH-PASSWORD]", "*-SSH-ROOT]", "*-EOL]", "3 tests collected*"]
    )


BAD_POLICY_LISTS = [
    pytest.param(
        "amipolicy_policies = SSH-*, NOPE",
        [],
        "amipolicy_policies='NOPE' matches no policy",
        id="ini-unknown",
    ),
    pytest.param(
        "",
        ["--ami-policy=SSH-*, NOPE"],
        "--ami-policy='NOPE' matches no policy",
        id="option-unknown",
    ),
    pytest.param(
        "amipolicy_policies = ,", [], "amipolicy_policies names no policy", id="ini"
    ),
    pytest.param(
        "", ["--ami-policy= ,\n"], "--ami-policy was given an empty value", id="option"
    ),
]


@pytest.mark.parametrize(("ini", "args", "message"), BAD_POLICY_LISTS)
def test_an_unknown_or_empty_entry_of_a_policy_list_is_still_a_usage_error(
    pytester: pytest.Pytester, ini: str, args: list[str], message: str
) -> None:
    pytester.makeini(f"[pytest]\n{ini}\n")

    result = pytester.runpytest("--ami-host=ssh://h", *args)

    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([f"ERROR: {message}*"])


def test_a_login_user_that_a_host_spec_overrides_warns_naming_both(
    pytester: pytest.Pytester,
) -> None:
    result = pytester.runpytest(
        "--collect-only", "-q", "--ami-host=ssh://root@192.0.2.7", "--ami-user=bob"
    )

    assert result.ret == pytest.ExitCode.OK
    result.stdout.fnmatch_lines(
        [
            "*--ami-user='bob' does not apply to --ami-host='ssh://root@192.0.2.7', "
            "which logs in as the user its spec names ('root')*"
        ]
    )


def test_a_login_user_for_a_host_spec_without_one_does_not_warn(
    pytester: pytest.Pytester,
) -> None:
    result = pytester.runpytest(
        "--collect-only", "-q", "--ami-host=ssh://192.0.2.7", "--ami-user=bob"
    )

    assert "does not apply" not in result.stdout.str()


@pytest.mark.parametrize("user", ["", "bad;user", "two words", "-oProxyCommand=x"])
def test_a_login_user_that_is_no_user_name_is_a_usage_error(
    pytester: pytest.Pytester, user: str
) -> None:
    result = pytester.runpytest("--ami-host=ssh://192.0.2.7", f"--ami-user={user}")

    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        [f"ERROR: --ami-user={user!r} is not a login user name: *"]
    )
