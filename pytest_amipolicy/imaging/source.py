"""Open an image on local disk as a root tree, without ever writing to it.

:func:`open_image` accepts what a seller has before uploading an AMI:

- a root directory;
- a tar archive, compressed or not (extracted into a temporary directory);
- a raw disk image, partitioned or a bare ext4 or xfs filesystem (attached
  read-only to a loop device and mounted read-only).

Whatever was set up is undone on the way out, on error too.
"""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

from pytest_amipolicy.errors import ImageError
from pytest_amipolicy.imaging.overlay import unmount
from pytest_amipolicy.imaging.paths import inside
from pytest_amipolicy.imaging.probe import (
    first_tar_error,
    has_release_file,
    is_tar_archive,
)
from pytest_amipolicy.imaging.tree import INIT, tree_problem

logger = logging.getLogger(__name__)

ROOT_FILESYSTEMS = ("ext4", "ext3", "ext2", "xfs")


def require_boot_tools() -> None:
    """Raise ImageError unless this process can mount and boot images."""
    if os.geteuid() != 0 or shutil.which("systemd-nspawn") is None:
        raise ImageError(
            "--ami-image needs root and systemd-nspawn "
            "(apt-get install systemd-container)"
        )


@contextmanager
def open_image(path: Path) -> Iterator[Path]:
    """Yield the root directory of the image at ``path``; undo everything after."""
    require_boot_tools()

    if not path.exists():
        raise ImageError(
            f"image {path} does not exist; pass a root directory, a tar "
            "archive or a raw disk image"
        )

    with ExitStack() as stack:
        if path.is_dir():
            root = path.resolve()
        elif is_tar_archive(path):
            root = stack.enter_context(_extracted(path))
        else:
            root = stack.enter_context(_mounted_disk(path))

        _check_tree(path, root)
        yield root


def is_os_tree(root: Path) -> bool:
    """Tell whether ``root`` looks like the root of a bootable Linux system."""
    has_release = has_release_file(root)
    has_init = any(_exists(root, name) for name in INIT)

    return has_release and has_init


def _exists(root: Path, relative: str) -> bool:
    # Links in an image point into the image, not at this machine.
    try:
        return inside(root, relative).exists()
    except (OSError, ImageError):
        return False


def _check_tree(path: Path, root: Path) -> None:
    if not has_release_file(root):
        raise ImageError(
            f"image {path} holds no operating system (no release file such as "
            "etc/os-release); point --ami-image at the root of the image"
        )

    problem = tree_problem(root)
    if problem is not None:
        raise ImageError(f"image {path} {problem}")


@contextmanager
def _extracted(archive: Path) -> Iterator[Path]:
    scratch = Path(tempfile.mkdtemp(prefix="amipolicy-image-"))

    try:
        # GNU tar keeps owners, modes, devices and xattrs of an OS tree as
        # shipped, which Python's tarfile does not fully do.
        result = subprocess.run(
            [
                "tar", "--extract", "--auto-compress", "--numeric-owner",
                "--same-permissions", "--xattrs", "--xattrs-include=*",
                "--file", str(archive), "--directory", str(scratch),
            ],
            capture_output=True,
            text=True,
            check=False,
        )  # fmt: skip
        if result.returncode != 0:
            raise ImageError(
                f"cannot extract image archive {archive}: "
                f"{first_tar_error(result.stderr)}; check that it is a tar archive of "
                "the image's root (a compressed disk image must be decompressed "
                "first)"
            )

        yield _archive_root(scratch)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def _archive_root(scratch: Path) -> Path:
    # Archives made with "tar -C dir ." hold the tree directly; others hold
    # it in a single top-level directory.
    if is_os_tree(scratch):
        return scratch

    entries = list(scratch.iterdir())
    if len(entries) == 1 and entries[0].is_dir() and is_os_tree(entries[0]):
        return entries[0]

    return scratch


@contextmanager
def _mounted_disk(image: Path) -> Iterator[Path]:
    with ExitStack() as stack:
        loop = _attach(image)
        stack.callback(_detach, loop)

        mountpoint = Path(tempfile.mkdtemp(prefix="amipolicy-disk-"))
        stack.callback(_remove_mountpoint, mountpoint)

        for device in _candidate_devices(stack, image, loop):
            fstype = _filesystem_type(device)
            if fstype not in ROOT_FILESYSTEMS:
                logger.debug("%s of %s holds %r, skipped", device, image, fstype)
                continue

            if not _mount_read_only(device, fstype, mountpoint):
                continue

            if is_os_tree(mountpoint):
                logger.debug("root filesystem of %s is %s", image, device)
                stack.callback(unmount, mountpoint)
                yield mountpoint
                return

            unmount(mountpoint)

        raise ImageError(
            f"image {image} has no recognisable root filesystem (ext4 or xfs "
            "holding etc/os-release and an init); check that it is a raw disk "
            "image, not qcow2 or vmdk (convert with qemu-img convert -O raw)"
        )


def _attach(image: Path, offset: int = 0, size: int = 0) -> str:
    command = ["losetup", "--read-only", "--find", "--show"]
    if offset or size:
        command += [f"--offset={offset}", f"--sizelimit={size}"]
    else:
        command.append("--partscan")

    result = subprocess.run(
        [*command, str(image)], capture_output=True, text=True, check=False
    )
    if result.returncode != 0:
        raise ImageError(
            f"cannot attach {image} to a loop device: {result.stderr.strip()}; "
            "check that loop devices are available (modprobe loop)"
        )

    loop = result.stdout.strip()
    logger.debug("attached %s read-only to %s (offset %d)", image, loop, offset)

    # Partition devices appear asynchronously after the partition scan.
    if shutil.which("udevadm") is not None:
        subprocess.run(["udevadm", "settle"], capture_output=True, check=False)

    return loop


def _detach(loop: str) -> None:
    subprocess.run(["losetup", "--detach", loop], capture_output=True, check=False)
    logger.debug("detached %s", loop)


def _candidate_devices(stack: ExitStack, image: Path, loop: str) -> list[str]:
    name = Path(loop).name
    partitions = sorted(
        f"/dev/{entry.name}"
        for entry in Path("/sys/block", name).glob(f"{name}p*")
        if (entry / "partition").exists()
    )
    if partitions:
        return partitions

    # Some kernels (and containers) make no partition devices for loop
    # devices; then each partition gets a loop device of its own.
    for start, size in _partition_table(image):
        partition = _attach(image, offset=start, size=size)
        stack.callback(_detach, partition)
        partitions.append(partition)

    # An unpartitioned image is a filesystem on the whole device.
    return partitions or [loop]


def _partition_table(image: Path) -> list[tuple[int, int]]:
    """Return byte offset and size of each partition in ``image``, if any."""
    result = subprocess.run(
        ["partx", "--output", "START,SECTORS", "--noheadings", "--raw", str(image)],
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        return []

    # partx counts 512-byte sectors for image files.
    table = []
    for line in result.stdout.split("\n"):
        fields = line.split()
        if len(fields) == 2 and all(field.isdigit() for field in fields):
            table.append((int(fields[0]) * 512, int(fields[1]) * 512))

    return table


def _filesystem_type(device: str) -> str:
    result = subprocess.run(
        ["blkid", "--probe", "--match-tag", "TYPE", "--output", "value", device],
        capture_output=True,
        text=True,
        check=False,
    )

    return result.stdout.strip()


def _mount_read_only(device: str, fstype: str, mountpoint: Path) -> bool:
    # "noload" and "norecovery" keep ext4 and xfs from replaying their journal,
    # which would write to the device even under "ro". XFS refuses a second
    # filesystem of the same UUID (a copy of an image, or of this machine's
    # own root) unless told "nouuid".
    options = "ro,noload" if fstype.startswith("ext") else "ro,norecovery,nouuid"
    result = subprocess.run(
        ["mount", "-t", fstype, "-o", options, device, str(mountpoint)],
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        logger.debug("mounting %s failed: %s", device, result.stderr.strip())
        return False

    return True


def _remove_mountpoint(mountpoint: Path) -> None:
    try:
        mountpoint.rmdir()
    except OSError as error:
        logger.warning("could not remove mount point %s: %s", mountpoint, error)
