"""EOL, UPDATES, MALWARE, FILESYSTEMS, REGION-AGNOSTIC and the manual attestations."""

from __future__ import annotations

import datetime
import json
import shutil
import subprocess
from pathlib import Path

import pytest

from pytest_amipolicy.catalogue import all_policies
from pytest_amipolicy.facts import Facts, MissingFact, bootclock, linux
from pytest_amipolicy.policies.filesystems import check_filesystems
from pytest_amipolicy.policies.system import (
    check_eol,
    check_malware,
    check_region_agnostic,
    check_updates,
)
from pytest_amipolicy.verdicts import Outcome, Verdict
from tests.unit import factsets
from tests.unit.factsets import section

GONE = {"os_release": None, "usr_lib_os_release": None}


def test_the_recorded_debian_12_is_supported() -> None:
    assert check_eol(factsets.debian()).verdict is Verdict.PASS


def test_centos_6_known_only_by_redhat_release_is_end_of_life() -> None:
    facts = factsets.debian(
        **GONE,
        redhat_release=section("redhat-release", "CentOS release 6.10 (Final)\n"),
    )
    facts.check_date = datetime.date(2021, 6, 1)

    outcome = check_eol(facts)

    assert outcome.verdict is Verdict.FAIL and "CentOS Linux 6" in outcome.reason


def test_an_os_the_table_does_not_know_is_an_error() -> None:
    facts = factsets.debian(
        os_release=section("os-release", 'ID=plan9\nVERSION_ID="4"\n')
    )

    assert check_eol(facts).verdict is Verdict.ERROR


def test_centos_stream_is_told_apart_from_centos_linux() -> None:
    text = 'NAME="CentOS Stream"\nID="centos"\nVERSION_ID="9"\n'
    facts = factsets.debian(os_release=section("os-release", text))
    facts.check_date = datetime.date(2026, 1, 1)

    outcome = check_eol(facts)

    assert outcome.verdict is Verdict.PASS and "CentOS Stream 9" in outcome.reason


@pytest.mark.parametrize(
    ("os_release", "named", "verdict"),
    [
        ('ID="ol"\nVERSION_ID="8.10"\n', "Oracle Linux 8", Verdict.PASS),
        ('ID="ol"\nVERSION_ID="7.9"\n', "Oracle Linux 7", Verdict.FAIL),
        ('ID="rhel"\nVERSION_ID="10.0"\n', "Red Hat Enterprise Linux 10", Verdict.PASS),
        ('ID=ubuntu\nVERSION_ID="26.04"\n', "Ubuntu 26.04", Verdict.PASS),
        ('ID=amzn\nVERSION_ID="2"\n', "Amazon Linux 2", Verdict.FAIL),
    ],
)
def test_releases_are_judged_on_the_check_date(
    os_release: str, named: str, verdict: Verdict
) -> None:
    facts = factsets.debian(os_release=section("os-release", os_release))
    facts.check_date = datetime.date(2026, 12, 3)

    outcome = check_eol(facts)

    assert outcome.verdict is verdict and named in outcome.reason


def test_lsb_release_identifies_ubuntu_when_nothing_else_does() -> None:
    lsb = section("lsb-release", "DISTRIB_ID=Ubuntu\nDISTRIB_RELEASE=18.04\n")
    facts = factsets.debian(**GONE, lsb_release=lsb)

    assert check_eol(facts).verdict is Verdict.FAIL


@pytest.mark.parametrize(
    ("version", "verdict"),
    [
        ("10.0.17763", Verdict.PASS),
        ("6.3.9600", Verdict.FAIL),
        ("10.0.99999", Verdict.ERROR),
    ],
)
def test_eol_reads_windows_facts(version: str, verdict: Verdict) -> None:
    document = {"os": {"caption": "Microsoft Windows Server", "version": version}}
    facts = Facts(
        target="w",
        platform="windows",
        sections={"windows": section("windows", json.dumps(document))},
    )
    facts.check_date = datetime.date(2025, 6, 1)

    assert check_eol(facts).verdict is verdict


APT = """manager: apt
refresh: package lists are less than 12 hours old
repo: http://deb.debian.org/debian bookworm/main
repo: http://deb.debian.org/debian-security bookworm-security/main
command: apt-get -s -o Debug::NoLocking=1 dist-upgrade
"""
INST_SEC = "Inst libssl3 [3.0.11-1~deb12u2] (3.0.15-1~deb12u1 Debian-Security:12/stable-security [amd64])\n"
INST_PLAIN = "Inst tzdata [2024a-0+deb12u1] (2025b-0+deb12u1 Debian:12.11/stable-updates [all])\n"


def updates(output: str, status: int = 0) -> Facts:
    return factsets.debian(updates=section("updates", output, status))


def test_pending_security_updates_fail_and_name_the_suite() -> None:
    outcome = check_updates(updates(APT + INST_SEC + INST_PLAIN))

    assert outcome.verdict is Verdict.FAIL
    assert outcome.findings == (INST_SEC[5:].strip(),)


def test_only_non_security_updates_pass() -> None:
    assert check_updates(updates(APT + INST_PLAIN)).verdict is Verdict.PASS


def test_apt_without_a_security_suite_cannot_tell_and_is_an_error() -> None:
    ordinary_only = APT.replace(
        "repo: http://deb.debian.org/debian-security bookworm-security/main\n", ""
    )

    outcome = check_updates(updates(ordinary_only + INST_PLAIN))

    assert outcome.verdict is Verdict.ERROR
    assert "no security suite" in outcome.reason


def test_an_old_debian_security_suite_spelled_updates_counts() -> None:
    old = APT.replace(
        "http://deb.debian.org/debian-security bookworm-security/main",
        "http://security.debian.org buster/updates/main",
    )

    assert check_updates(updates(old)).verdict is Verdict.PASS


DNF = """manager: dnf
repo: repo id                   repo name
repo: amazonlinux               Amazon Linux 2023 repository
repo: kernel-livepatch          Amazon Linux 2023 Kernel Livepatch repository
command: dnf -q updateinfo list security
"""
# Amazon Linux 2023 after the frozen release's listing, as linux.sh prints it.
AL2023_LATEST = """release: 2023.4.20240401 (Amazon Linux 2023 stays on it); later releases are consulted with --releasever=latest
repo-latest: repo id                   repo name
repo-latest: amazonlinux               Amazon Linux 2023 repository
command: dnf -q --releasever=latest updateinfo list security
"""
LATEST_ADVISORY = (
    "ALAS2023-2024-612 Important/Sec. openssl-libs-1:3.0.8-1.amzn2023.0.14.x86_64"
)


def test_dnf_security_advisories_fail() -> None:
    text = (
        DNF
        + "ALAS2023-2024-501 Important/Sec. openssl-libs-1:3.0.8-1.amzn2023.0.12.x86_64\n"
    )

    assert check_updates(updates(text)).verdict is Verdict.FAIL


def test_a_failed_package_manager_is_an_error() -> None:
    text = "manager: apt\nrefresh: apt-get update (status 100)\n"

    assert check_updates(updates(text, 100)).verdict is Verdict.ERROR


def test_stale_package_lists_that_cannot_be_refreshed_are_an_error_saying_so() -> None:
    text = (
        "manager: apt\nrefresh: apt-get update (status 0)\n"
        "refresh: failed, some package lists could not be fetched and are older "
        "than 12 hours\n"
    )

    outcome = check_updates(updates(text, 100))

    assert outcome.verdict is Verdict.ERROR
    assert "apt could not refresh its package lists" in outcome.reason
    assert "route to its package mirrors" in outcome.reason


def test_updates_that_cannot_be_loaded_are_an_error() -> None:
    def loader(name: str) -> factsets.Section:
        raise MissingFact(name, "sudo refused")

    facts = factsets.debian()
    facts.loader = loader

    assert check_updates(facts).verdict is Verdict.ERROR


@pytest.mark.parametrize(
    ("status", "output", "verdict"),
    [
        (
            77,
            "skip: no malware scanner (clamscan) is installed, and installing "
            "ClamAV was not attempted on this kind of target\n",
            Verdict.SKIP,
        ),
        (
            1,
            "scanner: ClamAV 1.0.7\n/home/a/eicar.com: Eicar-Signature FOUND\n",
            Verdict.FAIL,
        ),
        (
            0,
            "scanner: ClamAV 1.0.7\nsignatures: 01 Jun 2025 08:10 +0000\n",
            Verdict.PASS,
        ),
        (2, "scanner: ClamAV 1.0.7\nLibClamAV Error: no database\n", Verdict.ERROR),
    ],
)
def test_malware_verdicts(status: int, output: str, verdict: Verdict) -> None:
    assert (
        check_malware(
            factsets.debian(malware=section("malware", output, status))
        ).verdict
        is verdict
    )


def scan_malware(
    tmp_path: Path, install: int, root: bool, route: bool, manager: str
) -> Outcome:
    """MALWARE on what linux.sh's scan_malware says on a machine without ClamAV.

    The machine is stubbed: which commands exist, root, a default route. PATH
    holds only a package manager that "installs" nothing, as one without
    ClamAV in its repositories would, so nothing is installed here.
    """
    start = linux.SCRIPT.index("\nscan_malware() {\n") + 1
    function = linux.SCRIPT[start : linux.SCRIPT.index("\n}\n", start) + 3]
    if manager:
        stub = tmp_path / manager
        stub.write_text("#!/bin/sh\nexit 0\n")
        stub.chmod(0o755)
    stubs = (
        f"PATH={tmp_path}\n"
        f"install={install}\n"
        f'have() {{ [ -n "$1" ] && [ "$1" = "{manager}" ]; }}\n'
        f"is_root() {{ {'true' if root else 'false'}; }}\n"
        f"has_default_route() {{ {'true' if route else 'false'}; }}\n"
    )
    result = subprocess.run(
        [shutil.which("sh") or "sh", "-c", stubs + function + "scan_malware"],
        capture_output=True,
        text=True,
        timeout=30,
    )

    malware = section("malware", result.stdout + result.stderr, result.returncode)
    return check_malware(factsets.debian(malware=malware))


@pytest.mark.skipif(shutil.which("sh") is None, reason="runs linux.sh: needs sh")
@pytest.mark.parametrize(
    ("install", "root", "route", "manager", "words"),
    [
        (0, True, True, "apt-get", "was not attempted on this kind of target"),
        (1, False, True, "apt-get", "installing ClamAV needs root"),
        (1, True, False, "apt-get", "no route to a package mirror"),
        (1, True, True, "", "no package manager the plugin knows"),
        (1, True, True, "dnf", "'dnf install clamav' did not provide clamscan"),
    ],
)
def test_a_machine_without_clamav_skips_malware_saying_why_in_words(
    tmp_path: Path, install: int, root: bool, route: bool, manager: str, words: str
) -> None:
    outcome = scan_malware(tmp_path, install, root, route, manager)

    assert outcome.verdict is Verdict.SKIP
    assert outcome.reason.startswith("no malware scanner (clamscan) is installed, ")
    assert words in outcome.reason
    assert "install=" not in outcome.reason


def mounts(*rows: str) -> factsets.Section:
    return section(
        "mounts",
        "# findmnt -rn -o TARGET,SOURCE,FSTYPE,OPTIONS\n"
        + "".join(r + "\n" for r in rows),
    )


def test_the_recorded_host_filesystems_pass() -> None:
    assert check_filesystems(factsets.debian()).verdict is Verdict.PASS


def test_a_btrfs_block_filesystem_fails() -> None:
    facts = factsets.debian(
        mounts=mounts("/ /dev/nvme0n1p1 ext4 rw", "/data /dev/nvme1n1 btrfs rw")
    )

    assert check_filesystems(facts).verdict is Verdict.FAIL


def test_a_luks_device_fails() -> None:
    lsblk = {
        "blockdevices": [
            {
                "name": "nvme1n1",
                "type": "disk",
                "fstype": "crypto_LUKS",
                "children": [{"name": "data", "type": "crypt", "fstype": "ext4"}],
            }
        ]
    }
    facts = factsets.debian(lsblk=section("lsblk", json.dumps(lsblk)))

    outcome = check_filesystems(facts)

    assert outcome.verdict is Verdict.FAIL and "crypto_LUKS" in outcome.reason


def test_a_container_root_on_overlay_is_noted_not_failed() -> None:
    facts = factsets.debian(mounts=mounts("/ overlay overlay rw", "/proc proc proc rw"))

    outcome = check_filesystems(facts)

    assert outcome.verdict is Verdict.PASS
    assert any("overlay" in e.output for e in outcome.evidence)


def in_nspawn(*lines: str) -> factsets.Section:
    """A mounts section as seen inside a systemd-nspawn container."""
    listed = mounts(*lines)
    return section("mounts", listed.output + "# container manager: systemd-nspawn\n")


def test_a_container_managers_mounts_of_the_host_are_not_the_images() -> None:
    facts = factsets.debian(
        mounts=in_nspawn(
            "/ overlay overlay rw",
            "/run/host/incoming /dev/vda btrfs ro",
            "/run/host/os-release /dev/vda btrfs ro",
        )
    )

    outcome = check_filesystems(facts)

    notes = outcome.evidence[-1].output
    assert outcome.verdict is Verdict.SKIP, outcome.reason
    assert "judged on an instance launched from the AMI (--ami)" in outcome.reason
    assert "/run/host/incoming, /run/host/os-release, which systemd-nspawn" in notes


def test_a_container_root_bound_from_the_hosts_disk_is_not_judged() -> None:
    facts = factsets.debian(mounts=in_nspawn("/ /dev/vda[/srv/machines/web] btrfs rw"))

    outcome = check_filesystems(facts)

    assert outcome.verdict is Verdict.SKIP, outcome.reason
    assert "not judged: / btrfs on /dev/vda" in outcome.evidence[-1].output


def test_a_run_host_mount_outside_a_container_is_judged() -> None:
    facts = factsets.debian(
        mounts=mounts("/ /dev/nvme0n1p1 ext4 rw", "/run/host/data /dev/vdb btrfs rw")
    )

    assert check_filesystems(facts).verdict is Verdict.FAIL


def test_the_hosts_encrypted_disk_seen_from_a_container_is_not_judged() -> None:
    lsblk = {"blockdevices": [{"name": "vda", "type": "disk", "fstype": "crypto_LUKS"}]}
    facts = factsets.debian(
        mounts=in_nspawn("/ overlay overlay rw"),
        lsblk=section("lsblk", json.dumps(lsblk)),
    )

    outcome = check_filesystems(facts)

    assert outcome.verdict is Verdict.SKIP, outcome.reason
    assert (
        "those of the host that systemd-nspawn runs on" in outcome.evidence[-1].output
    )


def test_region_specific_configuration_fails_for_review() -> None:
    region = section(
        "region",
        "/etc/apt/sources.list:1:us-east-1.ec2.archive.ubuntu.com\n/etc/app.conf:4:ami-0123456789abcdef0\n",
    )

    outcome = check_region_agnostic(factsets.debian(region=region))

    assert outcome.verdict is Verdict.FAIL and len(outcome.findings) == 2


# When PID 1 of the recorded Debian machine started, read from its facts so
# that recording them again keeps these times on either side of the boot.
RECORDED_BOOT = int(
    bootclock.boot_time(linux.parse(factsets.real_output())["host-keys"]) or 0
)
BEFORE_BOOT, AFTER_BOOT = RECORDED_BOOT - 300_000, RECORDED_BOOT + 50


def test_a_region_written_at_first_boot_by_cloud_init_is_not_baked_in() -> None:
    region = section(
        "region",
        "/etc/apt/sources.list:3:us-east-1.ec2.archive.ubuntu.com\n"
        f"@@written {AFTER_BOOT} /etc/apt/sources.list@@\n",
    )

    outcome = check_region_agnostic(factsets.debian(region=region))

    assert outcome.verdict is Verdict.PASS, outcome.reason
    assert "written during this boot" in outcome.evidence[0].output


def test_a_region_in_a_file_older_than_the_boot_is_baked_in() -> None:
    region = section(
        "region",
        "/etc/apt/sources.list:3:us-east-1.ec2.archive.ubuntu.com\n"
        "/opt/app/app.conf:9:ami-0123456789abcdef0\n"
        f"@@written {AFTER_BOOT} /etc/apt/sources.list@@\n"
        f"@@written {BEFORE_BOOT} /opt/app/app.conf@@\n",
    )

    outcome = check_region_agnostic(factsets.debian(region=region))

    assert outcome.verdict is Verdict.FAIL
    assert outcome.findings == ("/opt/app/app.conf:9:ami-0123456789abcdef0",)


def test_a_region_in_a_file_written_a_minute_before_boot_is_baked_in() -> None:
    region = section(
        "region",
        "/etc/apt/sources.list:3:us-east-1.ec2.archive.ubuntu.com\n"
        f"@@written {RECORDED_BOOT - 60} /etc/apt/sources.list@@\n",
    )

    outcome = check_region_agnostic(factsets.debian(region=region))

    assert outcome.verdict is Verdict.FAIL


def test_without_a_boot_time_every_region_reference_counts() -> None:
    region = section(
        "region",
        "/etc/apt/sources.list:3:us-east-1.ec2.archive.ubuntu.com\n"
        f"@@written {AFTER_BOOT} /etc/apt/sources.list@@\n",
    )

    outcome = check_region_agnostic(factsets.debian(region=region, host_keys=None))

    assert outcome.verdict is Verdict.FAIL


def test_no_region_references_pass() -> None:
    assert check_region_agnostic(factsets.debian()).verdict is Verdict.PASS


def test_manual_attestations_are_listed_never_guessed() -> None:
    manual = [p for p in all_policies() if p.family == "manual"]

    assert len(manual) == 4
    for policy in manual:
        outcome = policy.check(factsets.debian())
        assert policy.platforms == frozenset({"manual"})
        assert outcome.verdict is Verdict.MANUAL and outcome.reason


def test_an_apt_simulation_that_reports_errors_is_an_error_not_a_pass() -> None:
    text = (
        APT
        + "E: dpkg was interrupted, you must manually run 'dpkg --configure -a'\n"
        + "apt-get: simulation failed (status 100)\n"
    )

    outcome = check_updates(updates(text))

    assert outcome.verdict is Verdict.ERROR
    assert "dpkg was interrupted" in outcome.reason


def test_apt_errors_are_an_error_even_when_the_section_says_success() -> None:
    text = APT + "E: Unmet dependencies. Try 'apt --fix-broken install'.\n"

    assert check_updates(updates(text)).verdict is Verdict.ERROR


def test_a_failed_zypper_refresh_is_an_error() -> None:
    text = "manager: zypper\nrefresh: zypper refresh (status 4)\n"

    assert check_updates(updates(text, 4)).verdict is Verdict.ERROR


def test_a_zfs_root_is_not_a_supported_filesystem() -> None:
    facts = factsets.debian(mounts=mounts("/ rpool/ROOT/debian zfs rw"))

    outcome = check_filesystems(facts)

    assert outcome.verdict is Verdict.FAIL and "zfs" in outcome.reason


def test_an_ecryptfs_home_is_encrypted() -> None:
    facts = factsets.debian(
        mounts=mounts(
            "/ /dev/nvme0n1p1 ext4 rw",
            "/home/admin /home/.ecryptfs/admin/.Private ecryptfs rw",
        )
    )

    outcome = check_filesystems(facts)

    assert outcome.verdict is Verdict.FAIL and "ecryptfs" in outcome.reason


def test_mounts_that_could_not_be_listed_are_an_error() -> None:
    facts = factsets.debian(mounts=section("mounts", "findmnt: failed\n", 1))

    assert check_filesystems(facts).verdict is Verdict.ERROR


def test_a_failed_configuration_search_is_an_error() -> None:
    facts = factsets.debian(region=section("region", "", 2))

    assert check_region_agnostic(facts).verdict is Verdict.ERROR


def test_a_malware_scan_past_its_deadline_is_an_error_that_says_so() -> None:
    output = "scanner: ClamAV 1.0.7\ntimeout: the scan did not finish within 1800 s\n"

    outcome = check_malware(factsets.debian(malware=section("malware", output, 124)))

    assert outcome.verdict is Verdict.ERROR and "1800 s" in outcome.reason


def test_the_check_date_decides_end_of_life() -> None:
    facts = factsets.debian()
    facts.check_date = datetime.date(2028, 7, 1)

    outcome = check_eol(facts)

    assert outcome.verdict is Verdict.FAIL and "2028-06-30" in outcome.reason


def test_amazon_linux_2023_fails_on_advisories_of_a_newer_release() -> None:
    text = DNF + AL2023_LATEST + f"latest: {LATEST_ADVISORY}\n"

    outcome = check_updates(updates(text))

    assert outcome.verdict is Verdict.FAIL
    assert outcome.findings == (
        f"{LATEST_ADVISORY} (from --releasever=latest: amazonlinux)",
    )


def test_amazon_linux_2023_passes_when_neither_release_lists_an_advisory() -> None:
    outcome = check_updates(updates(DNF + AL2023_LATEST))

    assert outcome.verdict is Verdict.PASS
    assert "3 repositories consulted" in outcome.reason


def test_an_advisory_in_both_releases_of_amazon_linux_2023_counts_once() -> None:
    advisory = (
        "ALAS2023-2024-501 Important/Sec. openssl-libs-1:3.0.8-1.amzn2023.0.12.x86_64"
    )
    text = DNF + advisory + "\n" + AL2023_LATEST + f"latest: {advisory}\n"

    assert check_updates(updates(text)).findings == (advisory,)


UBUNTU = """manager: apt
refresh: package lists are less than 12 hours old
repo: http://archive.ubuntu.com/ubuntu jammy-updates/main
repo: http://security.ubuntu.com/ubuntu jammy-security/main
command: apt-get -s -o Debug::NoLocking=1 dist-upgrade
Inst libssl3 [3.0.2-0ubuntu1.10] (3.0.2-0ubuntu1.15 Ubuntu:22.04/jammy-updates [amd64])
command: apt-cache policy PACKAGE... (versions between installed and candidate)
"""


def test_a_security_fix_superseded_by_a_later_updates_version_is_pending() -> None:
    text = (
        UBUNTU
        + "between: libssl3 3.0.2-0ubuntu1.10 3.0.2-0ubuntu1.15 3.0.2-0ubuntu1.12 "
        "http://security.ubuntu.com/ubuntu jammy-security/main\n"
    )

    outcome = check_updates(updates(text))

    assert outcome.verdict is Verdict.FAIL
    (finding,) = outcome.findings
    assert finding.startswith(
        "libssl3 [3.0.2-0ubuntu1.10] (3.0.2-0ubuntu1.12 from jammy-security/main"
    )
    assert "superseded by 3.0.2-0ubuntu1.15" in finding


def test_versions_between_from_ordinary_suites_are_not_security_updates() -> None:
    text = (
        UBUNTU
        + "between: libssl3 3.0.2-0ubuntu1.10 3.0.2-0ubuntu1.15 3.0.2-0ubuntu1.11 "
        "http://archive.ubuntu.com/ubuntu jammy-updates/main\n"
    )

    assert check_updates(updates(text)).verdict is Verdict.PASS


def test_a_security_candidate_is_counted_once_beside_older_security_versions() -> None:
    text = (
        APT
        + INST_SEC
        + "between: libssl3 3.0.11-1~deb12u2 3.0.15-1~deb12u1 3.0.13-1~deb12u1 "
        "http://deb.debian.org/debian-security bookworm-security/main\n"
    )

    assert check_updates(updates(text)).findings == (INST_SEC[5:].strip(),)


@pytest.mark.parametrize(
    ("text", "fix"),
    [
        (
            "manager: dnf\nrepo-note: This system is not registered with an "
            "entitlement server. You can use subscription-manager to register.\n"
            "command: dnf -q updateinfo list security\n",
            "subscription-manager register",
        ),
        (
            "manager: yum\nrepo: repo id    repo name    status\nrepo: repolist: 0\n"
            "command: yum -q updateinfo list security\n",
            "subscription-manager register",
        ),
        (
            "manager: dnf\nrepo: This system is not registered with an entitlement "
            "server. You can use subscription-manager to register.\n"
            "command: dnf -q updateinfo list security\n",
            "subscription-manager register",
        ),
        (
            "manager: zypper\nrepo: No repositories defined. Use the 'zypper "
            "addrepo' command to add one or more repositories.\n"
            "refresh: zypper refresh (status 0)\n"
            "command: zypper --non-interactive list-patches --category security\n",
            "SUSEConnect",
        ),
    ],
)
def test_a_package_manager_without_any_repository_is_an_error_naming_the_fix(
    text: str, fix: str
) -> None:
    outcome = check_updates(updates(text))

    assert outcome.verdict is Verdict.ERROR
    assert "consults no enabled repository" in outcome.reason
    assert fix in outcome.reason


def test_zypper_without_repositories_names_the_fix_even_when_refresh_fails() -> None:
    text = (
        "manager: zypper\nrepo: No repositories defined. Use the 'zypper addrepo' "
        "command to add one or more repositories.\nrefresh: zypper refresh (status 6)\n"
    )

    outcome = check_updates(updates(text, 6))

    assert outcome.verdict is Verdict.ERROR and "SUSEConnect" in outcome.reason


ZYPPER = """manager: zypper
repo: # | Alias                  | Name             | Enabled | GPG Check | Refresh | URI
repo: --+------------------------+------------------+---------+-----------+---------+----
repo: 1 | SLES15-SP5-Updates     | SLES15-SP5-Updates | Yes   | (r ) Yes  | Yes     | plugin:/susecloud?path=/repo/SUSE/Updates/SLE-Product-SLES/15-SP5/x86_64/update/
repo: 2 | SLES15-SP5-Debuginfo   | SLES15-SP5-Debuginfo | No  | ----      | ----    | plugin:/susecloud?path=/repo/debug
refresh: zypper refresh (status 0)
command: zypper --non-interactive list-patches --category security
"""


def test_zypper_with_an_enabled_repository_and_no_patch_passes() -> None:
    outcome = check_updates(updates(ZYPPER + "No updates found.\n"))

    assert outcome.verdict is Verdict.PASS
    assert "1 repository consulted" in outcome.reason


def test_zypper_needed_security_patches_fail() -> None:
    row = "SLE-Module-Basesystem15-SP5-Updates | SUSE-2024-1234 | security | important | --- | needed | Security update for openssl-3\n"

    assert check_updates(updates(ZYPPER + row)).verdict is Verdict.FAIL


@pytest.mark.parametrize(
    ("version", "named", "verdict"),
    [
        ("15", "SUSE Linux Enterprise Server 15:", Verdict.FAIL),
        ("15.2", "SUSE Linux Enterprise Server 15 SP2", Verdict.FAIL),
        ("15.5", "SUSE Linux Enterprise Server 15 SP5", Verdict.FAIL),
        ("15.6", "SUSE Linux Enterprise Server 15 SP6", Verdict.PASS),
        ("15.7", "SUSE Linux Enterprise Server 15 SP7", Verdict.PASS),
        ("12.4", "SUSE Linux Enterprise Server 12 SP4", Verdict.FAIL),
        ("12.5", "SUSE Linux Enterprise Server 12 SP5", Verdict.FAIL),
    ],
)
def test_each_sles_service_pack_has_its_own_end_of_general_support(
    version: str, named: str, verdict: Verdict
) -> None:
    text = f'NAME="SLES"\nVERSION="{version}"\nVERSION_ID="{version}"\nID="sles"\n'
    facts = factsets.debian(os_release=section("os-release", text))

    outcome = check_eol(facts)

    assert outcome.verdict is verdict, outcome.reason
    assert any(named in e.output for e in outcome.evidence), outcome.evidence


def test_sles_15_sp2_on_2025_06_01_ended_in_2021() -> None:
    text = 'NAME="SLES"\nVERSION_ID="15.2"\nID="sles"\n'
    facts = factsets.debian(os_release=section("os-release", text))

    outcome = check_eol(facts)

    assert outcome.verdict is Verdict.FAIL
    assert "2021-12-31" in outcome.reason


@pytest.mark.parametrize(
    "document",
    ["[]", '"text"', '{"os": "Windows Server 2019"}', '{"os": null}', "{"],
)
def test_windows_facts_of_the_wrong_shape_are_an_error_not_a_crash(
    document: str,
) -> None:
    facts = Facts(
        target="w",
        platform="windows",
        sections={"windows": section("windows", document)},
    )

    assert check_eol(facts).verdict is Verdict.ERROR


def test_filesystem_evidence_lists_the_judged_mounts_and_counts_the_others() -> None:
    facts = factsets.debian(
        mounts=mounts(
            "/ /dev/nvme0n1p1 ext4 rw",
            "/proc proc proc rw",
            "/run tmpfs tmpfs rw",
            "/data /dev/nvme1n1 btrfs rw",
        )
    )

    outcome = check_filesystems(facts)

    text = outcome.evidence[0].output
    assert outcome.verdict is Verdict.FAIL
    assert "  / ext4 on /dev/nvme0n1p1\n" in text
    assert "  /data btrfs on /dev/nvme1n1: not a supported type\n" in text
    assert "not judged: 2 kernel, memory, network or overlay mounts (proc, tmpfs)" in (
        text
    )


def test_region_search_without_hits_says_where_it_looked() -> None:
    outcome = check_region_agnostic(factsets.debian())

    assert outcome.verdict is Verdict.PASS
    assert outcome.evidence[0].output.startswith("none found in /etc, /opt, /srv")
