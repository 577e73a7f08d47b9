"""Under pytest-xdist, every policy of a target runs on the one worker that opened it."""

from __future__ import annotations

import pytest

pytest.importorskip("xdist")

# Opening a target and gathering its facts are replaced: each open is logged,
# so a target split over two workers shows up as opened twice.
FAKE_MACHINES = """
from pytest_amipolicy import runtime
from pytest_amipolicy.facts import Facts
from pytest_amipolicy.targets import Connection
from pytest_amipolicy.targets.host import HostTarget


def _open(self, progress):
    with open("opens.log", "a", encoding="utf-8") as log:
        log.write(self.label + "\\n")
    return Connection(host=None, platform="linux", login_user="admin")


def _gather(run, progress):
    return Facts(target=run.label, platform="linux", login_user="admin")


HostTarget.open = _open
runtime.gather_facts = _gather
"""

TARGETS = ("ssh://admin@192.0.2.10", "ssh://admin@192.0.2.20")


@pytest.mark.parametrize("dist", [[], ["--dist", "load"], ["--dist", "loadgroup"]])
def test_each_target_is_opened_once_whatever_the_distribution_mode(
    pytester: pytest.Pytester, dist: list[str]
) -> None:
    pytester.makeconftest(FAKE_MACHINES)

    result = pytester.runpytest_subprocess(
        "-p",
        "no:cacheprovider",
        "-p",
        "no:hypothesispytest",
        "-n",
        "2",
        *dist,
        "-v",
        *(f"--ami-host={target}" for target in TARGETS),
        "--ami-policy=SSH-ROOT,SUDO,EOL,HOST-KEYS",
    )

    opens = (pytester.path / "opens.log").read_text(encoding="utf-8").split()
    assert sorted(opens) == sorted(TARGETS)
    result.stdout.fnmatch_lines(
        ["*policy?ssh://admin@192.0.2.10-SUDO?@ssh://admin@192.0.2.10*"]
    )
