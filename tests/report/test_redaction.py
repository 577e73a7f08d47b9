"""Redaction reaches every string a reader sees, and long secrets are never cut first."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET

import pytest

from pytest_amipolicy.redaction import compile_patterns, redact
from pytest_amipolicy.verdicts import Evidence
from tests.report.conftest import (
    ACCOUNT_ID,
    BAD,
    LONG_KEY_LINE,
    needs_chromium,
    rendered,
    run_report,
    texts_by,
)


def private_key(size: int, end: bool = True) -> str:
    """A PEM-shaped private key block of about ``size`` characters."""
    lines = [f"{n:04d}" + "S0VZQk9EWQ" * 6 for n in range(size // 65)]
    block = "-----BEGIN PRIVATE KEY-----\n" + "\n".join(lines) + "\n"
    return block + ("-----END PRIVATE KEY-----\n" if end else "")


def test_a_long_private_key_is_redacted_before_the_output_is_trimmed() -> None:
    evidence = Evidence(
        "key file", command="sudo cat /root/key.pem", output=private_key(6000)
    )

    text = evidence.render()

    assert "BEGIN PRIVATE KEY" not in text
    assert "S0VZQk9EWQ" not in text
    assert "[redacted]" in text


def test_a_key_block_without_its_end_line_is_redacted_to_the_end_of_the_text() -> None:
    output = "head -c 900 of a key file:\n" + private_key(6000, end=False)[:900]

    text = Evidence("truncated key", output=output).render()

    assert "head -c 900 of a key file:" in text
    assert "BEGIN PRIVATE KEY" not in text
    assert "S0VZQk9EWQ" not in text


def test_an_unterminated_key_block_is_redacted_by_the_configured_patterns_too() -> None:
    patterns = compile_patterns(())

    clean = redact("before\n" + private_key(600, end=False), patterns)

    assert clean == "before\n[redacted]"


def test_a_terminated_key_block_keeps_the_text_after_it() -> None:
    patterns = compile_patterns(())

    clean = redact(f"a\n{private_key(300)}b\n{private_key(300)}c", patterns)

    assert clean == "a\n[redacted]\nb\n[redacted]\nc"


def test_a_configured_pattern_is_applied_before_the_output_is_trimmed() -> None:
    patterns = compile_patterns((r"\b\d{12}\b",))
    output = "x" * 3994 + " " + ACCOUNT_ID + "\nlast line"

    text = Evidence("long", output=output).render(
        clean=lambda value: redact(value, patterns)
    )

    # Cut first, the five digits before the cut would match nothing any more.
    assert ACCOUNT_ID[:5] not in text
    assert " [reda\n" in text


def test_long_output_is_cut_at_a_line_end_and_says_how_much_is_left() -> None:
    output = "\n".join(f"line {n:04d} " + "y" * 50 for n in range(200))

    text = Evidence("long", output=output).render(width=4000)

    shown = text.splitlines()
    assert shown[-2].endswith("y" * 50)
    assert shown[-1].startswith("  ... (") and shown[-1].endswith(" more chars)")
    assert len(text) < 4200


def test_redacting_keys_leaves_field_names_alone_unless_asked() -> None:
    patterns = compile_patterns((r"\b\d{12}\b",))
    value = {f"Target host-{ACCOUNT_ID}": {f"id {ACCOUNT_ID}": ACCOUNT_ID}}

    assert redact(value, patterns) == {
        f"Target host-{ACCOUNT_ID}": {f"id {ACCOUNT_ID}": "[redacted]"}
    }
    assert redact(value, patterns, keys=True) == {
        "Target host-[redacted]": {"id [redacted]": "[redacted]"}
    }


def test_a_private_key_longer_than_the_trimmed_output_appears_nowhere(
    scenario_dir: pytest.Pytester,
) -> None:
    result = run_report(
        scenario_dir, "--ami-evidence=evidence.json", "--junitxml=junit.xml", "-rA"
    )

    outputs = {
        "terminal": result.stdout.str() + result.stderr.str(),
        **{
            name: (scenario_dir.path / name).read_text()
            for name in ("report.html", "evidence.json", "junit.xml")
        },
    }
    for name, text in outputs.items():
        assert LONG_KEY_LINE[4:20] not in text, name
        assert "BEGIN RSA PRIVATE KEY" not in text, name
    record = next(
        r
        for r in json.loads(outputs["evidence.json"])["results"]
        if r["target"] == BAD and r["policy"] == "AWS-KEYS"
    )
    assert "  $ sudo cat /root/.ssh/id_rsa\n  [redacted]" in record["evidence"][1]


@needs_chromium
def test_metadata_from_the_command_line_and_ci_variables_is_redacted(
    scenario_dir: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(
        "CODEBUILD_SOURCE_VERSION", f"arn:aws:s3:::builds-{ACCOUNT_ID}/source.zip"
    )

    run_report(
        scenario_dir,
        "--metadata",
        "Seller account",
        ACCOUNT_ID,
        "--metadata",
        f"Role {ACCOUNT_ID}",
        "build",
    )

    page = (scenario_dir.path / "report.html").read_text()
    environment = texts_by(rendered(scenario_dir.path / "report.html"))["environment"]
    assert ACCOUNT_ID not in page
    assert "Seller account [redacted]" in environment
    assert "Role [redacted] build" in environment
    assert "CODEBUILD_SOURCE_VERSION arn:aws:s3:::builds-[redacted]/source.zip" in (
        environment
    )


LABEL_INI = """\
[pytest]
amipolicy_redact =
    192\\.0\\.2\\.20
"""


@needs_chromium
def test_a_target_label_matched_by_a_pattern_is_redacted_in_the_environment(
    scenario_dir: pytest.Pytester,
) -> None:
    scenario_dir.makeini(LABEL_INI)

    run_report(scenario_dir)

    environment = texts_by(rendered(scenario_dir.path / "report.html"))["environment"]
    assert "Target ssh://admin@[redacted]" in environment
    assert "192.0.2.20" not in environment


def test_a_target_label_matched_by_a_pattern_is_redacted_in_json_and_summary(
    scenario_dir: pytest.Pytester,
) -> None:
    scenario_dir.makeini(LABEL_INI)

    result = run_report(scenario_dir, "--ami-evidence=evidence.json")

    document = json.loads((scenario_dir.path / "evidence.json").read_text())
    assert "ssh://admin@[redacted]" in document["targets"]
    assert "192.0.2.20" not in json.dumps(document)
    section = result.stdout.str().split(" amipolicy ===", 1)[1]
    summary = [line for line in section.splitlines() if line.startswith("ssh://")]
    assert summary[1].startswith("ssh://admin@[redacted]: 1 error, 2 fail,")
    assert "192.0.2.20" not in "\n".join(summary)


def test_junit_properties_carry_the_redacted_target(
    scenario_dir: pytest.Pytester,
) -> None:
    scenario_dir.makeini(LABEL_INI)

    run_report(scenario_dir, "--junitxml=junit.xml")

    properties = [
        p.get("value")
        for p in ET.parse(scenario_dir.path / "junit.xml").getroot().iter("property")
        if p.get("name") == "amipolicy_target"
    ]
    assert "ssh://admin@[redacted]" in properties
    assert "ssh://admin@192.0.2.20" not in properties
