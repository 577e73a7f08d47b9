"""A private network for one booted container: a namespace and a veth pair.

Each boot gets slot ``n`` (1 to 250) and with it the namespace
``amipolicy-<n>``, the host interface ``amipolicy<n>`` with 10.254.<n>.1/30 and,
inside the namespace, ``eth0`` with 10.254.<n>.2/30. The container shares the
namespace, so the address is in place before it boots and the image needs no
network configuration of its own. Nothing is routed anywhere else.

A slot is owned by whoever holds the lock file ``/run/amipolicy/slot-<n>.lock``,
so concurrent boots in any number of processes never collide, and what a
killed process left behind (its namespace here, its container and overlay
through the ``reap`` callback) is removed by the next owner of its slot.
"""

from __future__ import annotations

import fcntl
import logging
import os
import random
import subprocess
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from pytest_amipolicy.errors import ImageError

logger = logging.getLogger(__name__)

LOCK_DIR = Path("/run/amipolicy")
SLOTS = range(1, 251)
NAMESPACE_PREFIX = "amipolicy-"
HOST_LINK_PREFIX = "amipolicy"


@dataclass(frozen=True)
class Network:
    """The addresses and names of one container's private network."""

    slot: int
    namespace: str
    host_link: str
    host_address: str
    address: str

    @property
    def namespace_path(self) -> Path:
        """The bind mount ``ip netns`` keeps, for ``--network-namespace-path``."""
        return Path("/run/netns") / self.namespace


def network_for(slot: int) -> Network:
    """Return the names and addresses that belong to ``slot``."""
    return Network(
        slot=slot,
        namespace=f"{NAMESPACE_PREFIX}{slot}",
        host_link=f"{HOST_LINK_PREFIX}{slot}",
        host_address=f"10.254.{slot}.1",
        address=f"10.254.{slot}.2",
    )


@contextmanager
def private_network(
    reap: Callable[[int], object] | None = None,
) -> Iterator[Network]:
    """Create a namespace with a veth pair for one container; remove it after.

    ``reap`` is called with the slot as soon as it is ours, to remove what a
    killed process left of its boot there (its container and mounts), and
    with every other slot found abandoned the same way.
    """
    lock, slot = _claim_slot()

    try:
        network = network_for(slot)

        # The slot is ours, so anything still using its names is a leftover
        # from a process that was killed before it could clean up.
        if reap is not None:
            reap(slot)
        _remove(network)
        _reap_abandoned(slot, reap)

        try:
            _create(network)
            yield network
        finally:
            _remove(network)
    finally:
        lock.close()


def _claim_slot() -> tuple[IO[str], int]:
    LOCK_DIR.mkdir(parents=True, exist_ok=True)

    # Starting anywhere rather than at the lowest free slot keeps a slot that
    # was just released from being taken again at once, so what a boot leaves
    # behind stays attributable to it while its teardown finishes.
    start = random.randrange(len(SLOTS))
    for slot in [*SLOTS[start:], *SLOTS[:start]]:
        # Held open for the whole boot: closing the file releases the slot.
        lock = open(LOCK_DIR / f"slot-{slot}.lock", "w")  # noqa: SIM115
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            lock.close()
            continue

        logger.debug("claimed network slot %d", slot)
        return lock, slot

    raise ImageError(
        f"all {len(SLOTS)} container network slots are in use; "
        "run fewer boots at once (lower -n for pytest-xdist)"
    )


def _reap_abandoned(own: int, reap: Callable[[int], object] | None) -> None:
    """Clean every other slot whose namespace outlived its owner.

    A namespace exists only while its slot's lock is held, from claim to
    teardown; one whose lock is free was left by a killed process, and would
    otherwise wait until a boot happens to draw that slot again.
    """
    for name in leftovers():
        number = name.removeprefix(NAMESPACE_PREFIX)
        if not name.startswith(NAMESPACE_PREFIX) or not number.isdigit():
            continue
        slot = int(number)
        if slot == own or slot not in SLOTS:
            continue

        with open(LOCK_DIR / f"slot-{slot}.lock", "w") as lock:
            try:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                continue
            logger.info("slot %d was abandoned by a killed run; cleaning it", slot)
            if reap is not None:
                reap(slot)
            _remove(network_for(slot))


def _create(network: Network) -> None:
    ns = network.namespace
    _ip("netns", "add", ns)
    _ip(
        "link", "add", network.host_link, "type", "veth",
        "peer", "name", "eth0", "netns", ns,
    )  # fmt: skip
    _ip("addr", "add", f"{network.host_address}/30", "dev", network.host_link)
    _ip("link", "set", network.host_link, "up")
    _ip("-n", ns, "addr", "add", f"{network.address}/30", "dev", "eth0")
    _ip("-n", ns, "link", "set", "eth0", "up")
    _ip("-n", ns, "link", "set", "lo", "up")
    logger.debug(
        "network %s: host %s, container %s",
        ns,
        network.host_address,
        network.address,
    )


def _remove(network: Network) -> None:
    # Deleting one end of a veth pair deletes both; the namespace goes last.
    if Path("/sys/class/net", network.host_link).exists():
        _ip("link", "del", network.host_link, check=False)

    if network.namespace_path.exists():
        _ip("netns", "del", network.namespace, check=False)


def _ip(*args: str, check: bool = True) -> None:
    command = ["ip", *args]
    result = subprocess.run(command, capture_output=True, text=True, check=False)

    if result.returncode != 0 and check:
        raise ImageError(
            f"'{' '.join(command)}' failed: {result.stderr.strip()}; "
            "container networking needs root and iproute2"
        )

    if result.returncode != 0:
        logger.debug("ignored failure of %s: %s", command, result.stderr.strip())


def leftovers() -> list[str]:
    """Return namespaces and host links of this module that exist now."""
    found = []

    if Path("/run/netns").is_dir():
        found += [
            name
            for name in os.listdir("/run/netns")
            if name.startswith(NAMESPACE_PREFIX)
        ]

    found += [
        name
        for name in os.listdir("/sys/class/net")
        if name.startswith(HOST_LINK_PREFIX)
    ]

    return sorted(found)
