"""``--ami-host`` end to end: a real booted Debian machine over real SSH.

The machine is the project's Debian test image booted in a container; pytest
runs in a pytester directory with no test files, exactly as a seller would run
it against a machine of their own.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization

from pytest_amipolicy.imaging.boot import BootedMachine, booted
from pytest_amipolicy.targets.ssh import LaunchKey

pytestmark = pytest.mark.integration

SPINE_POLICIES = "SSH-PASSWORD,SSH-ROOT,ROOT-PASSWORD,NO-PASSWORDS,AUTHORIZED-KEYS,SUDO"
# Long before any boot of the test: a file the image build left behind.
SHIPPED_AT = 1700000000
STRAY_KEY = (
    "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHFhbAgu/sbKF+2fCgNvEa9Da49nOj+/B1CqxJd03YWb"
    " builder@example.test"
)


def break_the_image(root: Path) -> None:
    """Lay the faults a careless build leaves: passwords on, blank root, a stray key."""
    dropin = root / "etc/ssh/sshd_config.d/10-debug.conf"
    dropin.write_text("PasswordAuthentication yes\nPermitRootLogin yes\n")

    shadow = root / "etc/shadow"
    lines = shadow.read_text().splitlines()
    lines = [
        ":".join(["root", "", *line.split(":")[2:]])
        if line.startswith("root:")
        else line
        for line in lines
    ]
    shadow.write_text("\n".join(lines) + "\n")

    ssh_dir = root / "root/.ssh"
    ssh_dir.mkdir(mode=0o700, exist_ok=True)
    (ssh_dir / "authorized_keys").write_text(STRAY_KEY + "\n")

    # A regional endpoint shipped in the image, and one that cloud-init writes
    # at first boot (the region spelled so that the config itself has none).
    shipped = root / "etc/myapp.conf"
    shipped.write_text("endpoint = https://s3.eu-west-1.amazonaws.com\n")
    os.utime(shipped, (SHIPPED_AT, SHIPPED_AT))
    (root / "etc/cloud/cloud.cfg.d/95-mirror.cfg").write_text(
        "bootcmd:\n  - echo deb http://us-east-$((0+1)).ec2.archive.ubuntu.com/ubuntu"
        " jammy main > /etc/apt/sources.list.d/regional.list\n"
        # The test image trims cloud-init's modules; bootcmd must be named.
        "cloud_init_modules: [bootcmd, set_hostname, update_hostname, "
        "update_etc_hosts, users_groups, ssh]\n"
    )

    # A second login user that has the launch key but no sudo rights.
    with open(root / "etc/passwd", "a") as passwd:
        passwd.write("nosudo:x:1500:1500::/home/nosudo:/bin/bash\n")
    with open(root / "etc/group", "a") as group:
        group.write("nosudo:x:1500:\n")
    with open(root / "etc/shadow", "a") as shadow_file:
        shadow_file.write("nosudo:!:19000:0:99999:7:::\n")


@pytest.fixture(scope="module")
def launch_key() -> Iterator[LaunchKey]:
    key = LaunchKey()
    yield key
    key.remove()


@pytest.fixture(scope="module")
def compliant(debian_image: Path, launch_key: LaunchKey) -> Iterator[BootedMachine]:
    with booted(
        debian_image, login_user="admin", public_key=launch_key.public_line
    ) as machine:
        yield machine


@pytest.fixture(scope="module")
def careless(debian_image: Path, launch_key: LaunchKey) -> Iterator[BootedMachine]:
    def prepare(root: Path) -> None:
        break_the_image(root)
        home = root / "home/nosudo/.ssh"
        home.mkdir(parents=True, mode=0o700)
        (home / "authorized_keys").write_text(launch_key.public_line + "\n")
        for path in (home.parent, home, home / "authorized_keys"):
            os.chown(path, 1500, 1500)

    with booted(
        debian_image,
        login_user="admin",
        public_key=launch_key.public_line,
        prepare=prepare,
    ) as machine:
        yield machine


def run_checks(
    pytester: pytest.Pytester, spec: str, *args: str
) -> tuple[pytest.RunResult, dict[str, str]]:
    result = pytester.runpytest(
        f"--ami-host={spec}",
        f"--ami-policy={SPINE_POLICIES}",
        "--ami-evidence=evidence.json",
        *args,
    )
    evidence_file = pytester.path / "evidence.json"
    verdicts: dict[str, str] = {}
    if evidence_file.exists():
        document: dict[str, Any] = json.loads(evidence_file.read_text())
        verdicts = {
            record["policy"]: record["verdict"] for record in document["results"]
        }
    return result, verdicts


def test_the_host_key_is_named_in_the_evidence_not_warned_about(
    pytester: pytest.Pytester, compliant: BootedMachine, launch_key: LaunchKey
) -> None:
    public = (compliant.merged / "etc/ssh/ssh_host_ed25519_key.pub").read_text()
    blob = base64.b64decode(public.split()[1])
    expected = base64.b64encode(hashlib.sha256(blob).digest()).decode().rstrip("=")

    result, _ = run_checks(pytester, spec_for(compliant, launch_key))

    document = json.loads((pytester.path / "evidence.json").read_text())
    (target,) = document["targets"].values()
    assert target["host_key"] == f"ssh-ed25519 SHA256:{expected}"
    assert "Unknown ssh-ed25519 host key" not in result.stdout.str()


def spec_for(machine: BootedMachine, key: LaunchKey, user: str = "admin") -> str:
    return f"ssh://{user}@{machine.address}:{machine.port}?ssh_identity_file={key.path}"


def test_a_well_prepared_image_passes_every_spine_policy(
    pytester: pytest.Pytester, compliant: BootedMachine, launch_key: LaunchKey
) -> None:
    result, verdicts = run_checks(pytester, spec_for(compliant, launch_key))

    assert verdicts == {
        "SSH-PASSWORD": "pass",
        "SSH-ROOT": "pass",
        "ROOT-PASSWORD": "pass",
        "NO-PASSWORDS": "pass",
        "AUTHORIZED-KEYS": "pass",
        "SUDO": "pass",
    }
    assert result.ret == pytest.ExitCode.OK
    result.stdout.fnmatch_lines(
        ["*: 6 pass; partial check: 6 of 35 policies; 1 remote command"]
    )


def test_a_careless_image_fails_with_evidence_and_a_fix(
    pytester: pytest.Pytester, careless: BootedMachine, launch_key: LaunchKey
) -> None:
    result, verdicts = run_checks(pytester, spec_for(careless, launch_key))

    assert verdicts == {
        "SSH-PASSWORD": "fail",
        "SSH-ROOT": "fail",
        "ROOT-PASSWORD": "fail",
        "NO-PASSWORDS": "fail",
        "AUTHORIZED-KEYS": "fail",
        "SUDO": "pass",
    }
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.stdout.fnmatch_lines(["*SSH-PASSWORD fail on *", "Fix: *"])
    assert "BEGIN OPENSSH PRIVATE KEY" not in result.stdout.str()


def test_a_shipped_regional_endpoint_fails_but_one_written_at_first_boot_does_not(
    pytester: pytest.Pytester, careless: BootedMachine, launch_key: LaunchKey
) -> None:
    pytester.runpytest(
        f"--ami-host={spec_for(careless, launch_key)}",
        "--ami-policy=REGION-AGNOSTIC",
        "--ami-evidence=evidence.json",
    )

    document = json.loads((pytester.path / "evidence.json").read_text())
    (record,) = document["results"]
    assert record["verdict"] == "fail", record["reason"]
    assert record["findings"] == ["/etc/myapp.conf:1:s3.eu-west-1.amazonaws.com"]
    assert (
        "written during this boot, so not shipped in the image: "
        "/etc/apt/sources.list.d/regional.list" in record["evidence"][0]
    )


def test_a_user_without_sudo_fails_sudo_and_cannot_pass_what_needs_root(
    pytester: pytest.Pytester, careless: BootedMachine, launch_key: LaunchKey
) -> None:
    result, verdicts = run_checks(
        pytester, spec_for(careless, launch_key, user="nosudo")
    )

    assert verdicts["SUDO"] == "fail"
    # Without root the stray key in /root and the blank root password are
    # unreadable; unread must never look like a pass.
    assert verdicts["AUTHORIZED-KEYS"] == "error"
    assert verdicts["ROOT-PASSWORD"] == "error"
    assert verdicts["NO-PASSWORDS"] == "error"
    result.stdout.fnmatch_lines(["*nosudo cannot use sudo without a password*"])
    assert "Traceback" not in result.stdout.str()


def test_refused_authentication_is_one_line_naming_the_target(
    pytester: pytest.Pytester, compliant: BootedMachine
) -> None:
    other_key = LaunchKey()
    try:
        result, _ = run_checks(
            pytester, spec_for(compliant, other_key), "--ami-policy=SUDO"
        )
    finally:
        other_key.remove()

    result.stdout.fnmatch_lines(
        [
            # The first policy shows the reason; the others refer to it.
            f"SSH-PASSWORD: ssh://admin@{compliant.address}:22: "
            f"admin@{compliant.address}:22 refused *",
            f"SUDO: not checked, ssh://admin@{compliant.address}:22 could not be "
            "opened (the reason is shown under SSH-PASSWORD)",
        ]
    )
    assert "Traceback" not in result.stdout.str()
    assert result.ret == pytest.ExitCode.TESTS_FAILED


def test_a_key_with_a_passphrase_is_named_as_such(
    pytester: pytest.Pytester,
    compliant: BootedMachine,
    launch_key: LaunchKey,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The very key the machine accepts, only encrypted.
    private = serialization.load_ssh_private_key(launch_key.path.read_bytes(), None)
    encrypted = pytester.path / "id_with_passphrase"
    encrypted.write_bytes(
        private.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.OpenSSH,
            serialization.BestAvailableEncryption(b"a passphrase"),
        )
    )
    encrypted.chmod(0o600)
    monkeypatch.delenv("SSH_AUTH_SOCK", raising=False)
    spec = f"ssh://admin@{compliant.address}:22?ssh_identity_file={encrypted}"

    result, verdicts = run_checks(pytester, spec, "--ami-policy=SUDO")

    result.stdout.fnmatch_lines(
        [
            f"SSH-PASSWORD: ssh://admin@{compliant.address}:22: the key * is "
            "protected by a passphrase*ssh-add*"
        ]
    )
    assert "refused the key" not in result.stdout.str()
    assert set(verdicts.values()) == {"error"}


def test_an_unreachable_host_is_one_line_naming_the_target(
    pytester: pytest.Pytester, compliant: BootedMachine, launch_key: LaunchKey
) -> None:
    spec = f"ssh://admin@{compliant.address}:2?ssh_identity_file={launch_key.path}"

    result, verdicts = run_checks(pytester, spec)

    result.stdout.fnmatch_lines(
        [f"*connection to {compliant.address}:2 refused; check*"]
    )
    assert set(verdicts.values()) == {"error"}
    assert "Traceback" not in result.stdout.str()


USER_TESTS = """
def test_the_login_user_runs_the_commands(amipolicy_host):
    assert amipolicy_host.file("/etc/ssh/sshd_config").exists
    assert amipolicy_host.run("id -un").stdout.strip() == "admin"


def test_the_facts_name_the_machine(amipolicy_facts):
    assert amipolicy_facts.section("uname").ok
"""


def test_users_own_tests_run_beside_the_policies_with_the_plugins_fixtures(
    pytester: pytest.Pytester, compliant: BootedMachine, launch_key: LaunchKey
) -> None:
    pytester.makepyfile(test_mine=USER_TESTS)

    result, verdicts = run_checks(pytester, spec_for(compliant, launch_key))

    result.stdout.fnmatch_lines(["*8 passed*"])
    assert verdicts["SUDO"] == "pass"
