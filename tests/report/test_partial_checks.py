"""A run on part of the catalogue says so in the HTML report, the JSON and the terminal.

The scenario's catalogue has eight policies; choosing some of them with
``--ami-policy``, the ``amipolicy_policies`` ini key or ``-k`` must never give
a report that reads like a check of all eight.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.report.conftest import (
    BAD,
    GOOD,
    INI,
    needs_chromium,
    rendered,
    run_report,
    texts_by,
)

SSH = ["SSH-PASSWORD", "SSH-ROOT"]


def evidence(pytester: pytest.Pytester) -> dict[str, Any]:
    document: dict[str, Any] = json.loads(
        (pytester.path / "evidence.json").read_text(encoding="utf-8")
    )
    return document


@pytest.mark.parametrize(
    ("ini", "args", "by", "value"),
    [
        pytest.param("", ["--ami-policy=SSH-*"], "--ami-policy", "SSH-*", id="option"),
        pytest.param(
            "amipolicy_policies = SSH-*", [], "amipolicy_policies", "SSH-*", id="ini"
        ),
        # Not -k SSH: every target label holds "ssh", and -k ignores case.
        pytest.param(
            "", ["-k", "PASSWORD or ROOT"], "-k", "PASSWORD or ROOT", id="keyword"
        ),
    ],
)
def test_a_selection_is_recorded_in_the_evidence_with_what_chose_it(
    scenario_dir: pytest.Pytester, ini: str, args: list[str], by: str, value: str
) -> None:
    if ini:
        scenario_dir.makeini(INI + ini)

    result = run_report(scenario_dir, "--ami-evidence=evidence.json", *args)

    selection = evidence(scenario_dir)["selection"]
    assert selection == {
        "partial": True,
        "catalogue": 8,
        "selected_by": [{"by": by, "value": value}],
        "checked": {GOOD: SSH, BAD: SSH},
    }
    result.stdout.fnmatch_lines(
        [
            f"{GOOD}: 2 pass; partial check: 2 of 8 policies; *",
            f"{BAD}: 1 fail, 1 pass; partial check: 2 of 8 policies; *",
        ]
    )


def test_a_full_run_records_a_selection_of_the_whole_catalogue(
    scenario_dir: pytest.Pytester,
) -> None:
    result = run_report(scenario_dir, "--ami-evidence=evidence.json")

    selection = evidence(scenario_dir)["selection"]
    assert selection["partial"] is False
    assert selection["catalogue"] == 8
    assert selection["selected_by"] == []
    assert len(selection["checked"][GOOD]) == 8
    assert "partial check" not in result.stdout.str()
    page = (scenario_dir.path / "report.html").read_text(encoding="utf-8")
    assert "Partial check" not in page


@needs_chromium
def test_a_partial_runs_html_report_has_a_banner_and_a_qualified_standing(
    scenario_dir: pytest.Pytester,
) -> None:
    run_report(scenario_dir, "--ami-policy=SSH-*,AMI-*")

    texts = texts_by(rendered(scenario_dir.path / "report.html"), key="class")

    banner = texts["amipolicy-partial"]
    assert banner.startswith(
        "Partial check Only some of the catalogue's policies were selected, by "
        "--ami-policy=SSH-*,AMI-*."
    )
    assert (
        f"{GOOD}: 3 of the catalogue's 8 policies checked: AMI-ARCH, SSH-PASSWORD, "
        "SSH-ROOT" in banner
    )
    counts = texts["amipolicy-summary"]
    assert (
        f"{GOOD} 2 0 0 1 0 compliant on the 3 checked policies of 8; partial check"
        in counts
    )
    assert (
        f"{BAD} 1 1 0 1 0 not compliant: 1 policy failure(s); partial check: 3 of 8 "
        "policies" in counts
    )
    assert "compliant on every checked policy" not in counts
