"""Fixtures of the report tests: a pytester directory with two fake machines.

The scenario (see ``scenario.py``) gives deterministic pass, fail, error, skip
and manual rows without booting anything; ``rendered`` opens a report in a real
headless Chromium, since pytest-html 4 builds its rows with JavaScript.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import pytest

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"

# The scenario is copied as text, never imported here: importing it would
# replace this session's catalogue. These mirror its constants.
SCENARIO = Path(__file__).with_name("scenario.py")
GOOD = "ssh://admin@192.0.2.10"
BAD = "ssh://admin@192.0.2.20"
PLANTED_SECRET = "PLANTED-SECRET-7f3a9c"
ACCOUNT_ID = "123456789012"
ACCESS_KEY_ID = "AKIAZ3MPLESCENAR1O7Q"
LONG_KEY_LINE = "QkxPTkct" * 8

# A plugin module for a pytester run: Ctrl-C, as it were, when the fourth
# policy starts.
INTERRUPT_AT_FOURTH_POLICY = """
import pytest

started = []


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item):
    started.append(item.nodeid)
    if len(started) == 4:
        raise KeyboardInterrupt
"""

INI = """\
[pytest]
amipolicy_redact =
    PLANTED-SECRET-\\w+
    \\b\\d{12}\\b
"""


@pytest.fixture
def scenario_dir(pytester: pytest.Pytester) -> pytest.Pytester:
    """A pytester directory whose conftest fakes two machines and a catalogue."""
    pytester.makeconftest(SCENARIO.read_text(encoding="utf-8"))
    pytester.makeini(INI)
    return pytester


def run_report(pytester: pytest.Pytester, *args: str) -> pytest.RunResult:
    """Check both fake machines in a fresh interpreter, writing the HTML report."""
    # A subprocess: the scenario replaces the catalogue, which must not leak
    # into this session or into the next run.
    return pytester.runpytest_subprocess(
        "-p",
        "no:cacheprovider",
        # Installed here for other projects; its summary costs seconds per run.
        "-p",
        "no:hypothesispytest",
        f"--ami-host={GOOD}",
        f"--ami-host={BAD}",
        "--html=report.html",
        "--self-contained-html",
        *args,
    )


needs_chromium = pytest.mark.skipif(
    not Path(CHROMIUM).exists(),
    reason="needs Debian's chromium (apt-get install -y chromium) to render the "
    "report's JavaScript",
)


def chromium(page: Path, *args: str) -> subprocess.CompletedProcess[str]:
    profile = page.parent / "chromium-profile"
    return subprocess.run(
        [
            CHROMIUM,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            f"--user-data-dir={profile}",
            *args,
            page.as_uri(),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )


def rendered(page: Path) -> str:
    """The report's DOM after its JavaScript ran, every row expanded."""
    return chromium(page, "--dump-dom").stdout


# Appended to a copy of the report: writes the size of each summary table
# (by caption) into the page, where --dump-dom can read it.
MEASURE = """
<script>
const sizes = {};
for (const table of document.querySelectorAll(".amipolicy-counts")) {
  const box = table.getBoundingClientRect();
  sizes[table.caption.textContent] = [box.width, box.height];
}
const out = document.createElement("pre");
out.id = "amipolicy-layout";
out.textContent = JSON.stringify(sizes);
document.body.appendChild(out);
</script>
"""


def summary_table_sizes(page: Path) -> dict[str, list[float]]:
    """Width and height of each summary table as Chromium lays the page out."""
    measured = page.with_name("measured.html")
    measured.write_text(page.read_text(encoding="utf-8") + MEASURE, encoding="utf-8")

    dom = chromium(measured, "--window-size=1400,900", "--dump-dom").stdout
    sizes: dict[str, list[float]] = json.loads(texts_by(dom)["amipolicy-layout"])
    return sizes


class _Collector(HTMLParser):
    """Text inside every element that has an id or a class asked for."""

    def __init__(self, key: str) -> None:
        super().__init__(convert_charrefs=True)
        self.key = key
        self.open: list[tuple[str, str, int]] = []
        self.depth = 0
        self.found: dict[str, list[str]] = {}

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        # Tags separate words ("a<br>b" reads "a b").
        for value, _, _ in self.open:
            self.found[value].append(" ")

        self.depth += 1
        if tag in VOID:
            self.depth -= 1
            return
        value = dict(attrs).get(self.key)
        if value:
            self.open.append((value, tag, self.depth))
            self.found.setdefault(value, [])

    def handle_endtag(self, tag: str) -> None:
        if tag in VOID:
            return
        if self.open and self.open[-1][2] == self.depth:
            self.open.pop()
        self.depth -= 1

    def handle_data(self, data: str) -> None:
        for value, _, _ in self.open:
            self.found[value].append(data)


VOID = {"br", "img", "input", "meta", "link", "hr", "source", "col", "wbr"}


def texts_by(dom: str, key: str = "id") -> dict[str, str]:
    """Map each id (or class) in ``dom`` to the text it holds, spaces squeezed."""
    collector = _Collector(key)
    collector.feed(dom)
    return {
        value: " ".join("".join(parts).split())
        for value, parts in collector.found.items()
    }
