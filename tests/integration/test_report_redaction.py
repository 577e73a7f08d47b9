"""The HTML report and JSON evidence of a real booted image keep no planted secret."""

from __future__ import annotations

from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

ACCESS_KEY_ID = "AKIAZ3MPLE7REPORT42Q"
SECRET_KEY = "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"

CONFTEST = f"""
def pytest_amipolicy_prepare_image(config, target, root):
    aws = root / "root/.aws"
    aws.mkdir(mode=0o700, parents=True, exist_ok=True)
    (aws / "credentials").write_text(
        "[default]\\n"
        "aws_access_key_id = {ACCESS_KEY_ID}\\n"
        "aws_secret_access_key = {SECRET_KEY}\\n"
    )
"""


def test_a_planted_aws_key_fails_the_image_and_never_reaches_the_report(
    pytester: pytest.Pytester, debian_image: Path
) -> None:
    pytester.makeconftest(CONFTEST)
    pytester.makeini("[pytest]\namipolicy_redact =\n    \\b\\d{12}\\b\n")

    result = pytester.runpytest_subprocess(
        f"--ami-image={debian_image}",
        "--ami-policy=AWS-KEYS,CREDENTIALS,MANUAL-*",
        "--html=report.html",
        "--self-contained-html",
        "--ami-evidence=evidence.json",
        "--junitxml=junit.xml",
        "-p",
        "no:cacheprovider",
        timeout=900,
    )

    result.stdout.fnmatch_lines(["*FAILED*AWS-KEYS*"])
    outputs = {
        "terminal": result.stdout.str() + result.stderr.str(),
        **{
            name: (pytester.path / name).read_text()
            for name in ("report.html", "evidence.json", "junit.xml")
        },
    }
    for name, text in outputs.items():
        assert SECRET_KEY not in text, name
        assert ACCESS_KEY_ID not in text, name
        assert "PRIVATE KEY-----" not in text, name
    assert "/root/.aws/credentials" in outputs["evidence.json"]
