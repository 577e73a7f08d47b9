"""Build and cache a well-prepared Debian 12 root tree, the project's test image.

The tree is what a careful seller would ship: no SSH host keys, an empty
machine id, no authorized keys, root locked, no password login, cloud-init
creating the ``admin`` login user at first boot (as Debian's EC2 images do) and
no pending updates relative to the mirror it was built from.

Building takes a minute or two, so the result is cached outside the repository,
keyed by a hash of the recipe. The tree is built in a temporary directory next
to the cache entry and renamed into place, so an interrupted build leaves no
half-built entry, and a file lock keeps parallel test workers from building the
same recipe twice.

An entry whose package lists are older than REBUILD_AFTER_SECONDS is built
again: the container it boots in has no network, so UPDATES judges by those
lists, and only while they are fresh. The old tree is set aside rather than
deleted, since a container may still run on it, and removed a day later.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import logging
import os
import shutil
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import IO

from pytest_amipolicy.errors import ImageError

logger = logging.getLogger(__name__)

SUITE = "bookworm"
MIRROR = "http://deb.debian.org/debian"
SECURITY_MIRROR = "http://deb.debian.org/debian-security"

# netbase gives /etc/services and /etc/protocols, which sshd, Python and the
# fact gatherers expect on any real server.
PACKAGES = (
    "systemd-sysv",
    "openssh-server",
    "sudo",
    "cloud-init",
    "iproute2",
    "netbase",
)

LOGIN_USER = "admin"

# Half the age at which UPDATES stops trusting package lists it cannot refresh
# (linux.sh, apt_updates): a cached tree is rebuilt well before that.
REBUILD_AFTER_SECONDS = 6 * 3600
# Set-aside trees older than this have no container left on them.
RETIRED_KEPT_SECONDS = 24 * 3600

# Bumped whenever the preparation below changes, so cached trees are rebuilt.
PREPARE_VERSION = "7"

CLOUD_CONFIG = """\
# Written by pytest-amipolicy's test image recipe.
# NoCloud only: the test harness seeds it; probing for EC2 would only slow boot.
datasource_list: [NoCloud, None]

# ssh_pwauth is left unset on purpose: set to false, cloud-init would rewrite
# PasswordAuthentication in any sshd drop-in laid over the image at first boot,
# hiding the faults the test cases lay. The image's own sshd drop-in already
# turns passwords off.
disable_root: true

# The instance's name must resolve, or sudo complains on every call.
manage_etc_hosts: true

system_info:
  default_user:
    name: admin
    lock_passwd: true
    gecos: Debian
    groups: [adm, sudo]
    sudo: ["ALL=(ALL) NOPASSWD:ALL"]
    shell: /bin/bash

# Only what first boot of a server needs; the full lists cost seconds.
cloud_init_modules:
  - set_hostname
  - update_hostname
  - update_etc_hosts
  - users_groups
  - ssh
cloud_config_modules:
  - set_passwords
# final_message writes boot-finished, which tells the harness first boot is done.
cloud_final_modules:
  - final_message
"""

SSHD_DROPIN = """\
# Written by pytest-amipolicy's test image recipe: keys only, for everyone.
PasswordAuthentication no
KbdInteractiveAuthentication no
PermitEmptyPasswords no
PermitRootLogin prohibit-password
"""

# Timers and services that do nothing useful in a short-lived test machine and
# would compete with first boot for the CPU.
MASKED_UNITS = (
    "apt-daily.timer",
    "apt-daily-upgrade.timer",
    "apt-daily.service",
    "apt-daily-upgrade.service",
    "e2scrub_all.timer",
    "e2scrub_reap.service",
    "fstrim.timer",
    "systemd-networkd-wait-online.service",
)


def recipe(extra_packages: tuple[str, ...] = ()) -> dict[str, object]:
    """Return everything that decides the content of the built tree.

    ``extra_packages`` makes a variant (the benchmark's image with peer
    scanners); the default recipe, and so its cache key, leaves them out.
    """
    described: dict[str, object] = {
        "suite": SUITE,
        "mirror": MIRROR,
        "security_mirror": SECURITY_MIRROR,
        "variant": "apt",
        "packages": sorted(PACKAGES),
        "prepare_version": PREPARE_VERSION,
        "cloud_config": CLOUD_CONFIG,
        "sshd_dropin": SSHD_DROPIN,
        "masked_units": sorted(MASKED_UNITS),
    }
    if extra_packages:
        described["extra_packages"] = sorted(extra_packages)
    return described


def recipe_hash(extra_packages: tuple[str, ...] = ()) -> str:
    """Return a short, stable hash of :func:`recipe`, the cache key."""
    text = json.dumps(recipe(extra_packages), sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def default_cache_dir() -> Path:
    """Return where built trees are kept: ``$AMIPOLICY_CACHE`` or ~/.cache."""
    configured = os.environ.get("AMIPOLICY_CACHE")
    if configured:
        return Path(configured).expanduser()

    return Path.home() / ".cache" / "pytest-amipolicy" / "images"


def cached_debian_image(
    cache_dir: Path | None = None, extra_packages: tuple[str, ...] = ()
) -> Path | None:
    """Return the cached root tree of the Debian 12 test image, if it is built."""
    rootfs = (cache_dir or default_cache_dir()) / recipe_hash(extra_packages) / "rootfs"
    return rootfs if rootfs.is_dir() else None


def build_debian_image(
    cache_dir: Path | None = None,
    progress: Callable[[str], None] | None = None,
    extra_packages: tuple[str, ...] = (),
) -> Path:
    """Return the root tree of the Debian 12 test image, building it if needed.

    ``progress`` receives one-line messages meant for the terminal reporter;
    ``extra_packages`` are installed on top, in a cache entry of their own.
    """
    base = (cache_dir or default_cache_dir()).resolve()
    key = recipe_hash(extra_packages)
    entry = base / key
    rootfs = entry / "rootfs"

    if rootfs.is_dir() and not lists_are_stale(rootfs):
        logger.debug("test image %s found in the cache at %s", key, rootfs)
        return rootfs

    try:
        base.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise ImageError(
            f"cannot create the image cache {base}: {error.strerror}; "
            "set AMIPOLICY_CACHE to a writable directory"
        ) from error

    _check_tools()

    # Another worker may be building the same recipe: wait for it, then use
    # its result instead of building again.
    with open(base / f"{key}.lock", "w") as lock:
        if not _try_lock(lock):
            _report(progress, f"waiting for another process building image {key}")
            fcntl.flock(lock, fcntl.LOCK_EX)

        if rootfs.is_dir() and not lists_are_stale(rootfs):
            return rootfs

        _remove_stale_builds(base, key)
        _remove_retired(base, key)
        if rootfs.is_dir():
            _rebuild(base, key, progress, extra_packages)
        else:
            _build(base, key, progress, extra_packages)

    return rootfs


def lists_are_stale(rootfs: Path) -> bool:
    """Whether the tree's newest package list is older than REBUILD_AFTER_SECONDS."""
    lists = list((rootfs / "var/lib/apt/lists").glob("*_Packages"))
    if not lists:
        return False

    newest = max(path.stat().st_mtime for path in lists)
    return time.time() - newest > REBUILD_AFTER_SECONDS


def _rebuild(
    base: Path,
    key: str,
    progress: Callable[[str], None] | None,
    extra_packages: tuple[str, ...],
) -> None:
    """Build the entry again, keeping the old tree when the build fails."""
    entry = base / key
    hours = REBUILD_AFTER_SECONDS // 3600
    _report(progress, f"the test image's package lists are over {hours} hours old")
    retired = base / f".retired-{key}-{os.getpid()}-{int(time.time())}"
    entry.rename(retired)
    try:
        _build(base, key, progress, extra_packages)
    except ImageError as error:
        # Offline, say: the old tree still serves, though UPDATES will be an
        # error on it once its lists pass 12 hours.
        retired.rename(entry)
        _report(progress, f"kept the old test image, as building it failed: {error}")
    except BaseException:
        retired.rename(entry)
        raise


def _remove_retired(base: Path, key: str) -> None:
    for retired in base.glob(f".retired-{key}-*"):
        # Set aside at the time its name ends with; its own mtime is older.
        stamp = retired.name.rsplit("-", 1)[-1]
        if stamp.isdigit() and time.time() - int(stamp) > RETIRED_KEPT_SECONDS:
            logger.info("removing the set-aside test image %s", retired)
            shutil.rmtree(retired, ignore_errors=True)


def _try_lock(lock: IO[str]) -> bool:
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False

    return True


def _report(progress: Callable[[str], None] | None, message: str) -> None:
    logger.info("%s", message)
    if progress is not None:
        progress(message)


def _check_tools() -> None:
    if os.geteuid() != 0:
        raise ImageError(
            "building the Debian test image needs root; run pytest as root "
            "or pass --ami-image=PATH to an image built elsewhere"
        )

    if shutil.which("mmdebstrap") is None:
        raise ImageError(
            "building the Debian test image needs mmdebstrap "
            "(apt-get install mmdebstrap)"
        )


def _remove_stale_builds(base: Path, key: str) -> None:
    mounted = _mount_points()

    for stale in base.glob(f".build-{key}-*"):
        # A killed mmdebstrap can leave /proc or /dev mounted inside its tree;
        # deleting through such a mount would wipe the host's devices.
        inside = [m for m in mounted if m == stale or stale in m.parents]
        if inside:
            raise ImageError(
                f"an interrupted image build left {inside[0]} mounted; "
                f"unmount it (umount -R {inside[0]}) and remove {stale}"
            )

        logger.info("removing the interrupted image build %s", stale)
        shutil.rmtree(stale)


def _mount_points() -> list[Path]:
    points = []

    with open("/proc/self/mounts", encoding="utf-8") as mounts:
        for line in mounts:
            fields = line.split()
            # /proc/mounts escapes spaces and a few other bytes as octal.
            point = fields[1].encode().decode("unicode_escape")
            points.append(Path(point))

    return points


def _build(
    base: Path,
    key: str,
    progress: Callable[[str], None] | None,
    extra_packages: tuple[str, ...] = (),
) -> None:
    work = base / f".build-{key}-{os.getpid()}"
    work.mkdir()
    rootfs = work / "rootfs"

    _report(progress, f"building the Debian 12 test image {key} (about 2 minutes)")
    started = time.monotonic()

    try:
        _run_mmdebstrap(rootfs, work / "mmdebstrap.log", extra_packages)
        prepare_tree(rootfs)
        (work / "recipe.json").write_text(
            json.dumps(recipe(extra_packages), indent=2, sort_keys=True) + "\n",
            encoding="utf-8",
        )
        (work / "mmdebstrap.log").unlink(missing_ok=True)

        # The rename is the commit point: an entry exists only when complete.
        work.rename(base / key)
    except BaseException:
        if not any(m == work or work in m.parents for m in _mount_points()):
            shutil.rmtree(work, ignore_errors=True)
        raise

    elapsed = time.monotonic() - started
    _report(progress, f"built the Debian 12 test image {key} in {elapsed:.0f} s")


def _run_mmdebstrap(
    rootfs: Path, log: Path, extra_packages: tuple[str, ...] = ()
) -> None:
    sources = [
        f"deb {MIRROR} {SUITE} main",
        f"deb {MIRROR} {SUITE}-updates main",
        f"deb {SECURITY_MIRROR} {SUITE}-security main",
    ]
    command = [
        "mmdebstrap",
        "--mode=root",
        "--variant=apt",
        "--include=" + ",".join((*PACKAGES, *extra_packages)),
        # Keep the package lists: the UPDATES check inside the container has
        # no network and compares installed versions against these.
        "--skip=cleanup/apt/lists",
        SUITE,
        str(rootfs),
        *sources,
    ]
    logger.debug("running %s", command)

    with open(log, "w", encoding="utf-8") as output:
        result = subprocess.run(
            command, stdout=output, stderr=subprocess.STDOUT, check=False
        )

    if result.returncode != 0:
        tail = log.read_text(encoding="utf-8", errors="replace").splitlines()[-5:]
        raise ImageError(
            f"mmdebstrap failed with exit status {result.returncode} "
            f"(check that {MIRROR} is reachable): {' | '.join(tail)}"
        )


def prepare_tree(root: Path) -> None:
    """Turn a fresh Debian tree into one a careful seller would publish."""
    # Host keys must be made at first boot, per instance; cloud-init does it.
    for key in (root / "etc/ssh").glob("ssh_host_*"):
        key.unlink()

    # An empty machine-id makes systemd generate a fresh one at first boot.
    (root / "etc/machine-id").write_text("", encoding="utf-8")
    (root / "var/lib/dbus/machine-id").unlink(missing_ok=True)

    _lock_root(root / "etc/shadow")

    for home in (root / "root", *sorted((root / "home").glob("*"))):
        shutil.rmtree(home / ".ssh", ignore_errors=True)

    cloud_dropin = root / "etc/cloud/cloud.cfg.d/90-amipolicy-image.cfg"
    cloud_dropin.write_text(CLOUD_CONFIG, encoding="utf-8")
    shutil.rmtree(root / "var/lib/cloud", ignore_errors=True)

    sshd_dropin = root / "etc/ssh/sshd_config.d/50-marketplace.conf"
    sshd_dropin.write_text(SSHD_DROPIN, encoding="utf-8")

    units = root / "etc/systemd/system"
    for unit in MASKED_UNITS:
        link = units / unit
        link.unlink(missing_ok=True)
        link.symlink_to("/dev/null")

    # mmdebstrap copies the build host's name and resolver; neither belongs in
    # a published image.
    (root / "etc/hostname").write_text("localhost\n", encoding="utf-8")
    resolv = root / "etc/resolv.conf"
    if resolv.is_file() and not resolv.is_symlink():
        resolv.write_text("", encoding="utf-8")


def _lock_root(shadow: Path) -> None:
    lines = shadow.read_text(encoding="utf-8").splitlines()
    locked = []

    for line in lines:
        fields = line.split(":")
        if fields[0] == "root" and not fields[1].startswith(("*", "!")):
            fields[1] = "*"
        locked.append(":".join(fields))

    shadow.write_text("\n".join(locked) + "\n", encoding="utf-8")
