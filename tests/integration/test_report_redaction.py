"""The evidence of a compliant and a faulty booted image, read the way a reviewer would.

One run of the plugin checks two real images booted on this machine: the
compliant demo image and the same tree with secrets and faults laid over it
(an AWS key file, a private key, a password hash, an authorized key, password
login). It writes the HTML report, the JSON evidence and JUnit XML; the
report is opened in headless Chromium. Each image boots once, for the module.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, rsa

from tests.report.conftest import CHROMIUM, needs_chromium, rendered, texts_by

pytestmark = pytest.mark.integration

REPOSITORY = Path(__file__).resolve().parents[2]

COMPLIANT = "image:demo"
FAULTY = "image:faulty"

ACCESS_KEY_ID = "AKIAZ3MPLE7REPORT42Q"
SECRET_KEY = "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"
ACCOUNT_ID = "210987654321"
# A SHA-512 crypt field: well formed, so NO-PASSWORDS takes it for a password.
PASSWORD_HASH = (
    "$6$rEp0rtSalt$Q2hlY2tlZEJ5QW1pcG9saWN5LnRoaXNJc05vdEFSZWFsSGFzaEJ1dEl0"
    "TG9va3NMaWtlT25lLi4uLi4uLi4uLi4uLi4u"
)

# What each failing policy of the faulty image must show as the place that
# decided it (a file and line, or the file read).
DECIDED_BY = {
    "SSH-PASSWORD": "/etc/ssh/sshd_config.d/10-build.conf:1",
    "NO-PASSWORDS": "/etc/shadow",
    "AUTHORIZED-KEYS": "/root/.ssh/authorized_keys:1",
    "AWS-KEYS": "/root/.aws/credentials:2",
    "CREDENTIALS": "/home/deploy/.ssh/id_rsa",
}

INI = """\
[pytest]
amipolicy_redact =
    \\b\\d{12}\\b
"""


@dataclass(frozen=True)
class Planted:
    """The secrets laid into the faulty image, and the key line it accepts."""

    private_key: str
    authorized_key: str

    @property
    def secrets(self) -> dict[str, str]:
        """Name to a string that must appear in no output."""
        body = self.private_key.splitlines()[1:-1]
        return {
            "AWS secret key": SECRET_KEY,
            "AWS access key id": ACCESS_KEY_ID,
            "account id": ACCOUNT_ID,
            "password hash": PASSWORD_HASH,
            "password hash body": PASSWORD_HASH.rsplit("$", 1)[1][:24],
            "private key header": "BEGIN RSA PRIVATE KEY",
            "private key, first line": body[0],
            "private key, a middle line": body[len(body) // 2],
            "private key, last line": body[-1],
        }


def plant() -> Planted:
    private = rsa.generate_private_key(public_exponent=65537, key_size=4096)
    pem = private.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption(),
    ).decode()
    public = (
        ed25519.Ed25519PrivateKey.generate()
        .public_key()
        .public_bytes(
            serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH
        )
        .decode()
    )
    return Planted(private_key=pem, authorized_key=f"{public} builder@ci")


def conftest_for(planted: Planted) -> str:
    """The run's conftest: lays the faults over the faulty image as it boots."""
    files = {
        "/root/.aws/credentials": (
            "[default]\n"
            f"aws_access_key_id = {ACCESS_KEY_ID}\n"
            f"aws_secret_access_key = {SECRET_KEY}\n"
            f"role_arn = arn:aws:iam::{ACCOUNT_ID}:role/build\n"
        ),
        "/home/deploy/.ssh/id_rsa": planted.private_key,
        "/root/.ssh/authorized_keys": planted.authorized_key + "\n",
        "/etc/ssh/sshd_config.d/10-build.conf": "PasswordAuthentication yes\n",
    }
    return textwrap.dedent(
        f"""\
        from tests.support.cases import Case, lay_case

        FAULTS = Case(
            id="report-faulty",
            platform="linux",
            shadow={{"deploy": {PASSWORD_HASH!r}}},
            files={files!r},
        )


        def pytest_amipolicy_prepare_image(config, target, root):
            if target == {FAULTY!r}:
                lay_case(FAULTS, root)
        """
    )


@dataclass(frozen=True)
class Run:
    """What one plugin run over both images left behind."""

    directory: Path
    status: int
    terminal: str
    planted: Planted

    @property
    def report(self) -> Path:
        return self.directory / "report.html"

    def document(self) -> dict[str, Any]:
        result: dict[str, Any] = json.loads(
            (self.directory / "evidence.json").read_text()
        )
        return result

    def records(self, target: str) -> dict[str, dict[str, Any]]:
        return {
            record["policy"]: record
            for record in self.document()["results"]
            if record["target"] == target
        }


@pytest.fixture(scope="module")
def checked(tmp_path_factory: pytest.TempPathFactory, debian_image: Path) -> Run:
    directory = tmp_path_factory.mktemp("report-run")
    planted = plant()
    (directory / "conftest.py").write_text(conftest_for(planted))
    (directory / "pytest.ini").write_text(INI)
    # The faulty image is the pristine tree under another name; its faults are
    # laid on the boot's overlay, never into the tree.
    (directory / "faulty").symlink_to(debian_image, target_is_directory=True)

    environment = dict(os.environ)
    environment["PYTHONPATH"] = os.pathsep.join(
        filter(None, [str(REPOSITORY), environment.get("PYTHONPATH")])
    )
    completed = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-p",
            "no:cacheprovider",
            "-p",
            "no:hypothesispytest",
            "-rA",
            "--ami-image=demo",
            f"--ami-image={directory / 'faulty'}",
            "--html=report.html",
            "--self-contained-html",
            "--ami-evidence=evidence.json",
            "--junitxml=junit.xml",
        ],
        cwd=directory,
        env=environment,
        capture_output=True,
        text=True,
        timeout=900,
    )
    return Run(
        directory=directory,
        status=completed.returncode,
        terminal=completed.stdout + completed.stderr,
        planted=planted,
    )


def test_the_faulty_image_fails_each_planted_fault_and_nothing_else(
    checked: Run,
) -> None:
    records = checked.records(FAULTY)

    failing = {
        policy for policy, record in records.items() if record["verdict"] == "fail"
    }
    assert checked.status == pytest.ExitCode.TESTS_FAILED, checked.terminal[-3000:]
    assert failing == set(DECIDED_BY)
    assert not [p for p, r in records.items() if r["verdict"] == "error"]
    assert "FAILED amipolicy::policy[image:faulty-AWS-KEYS]" in checked.terminal


def test_the_compliant_image_is_compliant_on_every_checked_policy(
    checked: Run,
) -> None:
    records = checked.records(COMPLIANT)

    verdicts = {record["verdict"] for record in records.values()}
    assert verdicts <= {"pass", "skip", "manual"}
    assert sum(r["verdict"] == "pass" for r in records.values()) >= 10
    assert f"{COMPLIANT}: " in checked.terminal
    assert "cleanup: image:demo: container" in checked.terminal
    assert any(
        line.startswith(f"{COMPLIANT}: ") for line in checked.document()["cleanup"]
    )


@needs_chromium
def test_each_failing_row_shows_command_output_decided_by_and_fix(
    checked: Run,
) -> None:
    records = checked.records(FAULTY)

    rows = texts_by(rendered(checked.report))

    for policy, place in DECIDED_BY.items():
        row = rows[f"amipolicy::policy[{FAULTY}-{policy}]"]
        record = records[policy]
        assert row.startswith(f"Failed {policy} fail"), policy
        assert "Evidence" in row, policy
        assert " $ " in row, f"{policy}: no command in its evidence"
        assert place in row, f"{policy}: {place} not shown"
        fix = " ".join(record["remediation"].split())
        assert f"Fix: {fix}" in row, policy
        for finding in record["findings"]:
            assert " ".join(finding.split()) in row, policy


@needs_chromium
def test_the_report_summary_calls_the_compliant_image_compliant(
    checked: Run,
) -> None:
    texts = texts_by(rendered(checked.report), key="class")

    counts = texts["amipolicy-summary"]
    assert "image:demo" in counts
    demo = counts.split("image:demo", 1)[1].split("image:faulty", 1)[0]
    assert "compliant on every checked policy" in demo
    assert "not compliant: 5 policy failure(s)" in counts
    assert "How the facts were gathered" in texts["amipolicy-scripts"]


def test_no_planted_secret_appears_in_any_output(checked: Run) -> None:
    outputs = {
        "terminal": checked.terminal,
        "report.html": checked.report.read_text(),
        "evidence.json": (checked.directory / "evidence.json").read_text(),
        "junit.xml": (checked.directory / "junit.xml").read_text(),
    }
    if Path(CHROMIUM).exists():
        outputs["rendered report"] = rendered(checked.report)

    leaks = [
        f"{secret} in {name}"
        for name, text in outputs.items()
        for secret, value in checked.planted.secrets.items()
        if value in text
    ]
    assert leaks == []
    assert "/root/.aws/credentials" in outputs["evidence.json"]


def test_junit_names_and_properties_carry_the_policy_ids(checked: Run) -> None:
    cases = ET.parse(checked.directory / "junit.xml").getroot().iter("testcase")

    by_name = {case.get("name"): case for case in cases}
    case = by_name[f"policy[{FAULTY}-CREDENTIALS]"]
    properties = {p.get("name"): p.get("value") for p in case.iter("property")}
    assert properties["amipolicy_policy"] == "CREDENTIALS"
    assert properties["amipolicy_verdict"] == "fail"
    assert case.find("failure") is not None
