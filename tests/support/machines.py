"""Looking at a booted container from this machine: logging in, and what is left."""

from __future__ import annotations

import fcntl
import os
import subprocess
from pathlib import Path

import paramiko

from pytest_amipolicy.imaging.boot import BootedMachine
from pytest_amipolicy.imaging.network import LOCK_DIR
from tests.integration.conftest import LaunchKey


def run(machine: BootedMachine, key: LaunchKey, command: str) -> tuple[int, str]:
    client = paramiko.SSHClient()
    client.set_missing_host_key_policy(paramiko.AutoAddPolicy())
    client.connect(
        machine.address,
        port=machine.port,
        username=machine.login_user,
        pkey=key.pkey,
        look_for_keys=False,
        allow_agent=False,
        timeout=10,
    )

    try:
        _, stdout, stderr = client.exec_command(command, timeout=30)
        output = stdout.read().decode() + stderr.read().decode()
        return stdout.channel.recv_exit_status(), output
    finally:
        client.close()


def traces(machine_name: str, merged: Path) -> list[str]:
    """What of one boot is still visible on the host: mounts and processes."""
    found = []

    with open("/proc/self/mounts", encoding="utf-8") as mounts:
        found += [line for line in mounts if str(merged.parent) in line]

    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        except OSError:
            continue
        if machine_name.encode() in cmdline:
            found.append(f"process {pid}")

    return found


def network_of(slot_name: str) -> list[str]:
    found = []

    if Path("/run/netns", slot_name).exists():
        found.append(f"netns {slot_name}")
    host_link = slot_name.replace("-", "")
    if Path("/sys/class/net", host_link).exists():
        found.append(f"link {host_link}")

    return found


def network_left_in_free_slot(slot_name: str) -> list[str]:
    """The slot's namespace and link, if nobody holds the slot now.

    Another boot of the parallel suite may have claimed the slot since; its
    network is then its own, and nothing of the finished boot can be told apart.
    """
    lock_path = LOCK_DIR / f"slot-{slot_name.rsplit('-', 1)[1]}.lock"

    with open(lock_path, "w") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return []
        return network_of(slot_name)


def slot_of(machine: BootedMachine) -> str:
    return f"amipolicy-{machine.address.split('.')[2]}"


def mounts_under(directory: str) -> list[str]:
    with open("/proc/self/mounts", encoding="utf-8") as mounts:
        return [line for line in mounts if directory in line]


def loops_of(image: Path) -> str:
    result = subprocess.run(
        ["losetup", "--list", "--noheadings", "--output", "BACK-FILE"],
        capture_output=True,
        text=True,
    )

    return "\n".join(line for line in result.stdout.splitlines() if str(image) in line)
