"""The one phrase a target stands by in the report, from its counts alone."""

from __future__ import annotations

from collections import Counter
from types import SimpleNamespace
from typing import Any

import pytest

from pytest_amipolicy.completeness import own_outcome
from pytest_amipolicy.standings import standing

ALL_PASS = Counter({"pass": 20, "skip": 10, "manual": 5})


def test_every_policy_passing_on_the_whole_catalogue_is_compliant() -> None:
    assert standing(ALL_PASS, checked=35, catalogue=35) == (
        "compliant on every checked policy; 10 skipped (see each reason); "
        "5 attestation(s) to sign"
    )


def test_a_partial_check_is_compliant_on_the_policies_checked_only() -> None:
    phrase = standing(Counter({"pass": 1}), checked=1, catalogue=35)

    assert phrase == "compliant on the 1 checked policy of 35; partial check"


def test_a_failure_in_a_partial_check_names_both() -> None:
    phrase = standing(Counter({"pass": 1, "fail": 1}), checked=2, catalogue=35)

    assert (
        phrase == "not compliant: 1 policy failure(s); partial check: 2 of 35 policies"
    )


def test_a_failed_own_check_means_no_compliance_whatever_the_policies_say() -> None:
    phrase = standing(
        ALL_PASS, checked=35, catalogue=35, own=Counter({"failed": 2, "error": 1})
    )

    assert phrase == (
        "2 of your own checks failed; 1 of your own checks ended in an error"
    )
    assert "compliant" not in phrase


def test_own_checks_that_passed_leave_the_standing_alone() -> None:
    phrase = standing(ALL_PASS, checked=35, catalogue=35, own=Counter())

    assert phrase.startswith("compliant on every checked policy")


def report(when: str, outcome: str, **extra: Any) -> Any:
    return SimpleNamespace(
        when=when,
        passed=outcome == "passed",
        failed=outcome == "failed",
        skipped=outcome == "skipped",
        **extra,
    )


@pytest.mark.parametrize(
    ("phases", "expected"),
    [
        ([("setup", "passed"), ("call", "passed"), ("teardown", "passed")], "passed"),
        ([("setup", "passed"), ("call", "failed"), ("teardown", "failed")], "failed"),
        ([("setup", "passed"), ("call", "passed"), ("teardown", "failed")], "error"),
        ([("setup", "failed"), ("teardown", "passed")], "error"),
        ([("setup", "skipped"), ("teardown", "passed")], "skipped"),
    ],
)
def test_an_own_tests_outcome_follows_pytests_count(
    phases: list[tuple[str, str]], expected: str
) -> None:
    outcome = None
    for when, result in phases:
        outcome = own_outcome(outcome, report(when, result))

    assert outcome == expected


def test_an_expected_failure_is_xfailed_not_failed() -> None:
    outcome = own_outcome(None, report("call", "skipped", wasxfail="known bug"))

    assert outcome == "xfailed"
