"""Tearing down booted containers: without being cut short, and after a crash.

Two things can leave a container behind. An interrupt while a container
powers off would cut its teardown short, so the teardown runs inside
:func:`pytest_amipolicy.interrupts.deferred`. A process killed outright
(SIGKILL, a crashed xdist worker) tears down nothing, so each boot leaves a
record next to its network slot's lock, and whoever claims the slot next calls
:func:`reap_slot`, which stops the container and removes the overlay the record
names and the directory systemd-nspawn keeps for each machine.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

from pytest_amipolicy.imaging.network import LOCK_DIR
from pytest_amipolicy.imaging.overlay import is_mounted, unmount

logger = logging.getLogger(__name__)

MACHINE_PREFIX = "amipolicy-"
# Scratch directories a boot makes, by prefix; a record naming anything else is
# not acted on.
SCRATCH_PREFIXES = ("amipolicy-overlay-", "amipolicy-console-")
KILL_WAIT = 5.0
# How long a container that was checked gets to power off in order.
POWEROFF_TIMEOUT = 10.0
# How long systemd-nspawn gets to clean up and exit once its container is gone.
EXIT_WAIT = 5.0
# systemd-nspawn makes a directory here per machine (for machinectl's bind and
# copy-to); it removes it when it exits, but not when it is killed.
PROPAGATE_DIR = Path("/run/systemd/nspawn/propagate")


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

    # Any machine of this slot is gone: the slot's lock is held by the caller.
    for directory in sorted(PROPAGATE_DIR.glob(f"{MACHINE_PREFIX}{slot}-*")):
        if remove_propagate_dir(directory.name):
            removed.append(f"directory {directory}")

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


def stop_container(
    process: subprocess.Popen[bytes], name: str, *, poweroff: bool
) -> None:
    """Stop the container of ``process`` (systemd-nspawn) and leave nothing of it.

    A machine that was checked is powered off in order first. One that never
    answered is not: its boot was cut short or failed, and early in a boot
    systemd ignores the poweroff signal, so asking would only mean waiting for
    the timeout. Then whatever still runs inside is killed, which ends the
    container; nspawn sees its child go, removes what it made and exits, and is
    killed itself only if it does not.
    """
    if poweroff and process.poll() is None:
        # nspawn turns SIGTERM into an orderly poweroff of the container.
        process.terminate()
        try:
            process.wait(POWEROFF_TIMEOUT)
        except subprocess.TimeoutExpired:
            logger.warning("%s did not power off in time; killing it", name)

    deadline = time.monotonic() + EXIT_WAIT
    while process.poll() is None and time.monotonic() < deadline:
        # Killed again each round: right after the start nspawn may still be
        # making the process that becomes the container's PID 1.
        for child in _descendants(process.pid):
            _kill(child)
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(0.05)

    if process.poll() is None:
        logger.warning("systemd-nspawn of %s did not exit; killing it", name)
        stop_tree(process.pid)
        process.wait()
    remove_propagate_dir(name)
    logger.debug("container %s stopped", name)


def remove_propagate_dir(name: str) -> bool:
    """Remove the directory nspawn keeps for machine ``name``; say if there was one.

    Only an empty one is removed: nspawn leaves it empty, and a directory
    holding something is not for this plugin to delete.
    """
    path = PROPAGATE_DIR / name
    try:
        path.rmdir()
    except FileNotFoundError:
        return False
    except OSError as error:
        logger.warning("cannot remove %s: %s", path, error.strerror)
        return False
    return True


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
