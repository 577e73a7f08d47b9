"""The HTML report, opened in a real browser, is evidence a seller can hand over."""

from __future__ import annotations

import hashlib
import importlib.resources
import re

import pytest

from tests.report.conftest import (
    ACCESS_KEY_ID,
    ACCOUNT_ID,
    BAD,
    GOOD,
    PLANTED_SECRET,
    needs_chromium,
    rendered,
    run_report,
    summary_table_sizes,
    texts_by,
)

pytestmark = needs_chromium


def _row(rows: dict[str, str], target: str, policy: str, when: str = "") -> str:
    return rows[f"amipolicy::policy[{target}-{policy}]{when}"]


def test_a_failing_policy_row_shows_its_verdict_evidence_and_fix(
    scenario_dir: pytest.Pytester,
) -> None:
    run_report(scenario_dir)

    rows = texts_by(rendered(scenario_dir.path / "report.html"))

    row = _row(rows, BAD, "SSH-PASSWORD")
    assert "Failed SSH-PASSWORD fail sshd allows no password login." in row
    assert "sshd accepts passwords for every user" in row
    assert "PasswordAuthentication yes (global)" in row
    assert "$ sudo sshd -T -C user=root,host=scanner,addr=198.51.100.7" in row
    assert "at /etc/ssh/sshd_config.d/50-cloud-init.conf:1" in row
    assert "Fix: Set 'PasswordAuthentication no' in /etc/ssh/sshd_config" in row


def test_an_undecided_policy_is_an_error_row_with_its_evidence_and_no_fix(
    scenario_dir: pytest.Pytester,
) -> None:
    run_report(scenario_dir)

    rows = texts_by(rendered(scenario_dir.path / "report.html"))

    row = _row(rows, BAD, "UPDATES", "::setup")
    assert row.startswith("Error UPDATES error")
    assert "Temporary failure resolving 'deb.debian.org'" in row
    assert "Fix:" not in row


def test_every_verdict_has_its_own_row_with_policy_and_summary(
    scenario_dir: pytest.Pytester,
) -> None:
    run_report(scenario_dir)

    rows = texts_by(rendered(scenario_dir.path / "report.html"))

    assert _row(rows, GOOD, "SSH-ROOT").startswith("Passed SSH-ROOT pass")
    assert _row(rows, GOOD, "AMI-ARCH").startswith("Skipped AMI-ARCH skip")
    assert _row(rows, GOOD, "MANUAL-LIMITS").startswith("Skipped MANUAL-LIMITS manual")
    assert "No time or user limits on the software." in _row(
        rows, GOOD, "MANUAL-LIMITS"
    )


def test_the_added_columns_are_named_policy_verdict_and_requirement(
    scenario_dir: pytest.Pytester,
) -> None:
    run_report(scenario_dir)

    dom = rendered(scenario_dir.path / "report.html")

    headers = re.findall(r"<th[^>]*>([^<]+)</th>", dom)
    assert [
        h for h in headers if h in {"Policy", "Verdict", "Requirement", "Summary"}
    ] == ["Policy", "Verdict", "Requirement"]


def test_the_policy_column_links_to_the_marketplace_policy_page(
    scenario_dir: pytest.Pytester,
) -> None:
    run_report(scenario_dir)

    dom = rendered(scenario_dir.path / "report.html")

    links = re.findall(
        r'<td class="col-policy"><a href="([^"]+)"[^>]*>([A-Z-]+)</a>', dom
    )
    assert len(links) == 16
    assert {href for href, _ in links} == {
        "https://docs.aws.amazon.com/marketplace/latest/userguide/"
        "product-and-ami-policies.html"
    }


def test_the_environment_table_names_each_image_instance_os_and_the_tools(
    scenario_dir: pytest.Pytester,
) -> None:
    run_report(scenario_dir)

    environment = texts_by(rendered(scenario_dir.path / "report.html"))["environment"]

    for expected in (
        "Check date",
        "Started",
        "Finished",
        f"Target {BAD}",
        "AMI id: ami-0f9e8d7c6b5a40312",
        "AMI name: acme-appliance-2.4.0-rc1",
        "Owner: [redacted]",
        "Region: us-east-1",
        "Created: 2025-04-11T16:40:00.000Z",
        "Architecture: x86_64",
        "Instance id: i-0badc0de0badc0de2",
        "Instance type: t3.micro",
        "OS release: Debian GNU/Linux 12 (bookworm)",
        "pytest-amipolicy: ",
        "pytest: ",
        "pytest-testinfra: ",
        "boto3: ",
    ):
        assert expected in environment


def test_the_summary_counts_verdicts_and_lists_the_attestations_to_sign(
    scenario_dir: pytest.Pytester,
) -> None:
    run_report(scenario_dir)

    texts = texts_by(rendered(scenario_dir.path / "report.html"), key="class")

    counts = texts["amipolicy-summary"]
    assert (
        f"{GOOD} 4 0 0 2 2 compliant on every checked policy; "
        "2 skipped (see each reason); 2 attestation(s) to sign 2" in counts
    )
    assert f"{BAD} 1 2 1 2 2 not compliant: 2 policy failure(s) 2" in counts
    assert "secrets 1 1 0 0 0" in counts
    attestations = texts["amipolicy-attest"]
    assert "\u2610 MANUAL-CONSENT: No customer registration" in attestations
    assert "\u2610 MANUAL-LIMITS: No time or user limits" in attestations
    assert "Confirmed by:" in attestations


@needs_chromium
def test_attestations_list_only_the_manual_policies_the_run_selected(
    scenario_dir: pytest.Pytester,
) -> None:
    run_report(scenario_dir, "--ami-policy=SSH-ROOT,MANUAL-LIMITS")

    texts = texts_by(rendered(scenario_dir.path / "report.html"), key="class")

    assert "MANUAL-LIMITS" in texts["amipolicy-attest"]
    assert "MANUAL-CONSENT" not in texts["amipolicy-attest"]


@needs_chromium
def test_a_run_without_manual_policies_has_no_attestations(
    scenario_dir: pytest.Pytester,
) -> None:
    run_report(scenario_dir, "--ami-policy=SSH-ROOT")

    texts = texts_by(rendered(scenario_dir.path / "report.html"), key="class")

    assert "amipolicy-attest" not in texts


def test_a_secret_matched_by_amipolicy_redact_appears_nowhere(
    scenario_dir: pytest.Pytester,
) -> None:
    result = run_report(
        scenario_dir, "--ami-evidence=evidence.json", "--junitxml=junit.xml", "-rA"
    )

    outputs = {
        "terminal": result.stdout.str(),
        "report.html": (scenario_dir.path / "report.html").read_text(),
        "rendered": rendered(scenario_dir.path / "report.html"),
        "evidence.json": (scenario_dir.path / "evidence.json").read_text(),
        "junit.xml": (scenario_dir.path / "junit.xml").read_text(),
    }
    for name, text in outputs.items():
        assert PLANTED_SECRET not in text, name
        assert ACCOUNT_ID not in text, name
        assert ACCESS_KEY_ID not in text, name
    assert "aws_secret_access_key = [redacted]" in outputs["rendered"]


def test_a_private_key_in_evidence_never_reaches_the_report(
    scenario_dir: pytest.Pytester,
) -> None:
    # Without any amipolicy_redact pattern at all.
    scenario_dir.makeini("[pytest]\n")

    run_report(scenario_dir, "--ami-evidence=evidence.json")

    for name in ("report.html", "evidence.json"):
        text = (scenario_dir.path / name).read_text()
        # The fact-gathering script shown in the report names "PRIVATE KEY"
        # in its search patterns; the key block itself must be gone.
        assert "BEGIN OPENSSH PRIVATE KEY" not in text
        assert "b3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAE" not in text
    assert PLANTED_SECRET in (scenario_dir.path / "evidence.json").read_text()


def test_evidence_text_is_escaped_not_rendered_as_html(
    scenario_dir: pytest.Pytester,
) -> None:
    run_report(scenario_dir)

    rows = texts_by(rendered(scenario_dir.path / "report.html"))

    assert "# written by <provisioner> & co" in _row(rows, BAD, "AWS-KEYS")


def test_the_fact_gathering_script_is_in_the_report_with_its_digest(
    scenario_dir: pytest.Pytester,
) -> None:
    script = (
        importlib.resources.files("pytest_amipolicy.facts") / "linux.sh"
    ).read_bytes()

    run_report(scenario_dir)

    scripts = texts_by(rendered(scenario_dir.path / "report.html"), key="class")[
        "amipolicy-scripts"
    ]
    assert "A command after $ in the evidence is one of its sections" in scripts
    assert f"sha256 {hashlib.sha256(script).hexdigest()}" in scripts
    assert "scan_secrets() {" in scripts
    assert "windows.ps1" not in scripts


def test_the_remote_command_count_is_per_target_not_repeated_in_each_row(
    scenario_dir: pytest.Pytester,
) -> None:
    run_report(scenario_dir)

    rows = texts_by(rendered(scenario_dir.path / "report.html"))

    assert "remote command" not in _row(rows, BAD, "SSH-PASSWORD")
    assert "remote command" not in _row(rows, GOOD, "SSH-ROOT")


def test_the_targets_table_is_not_stretched_to_the_height_of_the_families(
    scenario_dir: pytest.Pytester,
) -> None:
    run_report(scenario_dir)

    sizes = summary_table_sizes(scenario_dir.path / "report.html")

    # Two targets against six families: side by side, each keeps its height.
    assert sizes["Targets"][1] < 0.7 * sizes["Policies by family"][1]
