"""AUTHORIZED-KEYS, HOST-KEYS, CREDENTIALS and AWS-KEYS on recorded facts."""

from __future__ import annotations

import base64

import pytest

from pytest_amipolicy.facts import Facts, linux
from pytest_amipolicy.policies.keys import check_authorized_keys, check_host_keys
from pytest_amipolicy.policies.secrets import check_aws_keys, check_credentials
from pytest_amipolicy.verdicts import Verdict
from tests.unit import factsets
from tests.unit.factsets import section

DEPLOY_KEY = factsets.case("keys-authorized-keys2")["files"][
    "/home/deploy/.ssh/authorized_keys2"
].strip()
FORCED = factsets.case("keys-root-forced-command-leftover")["files"][
    "/root/.ssh/authorized_keys"
].strip()
LAUNCH = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIKp1cY3fZ4Zb0nE6XWbq9Qm9o2bBq4b8yJx1q5n1mW7c launch"


def keys_section(*files: tuple[str, str, str]) -> factsets.Section:
    lines = [
        "@@account root 0 /root /bin/bash shell=1 home=1@@",
        "@@akf .ssh/authorized_keys .ssh/authorized_keys2@@",
    ]
    for account, path, text in files:
        lines.append(
            f"@@account {account} 1001 /home/{account} /bin/bash shell=1 home=1@@"
        )
        lines.append("@@akf .ssh/authorized_keys .ssh/authorized_keys2@@")
        lines.append(f"@@keyfile {path}@@")
        lines += [f"{n}:{line}" for n, line in enumerate(text.splitlines(), start=1)]
    return section("authorized-keys", "\n".join(lines) + "\n")


def test_a_key_in_authorized_keys2_fails() -> None:
    facts = factsets.debian(
        authorized_keys=keys_section(
            ("deploy", "/home/deploy/.ssh/authorized_keys2", DEPLOY_KEY)
        )
    )
    facts.launch_public_key = LAUNCH

    outcome = check_authorized_keys(facts)

    assert outcome.verdict is Verdict.FAIL
    assert "SHA256:kokd/c7VOPSLo6kxaQ4WgHveN23on0B0nsPyC5C6vXc" in outcome.reason
    assert "ops@example.test" in outcome.reason


def test_a_forced_command_does_not_excuse_a_baked_key() -> None:
    facts = factsets.debian(
        authorized_keys=keys_section(("root", "/root/.ssh/authorized_keys", FORCED))
    )
    facts.launch_public_key = LAUNCH

    outcome = check_authorized_keys(facts)

    assert outcome.verdict is Verdict.FAIL
    assert "packer_5f0c2a (restricted by command=, still a key that logs in)" in (
        outcome.reason
    )
    assert "echo Please" not in "".join(e.render() for e in outcome.evidence)


def test_the_launch_key_alone_passes_whatever_its_comment() -> None:
    installed = LAUNCH.rsplit(" ", 1)[0] + " some-other-comment"
    facts = factsets.debian(
        authorized_keys=keys_section(
            ("admin", "/home/admin/.ssh/authorized_keys", installed)
        )
    )
    facts.launch_public_key = LAUNCH

    assert check_authorized_keys(facts).verdict is Verdict.PASS


def test_keys_with_an_unknown_launch_key_are_an_error() -> None:
    facts = factsets.debian(
        authorized_keys=keys_section(
            ("admin", "/home/admin/.ssh/authorized_keys", LAUNCH)
        )
    )
    facts.launch_public_key = None

    outcome = check_authorized_keys(facts)

    assert (
        outcome.verdict is Verdict.ERROR and "launch key is unknown" in outcome.reason
    )


def test_the_launch_key_alone_on_the_recorded_machine_passes() -> None:
    assert check_authorized_keys(factsets.debian()).verdict is Verdict.PASS


def test_keys_on_the_recorded_machine_with_an_unknown_launch_key_are_an_error() -> None:
    facts = factsets.debian()
    facts.launch_public_key = None

    assert check_authorized_keys(facts).verdict is Verdict.ERROR


def test_the_recorded_host_keys_were_made_after_boot() -> None:
    assert check_host_keys(factsets.debian()).verdict is Verdict.PASS


def host_keys(key_time: int, boot: int = 1_700_000_000) -> factsets.Section:
    text = (
        f"hostkey {key_time} {key_time} /etc/ssh/ssh_host_ed25519_key\n"
        f"now {boot + 600}\nbtime {boot - 100}\nclk_tck 100\npid1_start_ticks 10000\n"
    )
    return section("host-keys", text)


def test_a_host_key_older_than_boot_was_shipped() -> None:
    outcome = check_host_keys(factsets.debian(host_keys=host_keys(1_600_000_000)))

    assert outcome.verdict is Verdict.FAIL


def test_a_host_key_made_at_boot_passes() -> None:
    assert (
        check_host_keys(factsets.debian(host_keys=host_keys(1_700_000_005))).verdict
        is Verdict.PASS
    )


def test_a_host_key_a_minute_older_than_boot_was_shipped() -> None:
    outcome = check_host_keys(factsets.debian(host_keys=host_keys(1_699_999_940)))

    assert outcome.verdict is Verdict.FAIL
    assert "60 s before PID 1 started: older than this boot" in outcome.reason


def test_a_host_key_a_second_before_boot_is_of_this_boot() -> None:
    outcome = check_host_keys(factsets.debian(host_keys=host_keys(1_699_999_999)))

    assert outcome.verdict is Verdict.PASS
    assert "whole-second times can differ" in outcome.reason


def stepped_clock(key_time: int, run_fs: str = "tmpfs") -> factsets.Section:
    """A boot whose notify socket is 90 s older than PID 1's start as read now."""
    mark = 1_699_999_910
    text = host_keys(key_time).output + (
        f"run_fs {run_fs}\nbootmark {mark} {mark} /run/systemd/notify\n"
    )
    return section("host-keys", text)


def test_a_host_key_made_before_a_clock_step_after_boot_is_of_this_boot() -> None:
    outcome = check_host_keys(factsets.debian(host_keys=stepped_clock(1_699_999_940)))

    (evidence,) = outcome.evidence
    assert outcome.verdict is Verdict.PASS, outcome.reason
    assert "the clock being put forward 90 s since" in outcome.reason
    assert "the clock was put forward that much after boot" in evidence.output


def test_a_host_key_older_than_the_boot_mark_was_shipped() -> None:
    outcome = check_host_keys(factsets.debian(host_keys=stepped_clock(1_699_990_000)))

    assert outcome.verdict is Verdict.FAIL


def test_a_boot_mark_outside_a_tmpfs_run_is_not_trusted() -> None:
    keys = stepped_clock(1_699_999_940, run_fs="ext4")

    outcome = check_host_keys(factsets.debian(host_keys=keys))

    (evidence,) = outcome.evidence
    assert outcome.verdict is Verdict.FAIL
    assert "a clock step since boot could not be seen" in evidence.output


def test_host_keys_without_boot_time_are_an_error() -> None:
    facts = factsets.debian(host_keys=section("host-keys", "hostkey 1 1 /etc/ssh/k\n"))

    assert check_host_keys(facts).verdict is Verdict.ERROR


def secrets(*lines: str, status: int = 0) -> factsets.Section:
    return section(
        "secrets",
        "@@scanned mounts=1 roots= max_kb=1024@@\n"
        + "".join(line + "\n" for line in lines),
        status,
    )


EXAMPLE_ID = "aws-access-key-id\t/usr/lib/python3/dist-packages/exsdk/data/iam/examples-1.json\t1\t1a5d44a2dca19669\tAKIAIOSFODNN7EXAMPLE"
EXAMPLE_SECRET = "aws-secret-access-key\t/usr/lib/python3/dist-packages/exsdk/data/iam/examples-1.json\t1\t78314b11be2e5815\t"


def test_the_sdk_example_key_pair_is_not_a_finding() -> None:
    facts = factsets.debian(secrets=secrets(EXAMPLE_ID, EXAMPLE_SECRET))

    assert check_aws_keys(facts).verdict is Verdict.PASS
    assert check_credentials(facts).verdict is Verdict.PASS


def test_ignored_example_keys_are_named_with_where_they_were_found() -> None:
    facts = factsets.debian(secrets=secrets(EXAMPLE_ID, EXAMPLE_SECRET))

    outcome = check_aws_keys(facts)

    (ignored,) = [e for e in outcome.evidence if "example key" in e.label]
    assert ignored.label == "2 AWS documentation example keys ignored"
    assert ignored.output.endswith(
        "found at:\n/usr/lib/python3/dist-packages/exsdk/data/iam/examples-1.json:1"
    )


def test_the_planted_keys_of_the_recorded_scan_are_found() -> None:
    facts = factsets.debian()

    assert check_aws_keys(facts).verdict is Verdict.FAIL
    assert check_credentials(facts).verdict is Verdict.FAIL


def test_ssh_host_keys_are_not_credentials() -> None:
    facts = factsets.debian(
        secrets=secrets(
            "private-key\t/etc/ssh/ssh_host_ed25519_key\t1\t9c5fe00525463834\t"
        )
    )

    assert check_credentials(facts).verdict is Verdict.PASS


def test_an_aws_key_in_a_service_environment_fails() -> None:
    env = section(
        "service-env",
        "aws-env\t/etc/default/app\t3\t0123456789abcdef\tAKIAZZZZZZZZZZZZZZZ1\tAWS_ACCESS_KEY_ID\n",
    )
    facts = factsets.debian(secrets=secrets(), service_env=env)

    outcome = check_aws_keys(facts)

    assert outcome.verdict is Verdict.FAIL and "/etc/default/app:3" in outcome.reason


def test_a_scan_that_ran_out_of_time_without_findings_is_an_error() -> None:
    facts = factsets.debian(
        secrets=secrets(status=124), service_env=section("service-env")
    )

    assert check_credentials(facts).verdict is Verdict.ERROR


def test_secret_findings_carry_fingerprints_only() -> None:
    found = linux.findings(linux.parse(factsets.real_output())["secrets"])

    assert found and all(len(f.fingerprint) == 16 for f in found)
    assert "abcdEFGHijklMNOPqrstUVWXyz0123456789ABCD" not in factsets.real_output()


def test_a_key_file_that_cannot_be_read_is_an_error() -> None:
    text = (
        keys_section().output
        + "@@keyfile-unreadable /home/deploy/.ssh/authorized_keys@@\n"
    )
    facts = factsets.debian(authorized_keys=section("authorized-keys", text))
    facts.launch_public_key = LAUNCH

    outcome = check_authorized_keys(facts)

    assert outcome.verdict is Verdict.ERROR
    assert "/home/deploy/.ssh/authorized_keys" in outcome.reason


def test_default_key_files_read_only_because_sshd_said_nothing_decide_nothing() -> None:
    text = "@@akf-default@@\n" + keys_section().output
    facts = factsets.debian(authorized_keys=section("authorized-keys", text))

    outcome = check_authorized_keys(facts)

    assert outcome.verdict is Verdict.ERROR
    assert "AuthorizedKeysFile" in outcome.reason


def test_a_baked_key_in_a_default_file_fails_even_when_sshd_said_nothing() -> None:
    found = keys_section(("root", "/root/.ssh/authorized_keys", FORCED)).output
    facts = factsets.debian(
        authorized_keys=section("authorized-keys", "@@akf-default@@\n" + found)
    )
    facts.launch_public_key = LAUNCH

    assert check_authorized_keys(facts).verdict is Verdict.FAIL


def test_a_failed_key_listing_is_an_error() -> None:
    facts = factsets.debian(authorized_keys=section("authorized-keys", "", 2))

    assert check_authorized_keys(facts).verdict is Verdict.ERROR


def test_host_key_times_without_birth_times_use_the_modification_time() -> None:
    boot = 1_700_000_000
    text = (
        f"hostkey {boot - 90_000} - /etc/ssh/ssh_host_ed25519_key\n"
        f"hostkey {boot + 5} ? /etc/ssh/ssh_host_rsa_key\n"
        f"btime {boot - 100}\nclk_tck 100\npid1_start_ticks 10000\n"
    )

    outcome = check_host_keys(factsets.debian(host_keys=section("host-keys", text)))

    assert outcome.verdict is Verdict.FAIL
    assert "ssh_host_ed25519_key" in outcome.reason
    assert "ssh_host_rsa_key" not in outcome.reason


def test_no_host_key_at_all_is_an_error() -> None:
    text = "now 1\nbtime 1\nclk_tck 100\npid1_start_ticks 10\n"

    outcome = check_host_keys(factsets.debian(host_keys=section("host-keys", text)))

    assert outcome.verdict is Verdict.ERROR


def test_other_clouds_credential_files_are_credentials_not_aws_keys() -> None:
    found = "cloud-credentials-file\t/root/.config/gcloud/credentials.db\t0\t\t"
    facts = factsets.debian(secrets=secrets(found), service_env=section("service-env"))

    assert check_credentials(facts).verdict is Verdict.FAIL
    assert check_aws_keys(facts).verdict is Verdict.PASS


def test_the_example_key_in_a_service_environment_is_not_a_finding() -> None:
    env = section(
        "service-env",
        "aws-env\t/etc/default/app\t3\t1a5d44a2dca19669\tAKIAIOSFODNN7EXAMPLE\tAWS_ACCESS_KEY_ID\n",
    )
    facts = factsets.debian(secrets=secrets(), service_env=env)

    assert check_aws_keys(facts).verdict is Verdict.PASS


def ssh_string(data: bytes) -> bytes:
    return len(data).to_bytes(4, "big") + data


def blob(*fields: bytes) -> str:
    return base64.b64encode(b"".join(ssh_string(f) for f in fields)).decode()


RSA_BLOB = blob(b"ssh-rsa", b"\x01\x00\x01", b"\x00" + bytes(range(1, 129)) * 2)
SK_BLOB = blob(
    b"sk-ecdsa-sha2-nistp256@openssh.com", b"nistp256", b"\x04" + bytes(64), b"ssh:"
)


def with_keys(text: str, path: str = "/home/deploy/.ssh/authorized_keys") -> Facts:
    facts = factsets.debian(authorized_keys=keys_section(("deploy", path, text)))
    facts.launch_public_key = LAUNCH
    return facts


@pytest.mark.parametrize(
    ("line", "kind"),
    [
        (f"rsa-sha2-512 {RSA_BLOB} ops@example.test", "ssh-rsa"),
        (f"rsa-sha2-256 {RSA_BLOB}", "ssh-rsa"),
        (
            f"webauthn-sk-ecdsa-sha2-nistp256@openssh.com {SK_BLOB} yubikey",
            "sk-ecdsa-sha2-nistp256@openssh.com",
        ),
        (f'restrict,command="/bin/true" rsa-sha2-512 {RSA_BLOB}', "ssh-rsa"),
        (f"some-future-type {RSA_BLOB}", "ssh-rsa"),
    ],
)
def test_a_key_under_any_type_token_sshd_accepts_is_found(line: str, kind: str) -> None:
    outcome = check_authorized_keys(with_keys(line))

    assert outcome.verdict is Verdict.FAIL
    assert f"(deploy) {kind} SHA256:" in outcome.reason


def test_the_launch_key_under_another_type_token_is_still_the_launch_key() -> None:
    facts = with_keys(f"rsa-sha2-512 {RSA_BLOB} written-by-hand")
    facts.launch_public_key = f"ssh-rsa {RSA_BLOB} launch"

    assert check_authorized_keys(facts).verdict is Verdict.PASS


def test_a_line_without_key_material_is_not_a_key() -> None:
    facts = with_keys("rsa-sha2-512 not-base64 comment\nssh-ed25519\n")

    assert check_authorized_keys(facts).verdict is Verdict.PASS


def keys_with(extra: str) -> factsets.Section:
    return section("authorized-keys", keys_section().output + extra)


def sshd_with(**values: str) -> factsets.Section:
    root = linux.parse(factsets.real_output())["sshd-root"]
    lines = [
        line for line in root.output.splitlines() if line.split(" ", 1)[0] not in values
    ]
    lines += [f"{key} {value}" for key, value in values.items()]
    return section("sshd-root", "\n".join(lines) + "\n")


def test_a_trusted_user_ca_key_fails_as_a_baked_way_in() -> None:
    ca = f"@@user-ca /etc/ssh/user_ca.pub@@\n1:ssh-rsa {RSA_BLOB} build-ca\n"
    facts = factsets.debian(
        authorized_keys=keys_with(ca),
        sshd_root=sshd_with(trustedusercakeys="/etc/ssh/user_ca.pub"),
    )

    outcome = check_authorized_keys(facts)

    assert outcome.verdict is Verdict.FAIL
    assert "TrustedUserCAKeys /etc/ssh/user_ca.pub:1 ssh-rsa SHA256:" in outcome.reason


def test_a_trusted_user_ca_file_that_does_not_exist_lets_nobody_in() -> None:
    facts = factsets.debian(
        authorized_keys=keys_with("@@user-ca-missing /etc/ssh/user_ca.pub@@\n"),
        sshd_root=sshd_with(trustedusercakeys="/etc/ssh/user_ca.pub"),
    )

    outcome = check_authorized_keys(facts)

    assert outcome.verdict is Verdict.PASS
    assert any("/etc/ssh/user_ca.pub (absent)" in e.output for e in outcome.evidence)


def test_a_trusted_user_ca_file_that_cannot_be_read_is_an_error() -> None:
    facts = factsets.debian(
        authorized_keys=keys_with("@@user-ca-unreadable /etc/ssh/user_ca.pub@@\n")
    )

    outcome = check_authorized_keys(facts)

    assert outcome.verdict is Verdict.ERROR
    assert "/etc/ssh/user_ca.pub" in outcome.reason


def test_an_unknown_authorized_keys_command_is_an_error_naming_it() -> None:
    facts = factsets.debian(
        sshd_root=sshd_with(
            authorizedkeyscommand="/usr/local/bin/keys-from-ldap %u",
            authorizedkeyscommanduser="nobody",
        )
    )

    outcome = check_authorized_keys(facts)

    assert outcome.verdict is Verdict.ERROR
    assert "/usr/local/bin/keys-from-ldap %u" in outcome.reason


@pytest.mark.parametrize(
    "command",
    [
        "/opt/aws/bin/eic_run_authorized_keys %u %f",
        "/usr/share/ec2-instance-connect/eic_run_authorized_keys %u %f",
    ],
)
def test_ec2_instance_connect_as_authorized_keys_command_passes(command: str) -> None:
    facts = factsets.debian(
        sshd_root=sshd_with(
            authorizedkeyscommand=command,
            authorizedkeyscommanduser="ec2-instance-connect",
        )
    )

    outcome = check_authorized_keys(facts)

    assert outcome.verdict is Verdict.PASS
    assert any("EC2 Instance Connect" in e.output for e in outcome.evidence)


def test_an_authorized_keys_command_set_in_a_match_block_counts() -> None:
    facts = factsets.debian(
        sshd_contexts=factsets.contexts(
            ("deploy", "authorizedkeyscommand /usr/local/bin/vault-ssh-keys %u\n")
        )
    )

    outcome = check_authorized_keys(facts)

    assert outcome.verdict is Verdict.ERROR
    assert "vault-ssh-keys" in outcome.reason


def test_a_baked_key_fails_even_when_an_unknown_command_adds_more() -> None:
    facts = with_keys(DEPLOY_KEY)
    facts.sections["sshd-root"] = sshd_with(
        authorizedkeyscommand="/usr/local/bin/keys %u",
        authorizedkeyscommanduser="nobody",
    )

    assert check_authorized_keys(facts).verdict is Verdict.FAIL


def test_a_token_set_for_a_service_is_a_credential_not_an_aws_key() -> None:
    env = section(
        "service-env",
        "service-secret\t/etc/systemd/system/app.service\t4\t0123456789abcdef\t\tAPI_TOKEN\n",
    )
    facts = factsets.debian(secrets=secrets(), service_env=env)

    outcome = check_credentials(facts)

    assert outcome.verdict is Verdict.FAIL
    assert (
        "secret variable set for a service: API_TOKEN at "
        "/etc/systemd/system/app.service:4 (sha256 0123456789abcdef)" in outcome.reason
    )
    assert check_aws_keys(facts).verdict is Verdict.PASS


def test_a_password_typed_in_a_history_names_how_it_was_typed() -> None:
    found = "history-secret\t/root/.bash_history\t12\tfedcba9876543210\t\tsshpass -p"
    facts = factsets.debian(secrets=secrets(found), service_env=section("service-env"))

    outcome = check_credentials(facts)

    assert outcome.verdict is Verdict.FAIL
    assert (
        "secret typed in a shell history: sshpass -p at /root/.bash_history:12"
        in outcome.reason
    )


AWS_FILE = "aws-credentials-file\t/root/.aws/credentials\t0\t\t"


def test_a_clean_credentials_pass_says_aws_keys_are_judged_by_aws_keys() -> None:
    facts = factsets.debian(secrets=secrets(), service_env=section("service-env"))

    outcome = check_credentials(facts)

    assert outcome.verdict is Verdict.PASS
    assert "private key" in outcome.reason
    assert "AWS access keys are judged by AWS-KEYS" in outcome.reason
    assert "(s)" not in outcome.reason


def test_an_aws_credentials_file_is_a_cloud_credential_and_an_aws_key_finding() -> None:
    facts = factsets.debian(
        secrets=secrets(AWS_FILE), service_env=section("service-env")
    )

    credentials, aws_keys = check_credentials(facts), check_aws_keys(facts)

    assert credentials.verdict is Verdict.FAIL
    assert aws_keys.verdict is Verdict.FAIL
    for outcome in (credentials, aws_keys):
        assert outcome.findings == ("AWS credentials file at /root/.aws/credentials",)


def test_findings_name_their_kind_in_words_and_show_no_empty_fingerprint() -> None:
    facts = factsets.debian()

    outcome = check_aws_keys(facts)

    assert outcome.findings == (
        "AWS access key ID AKIAZZZZZZZZZZZZZZZ1 at "
        "/srv/amipolicy-plant/.aws/credentials:2 (sha256 ffece9d484dff3a0)",
        "AWS secret access key at /srv/amipolicy-plant/.aws/credentials:3 "
        "(sha256 2544361b005e96a4)",
    )
    assert outcome.reason.startswith("2 AWS keys or credentials files found on disk")


def scanned(facts: Facts) -> str:
    """The text of the evidence saying what the secrets scan read."""
    outcome = check_credentials(facts)
    return next(
        e.output for e in outcome.evidence if e.label == "what the secrets scan read"
    )


def test_the_recorded_scan_says_in_words_which_directories_it_read() -> None:
    text = scanned(factsets.debian())

    assert "mounted filesystems: not read, only the directories below" in text
    assert "directories read: /srv/amipolicy-plant" in text
    assert "3 files of at most 1024 KiB searched (larger files are not read)" in text
    assert "within its 60 s deadline" in text
    assert "roots=" not in text and "mounts=" not in text


def test_a_whole_machine_scan_names_its_filesystems_and_the_pseudo_ones_it_skipped() -> (
    None
):
    scan = section(
        "secrets",
        "@@truncated after 60s@@\n"
        "@@scan-pseudo /proc proc@@\n@@scan-pseudo /run tmpfs@@\n"
        "@@scan-pseudo /dev/shm tmpfs@@\n"
        "@@scan-mount / ext4@@\n@@scan-mount /boot/efi vfat@@\n"
        "@@scanned mounts=1 max_kb=1024 timeout=60 files=81234 candidates=12 "
        "seconds=60@@\n",
        124,
    )

    text = scanned(factsets.debian(secrets=scan, service_env=section("service-env")))

    assert "filesystems read: / (ext4), /boot/efi (vfat)" in text
    assert "skipped: 3 pseudo-filesystems (kernel, memory and network " in text
    assert "filesystems: proc, tmpfs)" in text
    assert "81234 files of at most 1024 KiB searched" in text
    assert "12 matched a secret's pattern" in text
    assert "the 60 s deadline was hit" in text


def test_the_scan_names_the_mounts_it_left_out_and_the_extra_places_it_read() -> None:
    scan = section(
        "secrets",
        "@@scan-mount / overlay@@\n"
        "@@scan-inside-skipped /run/host/incoming ext4@@\n"
        "@@scan-volumes /var/lib/docker/volumes@@\n"
        "@@scan-doc /usr/share/doc/acme-agent@@\n"
        "@@scanned mounts=1 max_kb=1024 timeout=60 files=10 candidates=0 "
        "seconds=1@@\n",
    )

    text = scanned(factsets.debian(secrets=scan, service_env=section("service-env")))

    assert "skipped: 1 mount inside /proc, /sys, /dev or /run" in text
    assert "(/run/host): /run/host/incoming" in text
    assert "container volumes read: /var/lib/docker/volumes" in text
    assert "documentation no package owns, read: /usr/share/doc/acme-agent" in text


def test_host_key_evidence_gives_the_times_in_words_against_pid_1() -> None:
    outcome = check_host_keys(factsets.debian(host_keys=host_keys(1_699_996_400)))

    (evidence,) = outcome.evidence
    assert outcome.verdict is Verdict.FAIL
    assert "PID 1 started 2023-11-14 22:13:20 UTC" in evidence.output
    assert (
        "/etc/ssh/ssh_host_ed25519_key: made 2023-11-14 21:13:20 UTC, 60 min before "
        "PID 1 started" in evidence.output
    )
    assert "hostkey 1699996400 1699996400 /etc/ssh/ssh_host_ed25519_key" in (
        evidence.output
    )


def test_the_launch_key_is_marked_among_the_keys_sshd_would_accept() -> None:
    outcome = check_authorized_keys(factsets.debian())

    (evidence,) = outcome.evidence
    assert outcome.verdict is Verdict.PASS
    assert "/home/admin/.ssh/authorized_keys:1 (admin) ssh-ed25519 SHA256:" in (
        evidence.output
    )
    assert evidence.output.splitlines()[0].endswith(" (the launch key)")
    assert "searched: .ssh/authorized_keys .ssh/authorized_keys2 of " in (
        evidence.output
    )
