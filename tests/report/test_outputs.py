"""JSON evidence, JUnit XML and xdist runs carry the same policies and targets."""

from __future__ import annotations

import hashlib
import importlib.resources
import json
import xml.etree.ElementTree as ET

import pytest

from tests.report.conftest import (
    BAD,
    GOOD,
    needs_chromium,
    rendered,
    run_report,
    texts_by,
)


def test_the_evidence_json_holds_environment_targets_and_every_result(
    scenario_dir: pytest.Pytester,
) -> None:
    run_report(scenario_dir, "--ami-evidence=out/evidence.json")

    document = json.loads((scenario_dir.path / "out/evidence.json").read_text())

    assert document["schema"] == 2
    assert set(document["environment"]) >= {"pytest-amipolicy", "pytest", "boto3"}
    assert document["targets"][BAD]["instance_id"] == "i-0badc0de0badc0de2"
    assert document["targets"][GOOD]["os_release"] == "Debian GNU/Linux 12 (bookworm)"
    assert document["targets"][GOOD]["owner"] == "[redacted]"
    verdicts = {(r["target"], r["policy"]): r["verdict"] for r in document["results"]}
    assert len(verdicts) == 16
    assert verdicts[(BAD, "SSH-PASSWORD")] == "fail"
    assert verdicts[(BAD, "UPDATES")] == "error"
    assert verdicts[(GOOD, "MANUAL-CONSENT")] == "manual"


def test_junit_names_carry_the_policy_ids_and_properties_stay_short_strings(
    scenario_dir: pytest.Pytester,
) -> None:
    result = run_report(scenario_dir, "--junitxml=junit.xml")

    cases = ET.parse(scenario_dir.path / "junit.xml").getroot().iter("testcase")

    assert "INTERNALERROR" not in result.stdout.str()
    by_name = {case.get("name"): case for case in cases}
    case = by_name[f"policy[{BAD}-SSH-PASSWORD]"]
    properties = {p.get("name"): p.get("value") for p in case.iter("property")}
    assert properties == {
        "amipolicy_policy": "SSH-PASSWORD",
        "amipolicy_verdict": "fail",
        "amipolicy_target": BAD,
    }
    assert case.find("failure") is not None
    assert by_name[f"policy[{GOOD}-AMI-ARCH]"].find("skipped") is not None


def test_a_bad_redaction_pattern_is_a_usage_error_naming_it(
    scenario_dir: pytest.Pytester,
) -> None:
    scenario_dir.makeini("[pytest]\namipolicy_redact =\n    secret-(\n")

    result = run_report(scenario_dir)

    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*amipolicy_redact: 'secret-(' is not a regular*"])


@needs_chromium
def test_under_xdist_the_report_is_written_once_with_every_row_and_target(
    scenario_dir: pytest.Pytester,
) -> None:
    result = run_report(scenario_dir, "-n", "2")

    dom = rendered(scenario_dir.path / "report.html")

    assert result.stdout.str().count("Generated html report") == 1
    texts = texts_by(dom)
    rows = [key for key in texts if key.startswith("amipolicy::policy[")]
    assert len(rows) == 16
    environment = texts["environment"]
    assert "Instance id: i-0c0ffee0c0ffee001" in environment
    assert "Instance id: i-0badc0de0badc0de2" in environment
    assert "OS release: Debian GNU/Linux 12 (bookworm)" in environment


# Loaded with -p: a stand-in cleanup line for each host, and a mark that the
# session-finish hooks after the evidence writer still ran.
CLOSER = """
from pathlib import Path

import pytest

from pytest_amipolicy.targets.host import HostTarget


def close(self, progress):
    return [f"{self.label}: stand-in instance terminated"]


HostTarget.close = close


@pytest.hookimpl(trylast=True)
def pytest_sessionfinish(session):
    Path("finished").write_text("yes")
"""


def test_the_evidence_json_holds_the_cleanup_lines_and_the_fact_script_digest(
    scenario_dir: pytest.Pytester,
) -> None:
    scenario_dir.makepyfile(amipolicy_closer=CLOSER)
    script = (
        importlib.resources.files("pytest_amipolicy.facts") / "linux.sh"
    ).read_bytes()

    run_report(scenario_dir, "-p", "amipolicy_closer", "--ami-evidence=e.json")

    document = json.loads((scenario_dir.path / "e.json").read_text())
    assert document["cleanup"] == [
        f"{GOOD}: stand-in instance terminated",
        f"{BAD}: stand-in instance terminated",
    ]
    assert document["scripts"] == [
        {
            "platform": "linux",
            "name": "pytest_amipolicy/facts/linux.sh",
            "sha256": hashlib.sha256(script).hexdigest(),
            "lines": len(script.decode().splitlines()),
        }
    ]


BLOCKER = """
import os


def test_something_takes_the_evidence_path():
    os.makedirs("out/evidence.json")
"""


def test_an_evidence_file_that_cannot_be_written_is_one_line_and_a_failed_exit(
    scenario_dir: pytest.Pytester,
) -> None:
    scenario_dir.makepyfile(test_blocker=BLOCKER, amipolicy_closer=CLOSER)

    # Only checks that pass, so that the exit status is the writer's alone.
    result = run_report(
        scenario_dir,
        "-p",
        "amipolicy_closer",
        "--ami-policy=SSH-ROOT,MANUAL-*",
        "--ami-evidence=out/evidence.json",
        "--junitxml=junit.xml",
    )

    output = result.stdout.str() + result.stderr.str()
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert "Traceback" not in output
    assert "INTERNALERROR" not in output
    result.stdout.fnmatch_lines(
        ["*amipolicy evidence NOT written to out/evidence.json: Is a directory;*"]
    )
    assert "Generated html report" in output
    assert (scenario_dir.path / "report.html").is_file()
    assert (scenario_dir.path / "junit.xml").is_file()
    assert (scenario_dir.path / "finished").read_text() == "yes"


def test_an_unwritable_evidence_file_keeps_the_failed_exit_of_failed_checks(
    scenario_dir: pytest.Pytester,
) -> None:
    scenario_dir.makepyfile(test_blocker=BLOCKER)

    result = run_report(scenario_dir, "--ami-evidence=out/evidence.json")

    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.stdout.fnmatch_lines(["*amipolicy evidence NOT written*"])
