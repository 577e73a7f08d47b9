"""A writable overlay over a pristine root tree, one per boot.

The lower directory is never written: a boot, and any fault a test lays before
it, only ever changes the upper directory, which is thrown away afterwards. The
lower directory may itself be a read-only mount of a disk image.
"""

from __future__ import annotations

import logging
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from pytest_amipolicy.errors import ImageError

logger = logging.getLogger(__name__)


@contextmanager
def overlay(lower: Path) -> Iterator[Path]:
    """Mount an overlay over ``lower`` and yield its merged root; undo it after."""
    lower = lower.resolve()

    # overlayfs separates its options with commas and lower layers with
    # colons; such a path cannot be passed safely.
    if any(c in str(lower) for c in ",:"):
        raise ImageError(
            f"image root {lower} contains ',' or ':', which overlayfs cannot "
            "take; move or link it to a plainer path"
        )

    scratch = Path(tempfile.mkdtemp(prefix="amipolicy-overlay-"))
    merged = scratch / "merged"
    upper = scratch / "upper"
    work = scratch / "work"

    try:
        for directory in (merged, upper, work):
            directory.mkdir()

        options = f"lowerdir={lower},upperdir={upper},workdir={work}"
        result = subprocess.run(
            ["mount", "-t", "overlay", "overlay", "-o", options, str(merged)],
            capture_output=True,
            text=True,
            check=False,
        )
        if result.returncode != 0:
            raise ImageError(
                f"cannot mount an overlay over {lower}: {result.stderr.strip()}; "
                "the image root must be a local directory, not itself an overlay"
            )

        logger.debug("overlay over %s mounted at %s", lower, merged)

        try:
            yield merged
        finally:
            unmount(merged)
    finally:
        if not is_mounted(merged):
            shutil.rmtree(scratch, ignore_errors=True)


def changed(merged: Path) -> bool:
    """Whether anything was written, removed or changed over the overlay's lower tree.

    Every change lands in the upper directory (a deletion as a whiteout), which
    starts empty.
    """
    upper = merged.parent / "upper"
    try:
        return any(upper.iterdir())
    except OSError:
        return False


def unmount(point: Path, attempts: int = 10) -> None:
    """Unmount ``point``, retrying while it is busy, lazily as a last resort."""
    for _ in range(attempts):
        if not is_mounted(point):
            return

        result = subprocess.run(
            ["umount", str(point)], capture_output=True, text=True, check=False
        )
        if result.returncode == 0:
            return

        logger.debug("umount %s: %s", point, result.stderr.strip())
        time.sleep(0.3)

    # A process we could not see still holds it; detach it so nothing of ours
    # stays visible, and the kernel frees it when that process goes.
    logger.warning("unmounting %s lazily: it stayed busy", point)
    subprocess.run(["umount", "--lazy", str(point)], check=False)


def is_mounted(point: Path) -> bool:
    """Tell whether ``point`` is a mount point in this mount namespace."""
    target = str(point.resolve()) if point.exists() else str(point)

    with open("/proc/self/mounts", encoding="utf-8") as mounts:
        for line in mounts:
            mounted = line.split()[1].encode().decode("unicode_escape")
            if mounted == target:
                return True

    return False
