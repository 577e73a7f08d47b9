"""Nothing of a boot is left on this machine: after an error, a second Ctrl-C, a kill."""

from __future__ import annotations

import json
import os
import queue
import random
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from pytest_amipolicy.imaging import network
from pytest_amipolicy.imaging.boot import BootedMachine, booted
from pytest_amipolicy.imaging.teardown import reap_slot
from pytest_amipolicy.interrupts import WAIT_LINE
from tests.integration.conftest import LaunchKey
from tests.support.machines import (
    network_left_in_free_slot,
    network_of,
    slot_of,
    traces,
)

pytestmark = pytest.mark.integration


def test_nothing_is_left_after_a_boot_even_when_the_body_raises(
    debian_image: Path, launch_key: LaunchKey
) -> None:
    seen: list[BootedMachine] = []

    with (
        pytest.raises(RuntimeError, match="inside"),
        booted(debian_image, login_user="admin", public_key=launch_key.public) as m,
    ):
        seen.append(m)
        assert traces(m.name, m.merged) and network_of(slot_of(m))
        raise RuntimeError("failure inside the boot")

    m = seen[0]
    assert traces(m.name, m.merged) == []
    assert network_left_in_free_slot(slot_of(m)) == []
    assert not m.merged.parent.exists()


# A unit whose stop takes longer than the plugin waits for a poweroff, so that
# a second Ctrl-C surely arrives while the container is still being stopped.
SLOW_STOP_CONFTEST = """
def pytest_amipolicy_prepare_image(config, target, root):
    units = root / "etc/systemd/system"
    (units / "slow-stop.service").write_text(
        "[Service]\\nType=oneshot\\nRemainAfterExit=yes\\nExecStart=/bin/true\\n"
        "ExecStop=/bin/sleep 30\\n[Install]\\nWantedBy=multi-user.target\\n"
    )
    wants = units / "multi-user.target.wants"
    wants.mkdir(exist_ok=True)
    (wants / "slow-stop.service").symlink_to("/etc/systemd/system/slow-stop.service")
"""

MACHINE_NAME = re.compile(r" as (amipolicy-\d+-\d+) at ")
# systemd-nspawn's directory per machine, which it removes when it exits.
PROPAGATE_DIR = Path("/run/systemd/nspawn/propagate")


class Output:
    """The lines of a running process, read as they come."""

    def __init__(self, process: subprocess.Popen[str]) -> None:
        self.lines: list[str] = []
        self._queue: queue.Queue[str] = queue.Queue()
        self._reader = threading.Thread(target=self._read, args=(process,))
        self._reader.start()

    def _read(self, process: subprocess.Popen[str]) -> None:
        assert process.stdout is not None
        for line in process.stdout:
            self._queue.put(line)
        self._queue.put("")

    def until(self, text: str, timeout: float) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                line = self._queue.get(timeout=deadline - time.monotonic())
            except queue.Empty:
                break
            self.lines.append(line)
            if text in line:
                return line
            if not line:
                break
        raise AssertionError(f"{text!r} never came; output:\n{self.text()}")

    def rest(self) -> str:
        self._reader.join(30)
        while not self._queue.empty():
            self.lines.append(self._queue.get())
        return self.text()

    def text(self) -> str:
        return "".join(self.lines)


def processes() -> list[str]:
    """The command line of every process, arguments joined by spaces."""
    found = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            arguments = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        found.append(" ".join(a.decode(errors="replace") for a in arguments))
    return found


def container_root(name: str) -> Path:
    """The directory the running container of ``name`` boots from."""
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            arguments = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if f"--machine={name}".encode() in arguments:
            (directory,) = (a for a in arguments if a.startswith(b"--directory="))
            return Path(directory.split(b"=", 1)[1].decode())
    raise AssertionError(f"no container {name} is running")


def demo_run(directory: Path, *options: str) -> tuple[subprocess.Popen[str], Output]:
    """Start pytest on the demo image in ``directory``, as from a terminal."""
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "pytest",
            "-p",
            "no:cacheprovider",
            "--ami-image=demo",
            *options,
        ],
        cwd=directory,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
        # A background job of a shell may ignore SIGINT; a terminal's does not.
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    return process, Output(process)


def test_a_second_ctrl_c_waits_for_the_teardown_and_leaves_nothing(
    debian_image: Path, tmp_path: Path
) -> None:
    (tmp_path / "conftest.py").write_text(SLOW_STOP_CONFTEST)
    process, output = demo_run(tmp_path)

    try:
        booting = output.until(" as amipolicy-", timeout=120)
        output.until("answers SSH", timeout=120)
        name = MACHINE_NAME.search(booting).group(1)  # type: ignore[union-attr]
        merged = container_root(name)

        process.send_signal(signal.SIGINT)
        time.sleep(1.5)
        process.send_signal(signal.SIGINT)
        process.wait(90)
    finally:
        if process.poll() is None:
            process.kill()
    text = output.rest()

    assert process.returncode == pytest.ExitCode.INTERRUPTED, text
    assert traces(name, merged) == []
    assert network_left_in_free_slot(f"amipolicy-{name.split('-')[1]}") == []
    assert not merged.parent.exists()
    assert "Traceback" not in text


def test_two_quick_ctrl_c_while_facts_are_gathered_leave_reports_marked_interrupted(
    debian_image: Path, tmp_path: Path
) -> None:
    process, output = demo_run(tmp_path, "--ami-evidence=e.json")

    try:
        booting = output.until(" as amipolicy-", timeout=120)
        output.until("gathering facts", timeout=120)
        name = MACHINE_NAME.search(booting).group(1)  # type: ignore[union-attr]

        # The second lands while pytest still handles the first.
        process.send_signal(signal.SIGINT)
        time.sleep(0.2)
        process.send_signal(signal.SIGINT)
        process.wait(90)
    finally:
        if process.poll() is None:
            process.kill()
    text = output.rest()

    document = json.loads((tmp_path / "e.json").read_text(encoding="utf-8"))
    removed = f"image:demo: container {name} stopped, overlay and network removed"
    assert process.returncode == pytest.ExitCode.INTERRUPTED, text
    assert "Traceback" not in text
    assert f"amipolicy: {WAIT_LINE}" in text
    assert "amipolicy: the run was interrupted: " in text
    assert f"cleanup: {removed}" in text
    assert document["interrupted"] is True
    assert document["cleanup"] == [removed]


def test_ctrl_c_while_waiting_for_ssh_stops_the_boot_at_once_and_lists_it(
    debian_image: Path, tmp_path: Path
) -> None:
    process, output = demo_run(tmp_path, "--ami-evidence=e.json")

    try:
        booting = output.until(" as amipolicy-", timeout=120)
        name = MACHINE_NAME.search(booting).group(1)  # type: ignore[union-attr]

        # The line comes just before systemd-nspawn starts: wait until it has
        # surely started, but well before SSH answers (seconds) and before the
        # container's systemd would heed a poweroff.
        time.sleep(0.5)
        process.send_signal(signal.SIGINT)
        interrupted = time.monotonic()
        output.until(f"stopping the boot of {name}", timeout=10)
        process.wait(90)
        took = time.monotonic() - interrupted
    finally:
        if process.poll() is None:
            process.kill()
    text = output.rest()

    document = json.loads((tmp_path / "e.json").read_text(encoding="utf-8"))
    removed = f"image:demo: container {name} stopped, overlay and network removed"
    assert process.returncode == pytest.ExitCode.INTERRUPTED, text
    assert took < 8, text
    assert f"cleanup: {removed}" in text
    assert document["cleanup"] == [removed]
    assert not (PROPAGATE_DIR / name).exists()
    assert not any(f"--machine={name}" in line for line in processes())


KILLED_RUN = """
import sys, time
from pathlib import Path
from pytest_amipolicy.imaging.boot import booted

with booted(Path(sys.argv[1]), login_user="admin", public_key=sys.argv[2]) as m:
    print(m.name, m.merged, flush=True)
    time.sleep(600)
"""


@pytest.mark.parametrize("claim", ["the same slot", "any other slot"])
def test_the_next_boot_removes_what_a_killed_run_left_in_its_slot(
    debian_image: Path,
    launch_key: LaunchKey,
    monkeypatch: pytest.MonkeyPatch,
    claim: str,
) -> None:
    process = subprocess.Popen(
        [sys.executable, "-c", KILLED_RUN, str(debian_image), launch_key.public],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        name, merged_text = process.stdout.readline().split()
    finally:
        process.kill()
        process.wait()
    merged = Path(merged_text)
    slot = int(name.split("-")[1])
    assert traces(name, merged) and network_of(f"amipolicy-{slot}")

    # Slots are claimed from a random start: start at the killed run's, or
    # just after it.
    start = slot - 1 if claim == "the same slot" else slot % len(network.SLOTS)
    monkeypatch.setattr(random, "randrange", lambda count: start)
    with network.private_network(reap=reap_slot) as claimed:
        assert (claimed.slot == slot) == (claim == "the same slot")
        left_inside = traces(name, merged)

    assert left_inside == []
    assert not merged.parent.exists()
    assert network_left_in_free_slot(f"amipolicy-{slot}") == []
    # nspawn, killed with the rest, could not remove its own directory.
    assert not (PROPAGATE_DIR / name).exists()
