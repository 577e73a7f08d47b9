"""Every Linux case in ../shared/cases, laid on the Debian image, booted and checked.

The project's own cases in ``linux_cases/`` beside this file, in the same
format, are checked the same way: situations found by review rather than in
a public report (Match blocks for other accounts, keys under signature type
names, user CAs, secrets in service environments, and the like).

All cases are checked by the plugin in one pytest run (per check date), each
case as its own ``--ami-image`` target, so the containers boot in parallel
under xdist. Each case's expected verdicts are then asserted as a test of its
own, so a wrong verdict names the case.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from collections import defaultdict
from pathlib import Path
from typing import Any

import pytest

from tests.support.cases import Case, load_cases

pytestmark = [pytest.mark.integration, pytest.mark.xdist_group("linux-cases")]

LOCAL_CASES = Path(__file__).with_name("linux_cases")
CASES = load_cases("linux") + load_cases(LOCAL_CASES, "linux")

# The plugin run's conftest: lays the case named by the target onto the image
# through the plugin's own hook, as a seller could to test a build step.
RUN_CONFTEST = """
import sys
sys.path.insert(0, {repo!r})

from tests.support.cases import lay_case, load_cases

CASES = {{
    case.id: case
    for case in load_cases("linux") + load_cases({local!r}, "linux")
}}


def pytest_amipolicy_prepare_image(config, target, root):
    lay_case(CASES[target.split(":", 1)[1]], root)
"""


@pytest.fixture(scope="module")
def verdicts(
    debian_image: Path, tmp_path_factory: pytest.TempPathFactory
) -> dict[str, dict[str, tuple[str, str]]]:
    """Run the plugin over all cases; return case id -> policy -> (verdict, why)."""
    by_date: dict[str, list[Case]] = defaultdict(list)
    for case in CASES:
        by_date[case.check_date or ""].append(case)

    found: dict[str, dict[str, tuple[str, str]]] = defaultdict(dict)
    for check_date, cases in by_date.items():
        workdir = tmp_path_factory.mktemp("cases")
        (workdir / "conftest.py").write_text(
            textwrap.dedent(
                RUN_CONFTEST.format(
                    repo=str(Path(__file__).resolve().parents[2]),
                    local=str(LOCAL_CASES.resolve()),
                )
            )
        )
        # Outside the run's directory, or pytest would collect the image's own
        # Python test files through the links.
        images = tmp_path_factory.mktemp("case-images")

        arguments = [
            "-n",
            "2",
            "-p",
            "no:cacheprovider",
            "--ami-evidence=evidence.json",
        ]
        policies = sorted({policy for case in cases for policy in case.expect})
        arguments.append(f"--ami-policy={','.join(policies)}")
        if check_date:
            arguments.append(f"--ami-check-date={check_date}")
        for case in cases:
            # One name per case: the target label carries the case id.
            (images / case.id).symlink_to(debian_image)
            arguments.append(f"--ami-image={images / case.id}")

        run = subprocess.run(
            [sys.executable, "-m", "pytest", *arguments],
            cwd=workdir,
            capture_output=True,
            text=True,
            timeout=1200,
        )
        evidence = workdir / "evidence.json"
        assert evidence.exists(), run.stdout[-3000:] + run.stderr[-3000:]

        document: dict[str, Any] = json.loads(evidence.read_text())
        for record in document["results"]:
            case_id = record["target"].split(":", 1)[1]
            found[case_id][record["policy"]] = (record["verdict"], record["reason"])

    return dict(found)


@pytest.mark.parametrize("case", CASES, ids=[case.id for case in CASES])
def test_the_case_gets_the_verdicts_a_correct_checker_gives(
    case: Case, verdicts: dict[str, dict[str, tuple[str, str]]]
) -> None:
    seen = verdicts.get(case.id, {})

    got = {policy: seen.get(policy, ("missing", ""))[0] for policy in case.expect}
    reasons = {
        policy: seen.get(policy, ("", "not judged"))[1] for policy in case.expect
    }
    assert got == case.expect, reasons
