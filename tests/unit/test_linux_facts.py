"""The Linux fact script, its parser, and the sudo and slow-fact plumbing."""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from pytest_amipolicy.errors import AmiPolicyError
from pytest_amipolicy.facts import MissingFact, linux
from tests.unit import factsets

FAST_SECTIONS = {
    "sudo", "sudo-list", "os-release", "uname", "sshd-root", "sshd-login",
    "sshd-user", "sshd-contexts", "sshd-config", "user-groups", "cloud-init",
    "passwd", "shadow",
    "authorized-keys", "host-keys", "secrets", "service-env", "mounts", "lsblk",
    "dmcrypt", "fscrypt", "listeners", "remote-agents", "region",
}  # fmt: skip


def test_parser_finds_every_section_in_real_script_output() -> None:
    sections = linux.parse(factsets.real_output())

    assert set(sections) >= FAST_SECTIONS
    assert sections["os-release"].command == "cat /etc/os-release"
    assert "ID=debian" in sections["os-release"].output
    assert sections["sshd-root"].ok


def test_parser_gives_an_unterminated_section_status_minus_one() -> None:
    output = "@@amipolicy-begin passwd@@ cat\nroot:x:0:0::/root:/bin/sh\n"

    sections = linux.parse(output)

    assert sections["passwd"].status == -1
    assert sections["passwd"].output == "root:x:0:0::/root:/bin/sh\n"


def test_a_marker_lookalike_in_a_file_does_not_end_a_section() -> None:
    output = (
        "@@amipolicy-begin sshd-config@@ dump\n"
        " @@amipolicy-end sshd-config 0@@\n"
        "PasswordAuthentication yes\n"
        "@@amipolicy-end sshd-config 0@@\n"
    )

    section = linux.parse(output)["sshd-config"]

    assert section.output.splitlines() == [
        "@@amipolicy-end sshd-config 0@@",
        "PasswordAuthentication yes",
    ]


def test_gather_passes_the_script_to_sudo_as_one_quoted_argument() -> None:
    commands: list[str] = []

    def run(command: str) -> tuple[int, str, str]:
        commands.append(command)
        return (
            0,
            "@@amipolicy-begin uname@@ uname\nLinux\n@@amipolicy-end uname 0@@\n",
            "",
        )

    sections = linux.gather(
        run, sudo=True, user="admin", scan_roots=["/srv/a", "/srv/b"]
    )

    words = shlex.split(commands[0])
    assert words[:4] == ["sudo", "-n", "sh", "-c"]
    assert words[4] == linux.SCRIPT
    assert words[5:] == [
        "amipolicy", "mode=fast", "user=admin", "roots=/srv/a:/srv/b",
        "max_kb=1024", "scan_timeout=60", "mounts=1",
    ]  # fmt: skip
    assert sections["uname"].output == "Linux\n"


def test_gather_continues_without_root_when_sudo_refuses() -> None:
    commands: list[str] = []

    def run(command: str) -> tuple[int, str, str]:
        commands.append(command)
        if command.startswith("sudo "):
            return 1, "", "sudo: a password is required\n"
        return (
            0,
            "@@amipolicy-begin passwd@@ cat\nroot:@x:0:0::/root:/bin/sh\n@@amipolicy-end passwd 0@@\n",
            "",
        )

    sections = linux.gather(run, sudo=True)

    assert len(commands) == 2 and not commands[1].startswith("sudo")
    assert sections["sudo"].status == 1
    assert "a password is required" in sections["sudo"].output
    assert "passwd" in sections


def test_a_script_that_prints_nothing_through_sudo_and_succeeds_is_no_refusal() -> None:
    commands: list[str] = []

    def run(command: str) -> tuple[int, str, str]:
        commands.append(command)
        return 0, "", ""

    with pytest.raises(AmiPolicyError, match="printed no fact .exit status 0"):
        linux.gather(run, sudo=True)
    assert len(commands) == 1


def test_a_script_that_prints_nothing_without_sudo_raises_too() -> None:
    with pytest.raises(AmiPolicyError, match="exit status 2, sh: 1: cannot fork"):
        linux.gather(lambda command: (2, "", "sh: 1: cannot fork\n"), sudo=False)


def test_a_refused_sudo_followed_by_an_empty_unprivileged_run_raises() -> None:
    def run(command: str) -> tuple[int, str, str]:
        if command.startswith("sudo "):
            return 1, "", "sudo: a password is required\n"
        return 0, "", ""

    with pytest.raises(AmiPolicyError, match="printed no fact"):
        linux.gather(run, sudo=True)


def test_load_slow_returns_the_requested_section() -> None:
    def run(command: str) -> tuple[int, str, str]:
        assert "mode=updates" in shlex.split(command)
        return (
            0,
            "@@amipolicy-begin updates@@ check_updates\nmanager: apt\n@@amipolicy-end updates 0@@\n",
            "",
        )

    section = linux.load_slow(run, "updates", sudo=False)

    assert section.output == "manager: apt\n"


def test_load_slow_raises_missing_fact_when_the_script_does_not_run() -> None:
    def run(command: str) -> tuple[int, str, str]:
        return 1, "", "sudo: a terminal is required\n"

    with pytest.raises(MissingFact, match="terminal is required"):
        linux.load_slow(run, "malware", sudo=True)


def test_load_slow_passes_the_install_flag_to_the_malware_scan() -> None:
    seen: list[list[str]] = []

    def run(command: str) -> tuple[int, str, str]:
        seen.append(shlex.split(command))
        return 0, "@@amipolicy-begin malware@@ scan\n@@amipolicy-end malware 77@@\n", ""

    linux.load_slow(run, "malware", sudo=False, install_scanner=True)

    assert "install=1" in seen[0] and "mode=malware" in seen[0]


@pytest.mark.parametrize(
    ("field", "meaning"),
    [
        ("", "@blank"),
        ("!", "@locked"),
        ("!!", "@locked"),
        ("*", "@locked"),
        ("!*", "@locked"),
        ("*LOCK*", "@locked"),
        ("!locked", "@locked"),
        ("!$6$salt$hash", "@locked"),
        ("x", "@x"),
        ("$6$rounds=5000$abc$def", "@hash/6"),
        ("$y$j9T$abc$def", "@hash/y"),
        ("Qx7bLm2PzR9tE", "@hash/des"),
        ("NP", "@other"),
        ("@hash/6", "@hash/6"),
    ],
)
def test_password_fields_are_classified_by_meaning(field: str, meaning: str) -> None:
    assert linux.classify_password(field) == meaning


def test_recorded_shadow_holds_classes_and_no_hash() -> None:
    shadow = linux.parse(factsets.real_output())["shadow"]

    for line in shadow.output.splitlines():
        assert line.split(":")[1].startswith("@"), line
    assert "$" not in shadow.output


# ---------------------------------------------------------------- live script

needs_root_sh = pytest.mark.skipif(
    os.geteuid() != 0 or shutil.which("sh") is None or not Path("/etc/passwd").exists(),
    reason="runs linux.sh locally: needs root on a Linux host",
)


def run_local(*words: str) -> tuple[str, float]:
    started = time.monotonic()
    result = subprocess.run(
        ["sh", "-c", linux.SCRIPT, "amipolicy", *words],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    return result.stdout, time.monotonic() - started


@needs_root_sh
def test_script_runs_clean_and_fast_on_this_host(tmp_path: Path) -> None:
    output, seconds = run_local("user=root", "mounts=0", f"roots={tmp_path}")

    sections = linux.parse(output)
    assert set(sections) >= FAST_SECTIONS
    assert all(s.status != -1 for s in sections.values())
    assert seconds < 20


@needs_root_sh
def test_scan_sends_fingerprints_and_never_the_planted_secrets(tmp_path: Path) -> None:
    body = "QUJD" * 100
    key = (
        "-----BEGIN OPENSSH PRIVATE KEY-----\n"
        + "\n".join(body[i : i + 70] for i in range(0, len(body), 70))
        + "\n-----END OPENSSH PRIVATE KEY-----\n"
    )
    # A documentation example cut short is not a key.
    (tmp_path / "example.py").write_text(
        'EXAMPLE = """\n-----BEGIN RSA PRIVATE KEY-----\n'
        "MIIBxwIBAAJhAKD0YSHy73nUgysO13XsJmd4fHiFyQ+00R7VVu2iV9Qco\n...\n"
        '-----END RSA PRIVATE KEY-----\n"""\n'
    )
    secret = "abcdEFGHijklMNOPqrstUVWXyz0123456789ABCD"
    (tmp_path / "id_deploy").write_text(key)
    (tmp_path / ".env").write_text(
        f"aws_access_key_id = AKIAZZZZZZZZZZZZZZZ1\naws_secret_access_key = {secret}\n"
    )

    output, _ = run_local("user=root", "mounts=0", f"roots={tmp_path}")

    found = linux.findings(linux.parse(output)["secrets"])
    kinds = {(f.kind, Path(f.path).name) for f in found}
    assert ("private-key", "id_deploy") in kinds
    assert not any(name == "example.py" for _, name in kinds)
    assert ("aws-secret-access-key", ".env") in kinds
    assert [f.key_id for f in found if f.kind == "aws-access-key-id"] == [
        "AKIAZZZZZZZZZZZZZZZ1"
    ]
    assert secret not in output
    assert "QUJDQUJD" not in output


# ---------------------------------------------------------------- script parts


def shell_function(name: str) -> str:
    """The text of one function of linux.sh, to run on its own."""
    start = linux.SCRIPT.index(f"\n{name}() {{\n") + 1
    end = linux.SCRIPT.index("\n}\n", start) + 3
    return linux.SCRIPT[start:end]


def run_shell(program: str) -> str:
    result = subprocess.run(
        ["sh", "-c", program], capture_output=True, text=True, timeout=30, check=True
    )
    return result.stdout


needs_sh = pytest.mark.skipif(shutil.which("sh") is None, reason="needs a POSIX sh")


@needs_sh
def test_authorized_keys_file_tokens_expand_as_sshd_expands_them() -> None:
    patterns = "%h/.ssh/k .ssh/authorized_keys2 /etc/ssh/keys/%u /srv/%U/%%k"

    expanded = run_shell(
        shell_function("expand_akf")
        + f"expand_akf {shlex.quote(patterns)} alice /home/alice 1001"
    )

    assert expanded.splitlines() == [
        "/home/alice/.ssh/k",
        "/home/alice/.ssh/authorized_keys2",
        "/etc/ssh/keys/alice",
        "/srv/1001/%k",
    ]


@needs_sh
def test_accounts_sshd_would_let_in_are_listed_even_without_a_login_shell(
    tmp_path: Path,
) -> None:
    passwd = tmp_path / "passwd"
    passwd.write_text(
        "root:x:0:0:root:/root:/bin/sh\n"
        "svc:x:998:998::/nonexistent:/bin/false\n"
        "gone:x:997:997::/nonexistent:/nonexistent/shell\n"
    )
    function = shell_function("key_accounts").replace("/etc/passwd", str(passwd))

    listed = run_shell(function + "key_accounts")

    names = [line.split("\t")[0] for line in listed.splitlines()]
    assert names == ["root", "svc"]


@needs_sh
def test_sshd_config_includes_are_followed_in_every_spelling(tmp_path: Path) -> None:
    (tmp_path / "sshd_config.d").mkdir()
    (tmp_path / "sshd_config.d" / "20-b.conf").write_text("Include = extra.conf\n")
    (tmp_path / "sshd_config.d" / "10-a.conf").write_text("X yes\n")
    (tmp_path / "sshd_config.d" / "sub").mkdir()
    (tmp_path / "extra.conf").write_text("Y no\n")
    (tmp_path / "sshd_config").write_text(
        f"  include={tmp_path}/sshd_config.d/* # drop-ins\nPasswordAuthentication no\n"
    )
    function = shell_function("sshd_files").replace("/etc/ssh", str(tmp_path))

    listed = run_shell(function + "sshd_files")

    assert listed.splitlines() == [
        f"{tmp_path}/sshd_config",
        f"{tmp_path}/sshd_config.d/10-a.conf",
        f"{tmp_path}/sshd_config.d/20-b.conf",
        f"{tmp_path}/extra.conf",
    ]


@needs_root_sh
def test_a_secrets_scan_out_of_time_says_so_instead_of_finding_nothing(
    tmp_path: Path,
) -> None:
    output, _ = run_local(
        "user=root", "mounts=0", f"roots={tmp_path}", "scan_timeout=0"
    )

    secrets = linux.parse(output)["secrets"]
    assert secrets.status == 124
    assert linux.markers(secrets, "truncated after 0s") == [""]


def stub_commands(directory: Path, **scripts: str) -> str:
    """Write shell scripts named after the keywords into ``directory``; return it."""
    directory.mkdir(exist_ok=True)
    for name, body in scripts.items():
        path = directory / name.replace("_", "-")
        path.write_text("#!/bin/sh\n" + body)
        path.chmod(0o755)
    return str(directory)


def script_functions(*names: str) -> str:
    return 'have() { command -v "$1" >/dev/null 2>&1; }\n' + "".join(
        shell_function(name) for name in names
    )


@needs_sh
def test_amazon_linux_2023_is_also_asked_about_the_latest_release(
    tmp_path: Path,
) -> None:
    os_release = tmp_path / "os-release"
    os_release.write_text('NAME="Amazon Linux"\nID="amzn"\nVERSION_ID="2023"\n')
    # The frozen release's repository lists nothing; the latest one lists a fix.
    stubs = stub_commands(
        tmp_path / "bin",
        dnf='case "$*" in\n'
        '*releasever=latest*updateinfo*) echo "ALAS2023-2024-612 Important/Sec. openssl-libs-1:3.0.8-1.amzn2023.0.14.x86_64" ;;\n'
        "*repolist*) printf 'repo id  repo name\\namazonlinux  Amazon Linux 2023 repository\\n' ;;\n"
        "esac\n",
        rpm="echo 2023.4.20240401\n",
    )
    program = (
        f"PATH={stubs}:$PATH; tmpd={tmp_path}; os_release_file={os_release}\n"
        + script_functions("is_amazon_linux_2023", "dnf_updates")
        + "dnf_updates; echo status=$?"
    )

    output = run_shell(program)

    assert "command: dnf -q --releasever=latest updateinfo list security" in output
    assert "latest: ALAS2023-2024-612 Important/Sec." in output
    assert "repo-latest: amazonlinux  Amazon Linux 2023 repository" in output
    assert output.rstrip().endswith("status=0")


@needs_sh
def test_other_dnf_systems_are_asked_about_their_own_release_only(
    tmp_path: Path,
) -> None:
    os_release = tmp_path / "os-release"
    os_release.write_text('ID="rhel"\nVERSION_ID="9.4"\n')
    stubs = stub_commands(tmp_path / "bin", dnf='echo "dnf $*" >&2\n')
    program = (
        f"PATH={stubs}:$PATH; tmpd={tmp_path}; os_release_file={os_release}\n"
        + script_functions("is_amazon_linux_2023", "dnf_updates")
        + "dnf_updates"
    )

    output = run_shell(program)

    assert "releasever" not in output
    assert "repo-note: dnf -q repolist" in output


APT_CACHE_POLICY = """\
libssl3:
  Installed: 3.0.2-0ubuntu1.10
  Candidate: 3.0.2-0ubuntu1.15
  Version table:
     3.0.2-0ubuntu1.16 -1
        -1 http://archive.ubuntu.com/ubuntu jammy-proposed/main amd64 Packages
     3.0.2-0ubuntu1.15 500
        500 http://archive.ubuntu.com/ubuntu jammy-updates/main amd64 Packages
     3.0.2-0ubuntu1.12 500
        500 http://security.ubuntu.com/ubuntu jammy-security/main amd64 Packages
     3.0.2-0ubuntu1.11 500
        500 http://archive.ubuntu.com/ubuntu jammy-updates/main amd64 Packages
 *** 3.0.2-0ubuntu1.10 100
        100 /var/lib/dpkg/status
     3.0.2-0ubuntu1.9 500
        500 http://security.ubuntu.com/ubuntu jammy-security/main amd64 Packages
libnew1:
  Installed: (none)
  Candidate: 2.0
  Version table:
     2.0 500
        500 http://archive.ubuntu.com/ubuntu jammy-updates/main amd64 Packages
     1.0 500
        500 http://security.ubuntu.com/ubuntu jammy-security/main amd64 Packages
"""


@needs_sh
def test_versions_between_installed_and_candidate_are_listed_with_their_suites(
    tmp_path: Path,
) -> None:
    (tmp_path / "simulate").write_text(
        "Inst libssl3 [3.0.2-0ubuntu1.10] (3.0.2-0ubuntu1.15 Ubuntu:22.04/jammy-updates [amd64])\n"
        "Inst libnew1 (2.0 Ubuntu:22.04/jammy-updates [amd64])\n"
    )
    (tmp_path / "policy.txt").write_text(APT_CACHE_POLICY)
    stubs = stub_commands(tmp_path / "bin", apt_cache=f"cat {tmp_path}/policy.txt\n")
    program = (
        f"PATH={stubs}:$PATH; tmpd={tmp_path}\n"
        + shell_function("apt_between")
        + "apt_between"
    )

    output = run_shell(program)

    prefix = "between: libssl3 3.0.2-0ubuntu1.10 3.0.2-0ubuntu1.15"
    assert output.splitlines() == [
        f"{prefix} 3.0.2-0ubuntu1.12 http://security.ubuntu.com/ubuntu jammy-security/main",
        f"{prefix} 3.0.2-0ubuntu1.11 http://archive.ubuntu.com/ubuntu jammy-updates/main",
    ]


@needs_sh
def test_the_malware_scan_covers_every_block_filesystem_outside_the_kernel_trees(
    tmp_path: Path,
) -> None:
    mounts = tmp_path / "mounts"
    mounts.write_text(
        "overlay / overlay rw 0 0\n"
        "proc /proc proc rw 0 0\n"
        "/dev/vda /run/host/os-release ext4 ro 0 0\n"
        "/dev/vdb1 /sysroot xfs rw 0 0\n"
        "/dev/vdb2 /devel ext4 rw 0 0\n"
        "/dev/mapper/vg-runner /runner ext4 rw 0 0\n"
        "/dev/nvme1n1 /srv/my\\040data ext4 rw 0 0\n"
        "tank/home /home zfs rw 0 0\n"
        "tmpfs /tmp tmpfs rw 0 0\n"
        "/dev/vdb2 /devel ext4 rw 0 0\n"
        "/dev/sda1 /sys/firmware/efi vfat rw 0 0\n"
    )
    program = (
        assignment_line("pseudo_dirs")
        + shell_function("malware_targets").replace("/proc/mounts", str(mounts))
        + "malware_targets"
    )

    targets = run_shell(program).splitlines()

    assert targets == ["/", "/sysroot", "/devel", "/runner", "/srv/my data", "/home"]


def assignment_line(name: str) -> str:
    return next(
        line + "\n" for line in linux.SCRIPT.splitlines() if line.startswith(f"{name}=")
    )
