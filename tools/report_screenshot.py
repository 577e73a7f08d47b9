"""Regenerate docs/report.png from a real run, as root on a machine with the demo image.

It runs the plugin over the compliant demo image and a faulty copy of it
(the same faults the integration test lays: an AWS key file, a private key,
a password hash, an authorized key, password login), opens the HTML report
in headless Chromium with a few failing rows expanded and skipped rows
hidden, and writes the screenshot::

    python3 tools/report_screenshot.py [docs/report.png]

The page is 1400 pixels wide and as tall as its content. With Debian's
pngquant installed (``apt-get install pngquant``) the picture is reduced to
a palette, about a third of Chromium's size, which keeps it under 400 KB.
Run with the project installed (``.ci/install``).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

REPOSITORY = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPOSITORY))

from pytest_amipolicy.imaging.build import build_debian_image  # noqa: E402
from tests.integration.test_report_redaction import (  # noqa: E402
    FAULTY,
    INI,
    conftest_for,
    plant,
)
from tests.report.conftest import chromium  # noqa: E402

logger = logging.getLogger("report_screenshot")

WIDTH = 1400

# Rows whose evidence is shown; short enough that the picture stays readable.
EXPANDED = ("AWS-KEYS", "AUTHORIZED-KEYS", "CREDENTIALS")

# Appended to a copy of the report: expands the chosen rows, hides skipped
# ones, then writes the page's height where --dump-dom can read it.
ARRANGE = """
<script>
window.addEventListener("load", () => {
  document.querySelector('input[data-test-result="skipped"]')?.click();
  for (const id of %s) {
    document.getElementById(id)?.querySelector(".collapsible td.col-result")?.click();
  }
  const out = document.createElement("pre");
  out.id = "amipolicy-height";
  out.style.display = "none";
  out.textContent = String(document.documentElement.scrollHeight);
  document.body.appendChild(out);
});
</script>
"""


def run_plugin(directory: Path) -> Path:
    """Check both images into ``directory``; return the HTML report's path."""
    planted = plant()
    (directory / "conftest.py").write_text(conftest_for(planted))
    (directory / "pytest.ini").write_text(INI + "render_collapsed = all\n")
    (directory / "faulty").symlink_to(build_debian_image(), target_is_directory=True)

    logger.info("checking the demo image and a faulty copy of it")
    completed = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-p",
            "no:cacheprovider",
            "-p",
            "no:hypothesispytest",
            "--ami-image=demo",
            f"--ami-image={directory / 'faulty'}",
            "--html=report.html",
            "--self-contained-html",
        ],
        cwd=directory,
        env={**os.environ, "PYTHONPATH": str(REPOSITORY)},
        capture_output=True,
        text=True,
        timeout=900,
    )
    report = directory / "report.html"
    if not report.is_file():
        raise SystemExit(f"the run wrote no report:\n{completed.stdout[-3000:]}")
    return report


def screenshot(report: Path, output: Path) -> None:
    """Arrange the report and photograph it, as tall as the arranged page."""
    ids = [f"amipolicy::policy[{FAULTY}-{policy}]" for policy in EXPANDED]
    arranged = report.with_name("arranged.html")
    arranged.write_text(
        report.read_text(encoding="utf-8") + ARRANGE % json.dumps(ids),
        encoding="utf-8",
    )

    dom = chromium(arranged, f"--window-size={WIDTH},900", "--dump-dom").stdout
    height = int(
        dom.split('id="amipolicy-height"', 1)[1].split(">", 1)[1].split("<")[0]
    )

    shot = report.with_name("report.png")
    chromium(
        arranged,
        f"--window-size={WIDTH},{height}",
        "--hide-scrollbars",
        f"--screenshot={shot}",
    )
    output.parent.mkdir(parents=True, exist_ok=True)
    if shutil.which("pngquant"):
        subprocess.run(
            ["pngquant", "--quality=70-95", "--speed=1", "--force", "--output"]
            + [str(output), str(shot)],
            check=True,
        )
    else:
        logger.info("no pngquant: the picture is kept as Chromium made it")
        shutil.copyfile(shot, output)

    size = output.stat().st_size // 1024
    logger.info("wrote %s (%d x %d pixels, %d KB)", output, WIDTH, height, size)


def main(argv: Sequence[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "output", nargs="?", type=Path, default=REPOSITORY / "docs" / "report.png"
    )
    arguments = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")

    with tempfile.TemporaryDirectory(prefix="amipolicy-screenshot-") as directory:
        screenshot(run_plugin(Path(directory)), arguments.output.resolve())
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
