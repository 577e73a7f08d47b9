"""Boot a root tree in a container and wait until its launch key lets us in.

:func:`booted` gives a root tree the first boot of an EC2 instance: a fresh
instance id, the launch key handed to cloud-init (through a NoCloud seed, where
EC2 uses its metadata service), and a private network address to reach SSH on.
The tree is booted by ``systemd-nspawn`` on a throwaway overlay, so the tree
itself is never changed, and everything the boot created is removed on the way
out: on success, on error, on Ctrl-C and when pytest is sent SIGTERM.
"""

from __future__ import annotations

import atexit
import logging
import re
import signal
import socket
import subprocess
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from types import FrameType

from pytest_amipolicy.errors import ImageError
from pytest_amipolicy.imaging.network import Network, private_network
from pytest_amipolicy.imaging.overlay import overlay
from pytest_amipolicy.imaging.paths import inside
from pytest_amipolicy.imaging.source import require_boot_tools
from pytest_amipolicy.imaging.teardown import (
    forget_boot,
    machine_name,
    reap_slot,
    record_boot,
    stop_container,
)
from pytest_amipolicy.interrupts import deferred

logger = logging.getLogger(__name__)

SSH_PORT = 22
SEED_DIR = "var/lib/cloud/seed/nocloud"
HARNESS_DROPIN = "etc/cloud/cloud.cfg.d/99-amipolicy-boot.cfg"
OS_RELEASE_FILES = ("etc/os-release", "usr/lib/os-release")
CONSOLE_TAIL_LINES = 15

# Laid over the image at boot only. The seed sits in NoCloud's directory, so
# cloud-init must look there whatever datasources the image lists, and the
# namespace's address is already set, so cloud-init must not manage the network.
HARNESS_CLOUD_CONFIG = """\
# Written by pytest-amipolicy for a local test boot; not part of the image.
datasource_list: [NoCloud, None]
network:
  config: disabled
"""


@dataclass(frozen=True)
class BootedMachine:
    """A container booted from an image, reachable over SSH with the launch key."""

    name: str
    address: str
    port: int
    login_user: str
    merged: Path
    boot_time: float
    instance_id: str
    console_log: Path


@contextmanager
def booted(
    root: Path,
    *,
    login_user: str,
    public_key: str,
    prepare: Callable[[Path], None] | None = None,
    progress: Callable[[str], None] | None = None,
    started: Callable[[str], None] | None = None,
    timeout: float = 60,
) -> Iterator[BootedMachine]:
    """Boot ``root`` in a container and yield it once ``login_user`` can log in.

    ``prepare`` is called with the merged root before the boot, to lay faults
    over the image; ``progress`` receives one-line messages for the terminal;
    ``started`` is called with the machine's name once its container runs, so
    that a caller knows there is one to account for when the boot fails.
    """
    require_boot_tools()
    begun = time.monotonic()
    stack = ExitStack()
    # Cleanup must also run when pytest is terminated, not only on return.
    _register(stack)
    container: _Container | None = None

    try:
        # The slot first: claiming it removes what a killed run left in it.
        network = stack.enter_context(private_network(reap=reap_slot))
        name = machine_name(network.slot)
        stack.callback(forget_boot, network.slot)

        merged = stack.enter_context(overlay(root))
        scratch = Path(tempfile.mkdtemp(prefix="amipolicy-console-"))
        stack.callback(_remove_scratch, scratch)
        console_log = scratch / "console.log"
        record_boot(network.slot, merged, scratch)

        if prepare is not None:
            prepare(merged)

        # Not shaped like an EC2 id: it shows in the evidence (sudo names the
        # host), where it must not pass for a real instance.
        instance_id = f"amipolicy-local-{uuid.uuid4().hex[:12]}"
        _write_seed(merged, instance_id, login_user, public_key)
        stand_in = _os_release_stand_in(merged)

        _report(progress, f"booting {root} as {name} at {network.address}")
        # Held until the stop is registered and the caller told, or an
        # interrupt in between would leave the container running, or unnamed.
        with deferred():
            container = _Container(_start(merged, name, network, console_log), name)
            stack.callback(container.stop)
            if started is not None:
                started(name)

        _wait_for_login(
            container.process,
            network.address,
            merged,
            instance_id,
            login_user,
            public_key,
            console_log,
            begun + timeout,
        )
        container.up = True
        boot_time = time.monotonic() - begun
        _report(progress, f"{name} answers SSH after {boot_time:.1f} s")
        if stand_in is not None:
            stand_in.unlink()

        yield BootedMachine(
            name=name,
            address=network.address,
            port=SSH_PORT,
            login_user=login_user,
            merged=merged,
            boot_time=boot_time,
            instance_id=instance_id,
            console_log=console_log,
        )
    finally:
        # An interrupt must not cut the teardown short: the container would
        # keep running with its overlay mounted.
        with deferred():
            if container is not None:
                _report(progress, container.stopping_line())
            _unregister(stack)
            stack.close()


@dataclass
class _Container:
    """The systemd-nspawn process of a boot, and whether the machine came up."""

    process: subprocess.Popen[bytes]
    name: str
    up: bool = False

    def stopping_line(self) -> str:
        if self.up:
            return f"tearing down {self.name}"
        return f"stopping the boot of {self.name}"

    def stop(self) -> None:
        stop_container(self.process, self.name, poweroff=self.up)


def _os_release_stand_in(merged: Path) -> Path | None:
    """Give a tree without os-release one for the boot only; return its path.

    systemd-nspawn refuses to boot a tree that has no os-release, but old
    releases lack it and the checks must see the tree as it is: the stand-in is
    removed as soon as the machine is up, before anything is checked.
    """
    if any(inside(merged, name).exists() for name in OS_RELEASE_FILES):
        return None
    stand_in = inside(merged, OS_RELEASE_FILES[1])
    stand_in.parent.mkdir(parents=True, exist_ok=True)
    stand_in.write_text('NAME="unknown"\nID=unknown\n')
    return stand_in


def _report(progress: Callable[[str], None] | None, message: str) -> None:
    logger.info("%s", message)
    if progress is not None:
        progress(message)


def _write_seed(
    merged: Path, instance_id: str, login_user: str, public_key: str
) -> None:
    # Every path is resolved inside the image: a link such as /etc/cloud ->
    # /etc must lead to the image's /etc, never to this machine's.
    seed = inside(merged, SEED_DIR)
    seed.mkdir(parents=True, exist_ok=True)

    inside(merged, f"{SEED_DIR}/meta-data").write_text(
        f"instance-id: {instance_id}\nlocal-hostname: {instance_id}\n",
        encoding="utf-8",
    )

    # The key goes to the login user only: given as that user's key it merges
    # into the image's default user when the names match, and root gets no copy
    # (a top-level ssh_authorized_keys would also be written, command-wrapped,
    # into root's authorized_keys).
    key = public_key.strip().replace('"', "")
    inside(merged, f"{SEED_DIR}/user-data").write_text(
        "#cloud-config\n"
        "users:\n"
        "  - default\n"
        f"  - name: {login_user}\n"
        "    ssh_authorized_keys:\n"
        f'      - "{key}"\n',
        encoding="utf-8",
    )

    dropin = inside(merged, HARNESS_DROPIN)
    dropin.parent.mkdir(parents=True, exist_ok=True)
    dropin.write_text(HARNESS_CLOUD_CONFIG, encoding="utf-8")


def _start(
    merged: Path, name: str, network: Network, console_log: Path
) -> subprocess.Popen[bytes]:
    command = [
        "systemd-nspawn",
        "--quiet",
        "--boot",
        f"--directory={merged}",
        f"--machine={name}",
        # There is no system bus to register with or to create a scope on.
        "--register=no",
        "--keep-unit",
        f"--network-namespace-path={network.namespace_path}",
        # Leave the image's own resolver, clock zone and journal as shipped.
        "--resolv-conf=off",
        "--timezone=off",
        "--link-journal=no",
        "--console=read-only",
    ]
    logger.debug("running %s", command)

    with open(console_log, "wb") as log:
        # A session of its own, so a Ctrl-C at the terminal reaches pytest only
        # and the teardown below decides how the container stops.
        return subprocess.Popen(
            command,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def _wait_for_login(
    process: subprocess.Popen[bytes],
    address: str,
    merged: Path,
    instance_id: str,
    login_user: str,
    public_key: str,
    console_log: Path,
    deadline: float,
) -> None:
    key_body = public_key.split()[1] if len(public_key.split()) > 1 else public_key
    instance = f"var/lib/cloud/instances/{instance_id}"
    # boot-finished is written by the final_message module; images that trim
    # it still run set_passwords, the last step that may restart sshd.
    markers = (f"{instance}/boot-finished", f"{instance}/sem/config_set_passwords")
    ever_answered = False

    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise ImageError(
                f"the container exited with status {process.returncode} during "
                f"boot; console: {_console_tail(console_log)}"
            )

        # cloud-init restarts sshd when it changes its configuration, so the
        # machine is ready only once its last stage is done, the key is in
        # place and sshd answers.
        finished = any(inside(merged, marker).exists() for marker in markers)
        answers = _ssh_banner(address)
        ever_answered = ever_answered or answers
        if finished and _has_key(merged, login_user, key_body) and answers:
            return

        # Some images start sshd before their host keys exist and fail once;
        # after cloud-init's last stage a failed sshd stays failed.
        if finished and not answers and _sshd_failed(console_log):
            raise ImageError(
                "sshd failed to start in the image; check its configuration "
                f"with sshd -t; console: {_console_tail(console_log)}"
            )

        time.sleep(0.2)

    if not ever_answered:
        raise ImageError(
            f"nothing answered SSH at {address}:{SSH_PORT} within the boot timeout "
            "(--ami-ssh-timeout); check that the image starts sshd "
            f"at boot; console: {_console_tail(console_log)}"
        )
    raise ImageError(
        f"no SSH login for {login_user!r} within the boot timeout "
        "(--ami-ssh-timeout); check that cloud-init's default user is "
        f"{login_user!r} (or pass --ami-user); console: "
        f"{_console_tail(console_log)}"
    )


def _sshd_failed(console_log: Path) -> bool:
    try:
        console = console_log.read_text(errors="replace")
    except OSError:
        return False

    # systemd colours unit names and cuts them short on the console.
    plain = re.sub(r"\x1b\[[0-9;]*m", "", console)
    return re.search(r"Failed to start (ssh|sshd)\.serv", plain) is not None


def _has_key(merged: Path, login_user: str, key_body: str) -> bool:
    home = _home_of(merged, login_user)
    if home is None:
        return False

    keys = inside(merged, f"{home}/.ssh/authorized_keys")
    try:
        return key_body in keys.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return False


def _home_of(merged: Path, user: str) -> str | None:
    try:
        passwd = inside(merged, "etc/passwd")
        lines = passwd.read_text(encoding="utf-8").splitlines()
    except OSError:
        return None

    for line in lines:
        fields = line.split(":")
        if len(fields) >= 6 and fields[0] == user:
            return fields[5]

    return None


def _ssh_banner(address: str) -> bool:
    try:
        with socket.create_connection((address, SSH_PORT), timeout=1) as sock:
            sock.settimeout(2)
            return sock.recv(256).startswith(b"SSH-")
    except OSError:
        return False


def _console_tail(console_log: Path) -> str:
    try:
        text = console_log.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return "(no console output)"

    # The console is coloured; escapes would only clutter a one-line message.
    text = re.sub(r"\x1b\[[0-9;]*[A-Za-z]", "", text)
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return " | ".join(lines[-CONSOLE_TAIL_LINES:]) or "(no console output)"


def _remove_scratch(scratch: Path) -> None:
    for item in scratch.iterdir():
        item.unlink()
    scratch.rmdir()


# Cleanup on SIGTERM and at interpreter exit. The handler raises
# KeyboardInterrupt, so every active booted() unwinds through its ExitStack as
# on Ctrl-C and pytest runs its fixture finalizers; atexit catches stacks that
# were never unwound (a generator left unclosed).
_active: list[ExitStack] = []
_lock = threading.Lock()
_handlers_installed = False


def _register(stack: ExitStack) -> None:
    global _handlers_installed

    with _lock:
        _active.append(stack)
        if _handlers_installed:
            return

        atexit.register(_close_all)
        if (
            threading.current_thread() is threading.main_thread()
            and signal.getsignal(signal.SIGTERM) == signal.SIG_DFL
        ):
            signal.signal(signal.SIGTERM, _on_sigterm)
        _handlers_installed = True


def _unregister(stack: ExitStack) -> None:
    with _lock:
        if stack in _active:
            _active.remove(stack)


def _on_sigterm(signum: int, frame: FrameType | None) -> None:
    logger.warning("terminated: tearing down booted containers")
    raise KeyboardInterrupt


def _close_all() -> None:
    with _lock:
        stacks = list(_active)

    for stack in reversed(stacks):
        try:
            stack.close()
        except Exception:
            logger.exception("cleanup of a booted container failed")
