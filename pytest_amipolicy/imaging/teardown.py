"""Tearing down booted containers: without being cut short, and after a crash.

Two things can leave a container behind. A second Ctrl-C (or SIGTERM) while a
container powers off would interrupt its teardown half way, so
:func:`interrupts_deferred` holds such signals until the teardown is done and
then raises the interrupt. A process killed outright (SIGKILL, a crashed xdist
worker) tears down nothing, so each boot leaves a record next to its network
slot's lock, and whoever claims the slot next calls :func:`reap_slot`, which
stops the container and removes the overlay the record names.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from types import FrameType
from typing import Any

from pytest_amipolicy.imaging.network import LOCK_DIR
from pytest_amipolicy.imaging.overlay import is_mounted, unmount

logger = logging.getLogger(__name__)

MACHINE_PREFIX = "amipolicy-"
# Scratch directories a boot makes, by prefix; a record naming anything else is
# not acted on.
SCRATCH_PREFIXES = ("amipolicy-overlay-", "amipolicy-console-")
KILL_WAIT = 5.0

_held_depth = 0


@contextlib.contextmanager
def interrupts_deferred() -> Iterator[None]:
    """Hold SIGINT and SIGTERM during the block; raise KeyboardInterrupt after it.

    Only the main thread receives signals, so elsewhere this does nothing.
    Nested uses hold the signals until the outermost one ends.
    """
    global _held_depth

    if threading.current_thread() is not threading.main_thread():
        yield
        return

    if _held_depth:
        _held_depth += 1
        try:
            yield
        finally:
            _held_depth -= 1
        return

    caught: list[int] = []

    def hold(signum: int, frame: FrameType | None) -> None:
        caught.append(signum)
        logger.warning("interrupted again: finishing the teardown first")

    previous = {sig: signal.signal(sig, hold) for sig in _HELD}
    _held_depth = 1
    try:
        yield
    finally:
        _held_depth = 0
        for sig, handler in previous.items():
            signal.signal(sig, handler if handler is not None else signal.SIG_DFL)
        if caught:
            raise KeyboardInterrupt(f"signal {caught[0]} during teardown")


_HELD = (signal.SIGINT, signal.SIGTERM)


def machine_name(slot: int) -> str:
    """Return the container name of a boot in ``slot`` by this process."""
    return f"{MACHINE_PREFIX}{slot}-{os.getpid()}"


def record_path(slot: int) -> Path:
    return LOCK_DIR / f"slot-{slot}.boot"


def record_boot(slot: int, merged: Path, console: Path) -> None:
    """Note what a boot in ``slot`` made, for the next owner if this one dies."""
    record = {"pid": os.getpid(), "merged": str(merged), "console": str(console)}
    record_path(slot).write_text(json.dumps(record), encoding="utf-8")


def forget_boot(slot: int) -> None:
    record_path(slot).unlink(missing_ok=True)


def reap_slot(slot: int) -> list[str]:
    """Remove what a killed process left of its boot in ``slot``; say what.

    Called by the slot's new owner, holding its lock, so nothing found here
    belongs to a live boot.
    """
    removed: list[str] = []
    record = _read_record(slot)
    directories = [Path(record[key]) for key in ("merged", "console") if key in record]

    for pid, merged in _containers_of(slot):
        _kill_tree(pid)
        removed.append(f"container process {pid}")
        if merged is not None:
            directories.append(merged)

    for directory in dict.fromkeys(directories):
        scratch = directory.parent if directory.name == "merged" else directory
        if not scratch.name.startswith(SCRATCH_PREFIXES):
            logger.warning("boot record of slot %d names %s; left alone", slot, scratch)
            continue
        if directory.name == "merged" and is_mounted(directory):
            unmount(directory)
            removed.append(f"overlay {directory}")
        if scratch.exists() and not is_mounted(directory):
            shutil.rmtree(scratch, ignore_errors=True)

    forget_boot(slot)
    if removed:
        logger.warning(
            "slot %d: removed what a killed run left: %s", slot, ", ".join(removed)
        )
    return removed


def _read_record(slot: int) -> dict[str, Any]:
    try:
        record: dict[str, Any] = json.loads(record_path(slot).read_text("utf-8"))
    except (OSError, ValueError):
        return {}
    return record


def _containers_of(slot: int) -> list[tuple[int, Path | None]]:
    """Return nspawn processes of ``slot`` with the root directory they boot."""
    wanted = f"--machine={MACHINE_PREFIX}{slot}-".encode()
    found: list[tuple[int, Path | None]] = []

    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            arguments = Path(f"/proc/{entry}/cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if not any(argument.startswith(wanted) for argument in arguments):
            continue

        directory = next(
            (
                Path(os.fsdecode(argument.split(b"=", 1)[1]))
                for argument in arguments
                if argument.startswith(b"--directory=")
            ),
            None,
        )
        found.append((int(entry), directory))

    return found


def stop_tree(pid: int) -> None:
    """Kill a container process and everything it started."""
    # Without a scope unit nothing else would reap the container's processes:
    # killing the container's PID 1 ends its whole PID namespace.
    for child in _descendants(pid):
        _kill(child)
    _kill(pid)


def _kill_tree(pid: int) -> None:
    stop_tree(pid)

    # Not our child, so it cannot be waited for: watch it go instead.
    deadline = time.monotonic() + KILL_WAIT
    while Path(f"/proc/{pid}").exists() and time.monotonic() < deadline:
        time.sleep(0.1)


def _descendants(pid: int) -> list[int]:
    found = []
    pending = [pid]

    while pending:
        parent = pending.pop()
        for child in _children(parent):
            found.append(child)
            pending.append(child)

    return found


def _children(pid: int) -> list[int]:
    children: list[int] = []

    try:
        tasks = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return children

    for task in tasks:
        try:
            with open(f"/proc/{pid}/task/{task}/children", encoding="ascii") as f:
                children += [int(child) for child in f.read().split()]
        except OSError:
            continue

    return children


def _kill(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)
