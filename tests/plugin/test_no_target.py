"""A bare `pytest` with nothing to run says how to name a target."""

from __future__ import annotations

import pytest

HINT = (
    "amipolicy: no target named; give --ami=ID, --ami-host=SPEC or "
    "--ami-image=PATH (see pytest --help)"
)


def test_a_run_with_no_target_and_no_tests_says_how_to_name_one(
    pytester: pytest.Pytester,
) -> None:
    # In a fresh process, as a user runs it: in this one the plugin is already
    # imported, which can add a warning that changes pytest's last line.
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")

    assert result.ret == pytest.ExitCode.NO_TESTS_COLLECTED
    result.stdout.fnmatch_lines([HINT, "*no tests ran*"])


def test_a_run_of_the_users_own_tests_has_no_hint(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_mine="def test_it():\n    pass\n")

    result = pytester.runpytest("-p", "no:cacheprovider")

    result.assert_outcomes(passed=1)
    assert "no target named" not in result.stdout.str()


def test_a_run_that_deselected_every_test_of_the_user_has_no_hint(
    pytester: pytest.Pytester,
) -> None:
    pytester.makepyfile(test_mine="def test_it():\n    pass\n")

    result = pytester.runpytest("-p", "no:cacheprovider", "-k", "nothing_matches")

    assert result.ret == pytest.ExitCode.NO_TESTS_COLLECTED
    assert "no target named" not in result.stdout.str()
