"""The user's own tests count in each target's standing and in the JSON evidence.

The pytester directory holds, beside the scenario's two machines, a test file
of the seller's own: one check per target through the plugin's fixtures, which
fails on the machine whose built-in policies all pass, and a test that uses no
target at all.
"""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from typing import Any

import pytest

from tests.report.conftest import (
    BAD,
    GOOD,
    needs_chromium,
    rendered,
    run_report,
    texts_by,
)

OWN_TESTS = """
def test_the_motd_names_the_product(amipolicy_facts):
    # Only the scenario's second machine "has" the message.
    assert amipolicy_facts.target.endswith("192.0.2.20"), "no product name in motd"


def test_the_build_script_is_tidy():
    pass
"""


def own_run(pytester: pytest.Pytester, *args: str) -> pytest.RunResult:
    pytester.makepyfile(test_own=OWN_TESTS)
    return run_report(pytester, "-p", "no:randomly", *args)


def test_the_evidence_lists_own_tests_with_their_outcome_and_target(
    scenario_dir: pytest.Pytester,
) -> None:
    own_run(scenario_dir, "--ami-evidence=evidence.json")

    document: dict[str, Any] = json.loads(
        (scenario_dir.path / "evidence.json").read_text(encoding="utf-8")
    )
    own = {test["nodeid"]: test for test in document["own_tests"]}
    assert own == {
        f"test_own.py::test_the_motd_names_the_product[{GOOD}]": {
            "nodeid": f"test_own.py::test_the_motd_names_the_product[{GOOD}]",
            "outcome": "failed",
            "target": GOOD,
        },
        f"test_own.py::test_the_motd_names_the_product[{BAD}]": {
            "nodeid": f"test_own.py::test_the_motd_names_the_product[{BAD}]",
            "outcome": "passed",
            "target": BAD,
        },
        "test_own.py::test_the_build_script_is_tidy": {
            "nodeid": "test_own.py::test_the_build_script_is_tidy",
            "outcome": "passed",
            "target": None,
        },
    }
    # Own tests are not policies: the results hold the policies only.
    assert len(document["results"]) == 16


def test_a_target_whose_own_check_failed_is_not_called_compliant_in_the_terminal(
    scenario_dir: pytest.Pytester,
) -> None:
    result = own_run(scenario_dir)

    result.stdout.fnmatch_lines(
        [
            f"{GOOD}: 2 manual, 4 pass, 2 skip; 1 of your own checks failed; *",
            f"{BAD}: 1 error, 2 fail, *; 2 remote commands",
        ]
    )
    assert "1 of your own checks failed" not in result.stdout.str().split(BAD)[-1]


def test_junit_names_the_target_of_an_own_test(scenario_dir: pytest.Pytester) -> None:
    own_run(scenario_dir, "--junitxml=junit.xml")

    cases = ET.parse(scenario_dir.path / "junit.xml").getroot().iter("testcase")

    properties = {
        case.get("name"): {p.get("name"): p.get("value") for p in case.iter("property")}
        for case in cases
    }
    assert properties[f"test_the_motd_names_the_product[{GOOD}]"] == {
        "amipolicy_target": GOOD
    }
    assert properties["test_the_build_script_is_tidy"] == {}


@needs_chromium
def test_a_target_whose_own_check_failed_is_not_called_compliant_in_the_report(
    scenario_dir: pytest.Pytester,
) -> None:
    own_run(scenario_dir)

    texts = texts_by(rendered(scenario_dir.path / "report.html"), key="class")

    counts = texts["amipolicy-summary"]
    assert f"{GOOD} 4 0 0 2 2 1 of your own checks failed 2" in counts
    assert "compliant on every checked policy" not in counts
