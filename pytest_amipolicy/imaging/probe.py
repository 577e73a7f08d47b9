"""What a path given as an image is, told cheaply before the run starts.

Opening an image (extracting an archive, mounting a disk) happens when its
first policy runs; a value that cannot be an image at all should not wait that
long, nor fail every policy in turn. :func:`cheap_problem` reads only what is
quick to read: a directory's release file, a file's first bytes, the member
names of a tar archive. What needs the image opened (its root filesystem, its
sshd, its cloud-init) is still checked by :func:`~.source.open_image`.
"""

from __future__ import annotations

import itertools
import logging
import os
import stat
import subprocess
import tarfile
import tempfile
import threading
from pathlib import Path

from pytest_amipolicy.errors import ImageError
from pytest_amipolicy.imaging.paths import inside
from pytest_amipolicy.imaging.tree import tree_problem

logger = logging.getLogger(__name__)

# Any of these names the release; old systems have no os-release at all.
RELEASE_FILES = (
    "etc/os-release",
    "usr/lib/os-release",
    "etc/system-release",
    "etc/redhat-release",
    "etc/lsb-release",
    "etc/debian_version",
    "etc/SuSE-release",
)
# The first bytes of what GNU tar decompresses by itself as it extracts: gzip,
# bzip2, xz, lzip, lzma and zstd.
COMPRESSED_MAGIC = (
    b"\x1f\x8b",
    b"BZh",
    b"\xfd7zXZ\x00",
    b"LZIP",
    b"\x5d\x00\x00",
    b"\x28\xb5\x2f\xfd",
)
TAR_MAGIC = b"ustar"
TAR_MAGIC_OFFSET = 257

# Enough of a file's start for every signature below (a GPT header on a disk
# of 4096-byte sectors starts at 4096).
HEAD_BYTES = 8192
# Formats that are images, but not raw ones: named, with how to get a raw one.
OTHER_FORMATS = (
    (0, b"QFI\xfb", "a qcow2 disk image"),
    (0, b"KDMV", "a VMDK disk image"),
    (0, b"# Disk DescriptorFile", "a VMDK descriptor"),
    (0, b"vhdxfile", "a VHDX disk image"),
    (0, b"conectix", "a dynamic VHD disk image"),
    (0, b"<<< Oracle VM VirtualBox Disk Image >>>", "a VirtualBox disk image"),
)
TO_RAW = "convert it to a raw disk image first (qemu-img convert -O raw IMAGE disk.raw)"

# Listing a compressed archive decompresses it: past these bounds the listing
# stops and says nothing, and opening the image decides.
LIST_MEMBERS = 500_000
LIST_SECONDS = 20.0

# How many entries of a directory without a release file are looked into for
# the tree it may hold one level down.
LOOK_INTO = 200

WHAT_TO_GIVE = "give a root directory, a tar archive or a raw disk image"


def cheap_problem(path: Path) -> str | None:
    """Return why ``path`` cannot be an image, as far as a quick look tells.

    The answer completes a sentence that starts with the value as the user
    gave it, and ends with the fix; None when nothing quick rules it out.
    """
    try:
        mode = path.stat().st_mode
    except OSError as error:
        return f"cannot be read ({error.strerror}); {WHAT_TO_GIVE}"

    if stat.S_ISDIR(mode):
        return _directory_problem(path)
    if not (stat.S_ISREG(mode) or stat.S_ISBLK(mode)):
        # A pipe or a terminal would block the read below.
        return f"is neither a file nor a directory; {WHAT_TO_GIVE}"

    try:
        with open(path, "rb") as image:
            head = image.read(HEAD_BYTES)
    except OSError as error:
        return f"cannot be read ({error.strerror}); {WHAT_TO_GIVE}"

    if not head:
        return f"is an empty file; {WHAT_TO_GIVE}"
    if is_tar_archive(path, head):
        return _archive_problem(path)
    return _disk_problem(head)


def is_tar_archive(path: Path, head: bytes | None = None) -> bool:
    """Tell a tar archive, compressed or not, from a raw disk image by content.

    A compressed file is taken for an archive whatever its name: no raw disk
    image starts with a compressor's magic number, and GNU tar finds the
    compressor by that number as it extracts.
    """
    if head is None:
        try:
            with open(path, "rb") as image:
                head = image.read(TAR_MAGIC_OFFSET + len(TAR_MAGIC))
        except OSError:
            return False

    if head.startswith(COMPRESSED_MAGIC):
        return True
    # tarfile.is_tarfile() takes a zero-filled first block for an empty
    # archive, and most raw disk images start with one: ask for the magic of
    # a POSIX header, then for a member of an older one.
    if head[TAR_MAGIC_OFFSET:].startswith(TAR_MAGIC):
        return True
    try:
        with tarfile.open(path, "r:") as archive:
            return archive.next() is not None
    except (tarfile.TarError, OSError, EOFError):
        return False


def has_release_file(root: Path) -> bool:
    """Tell whether the tree at ``root`` names its release in any known file."""
    return any(_exists(root, name) for name in RELEASE_FILES)


def _exists(root: Path, relative: str) -> bool:
    # Links in an image point into the image, not at this machine.
    try:
        return inside(root, relative).exists()
    except (OSError, ImageError):
        return False


def _directory_problem(path: Path) -> str | None:
    if has_release_file(path):
        return tree_problem(path)

    try:
        with os.scandir(path) as listing:
            entries = list(itertools.islice(listing, LOOK_INTO))
    except OSError as error:
        return f"cannot be read ({error.strerror}); {WHAT_TO_GIVE}"
    if not entries:
        return (
            "is an empty directory; give the root directory of an OS image (the "
            "one holding etc and usr), a tar archive or a raw disk image"
        )

    # Pointed one level too high, at the folder the tree was unpacked in.
    nested = sorted(
        entry.path
        for entry in entries
        if entry.is_dir(follow_symlinks=False) and has_release_file(Path(entry.path))
    )
    if len(nested) == 1:
        return (
            "is not the root of an OS tree, but holds one: give "
            f"--ami-image={nested[0]}"
        )
    return (
        f"holds no release file ({', '.join(RELEASE_FILES[:2])} or another), so "
        "it is not the root of an OS tree; give the directory that holds the "
        "image's etc and usr"
    )


def _archive_problem(path: Path) -> str | None:
    """Refuse an archive whose listing shows no release file or fails."""
    found, error = _list_for_release(path)
    if found or error is None:
        return None
    if error:
        return (
            f"cannot be listed as a tar archive ({error}); {WHAT_TO_GIVE} (a "
            "compressed disk image must be decompressed first)"
        )
    return (
        f"is a tar archive that holds no release file ({RELEASE_FILES[0]} or "
        "another), so not an OS tree; archive the image's root (tar -C ROOT -cf "
        "image.tar .), or extract a disk image it holds and give that"
    )


def _list_for_release(path: Path) -> tuple[bool, str | None]:
    """List the archive's members until a release file shows.

    Returns whether one was found and, if not, tar's complaint: an empty one
    when tar listed everything, None when the listing was cut short by a bound
    or could not run (the open decides then).
    """
    # GNU tar recognises the compressor by content when it lists a file, and
    # seeks over the members of an uncompressed one.
    command = ["tar", "--list", "--file", str(path)]
    with tempfile.TemporaryFile() as stderr:
        try:
            process = subprocess.Popen(
                command,
                stdout=subprocess.PIPE,
                stderr=stderr,
                env={**os.environ, "LC_ALL": "C"},
            )
        except OSError as error:
            logger.debug("cannot list %s: %s", path, error)
            return False, None

        timer = threading.Timer(LIST_SECONDS, process.kill)
        timer.start()
        try:
            found, complete = _read_listing(process)
        finally:
            timer.cancel()
            process.kill()
            process.wait()
            if process.stdout is not None:
                process.stdout.close()

        if found:
            return True, None
        if not complete:
            logger.debug("listing %s stopped at a bound: the open decides", path)
            return False, None
        if process.returncode != 0:
            stderr.seek(0)
            return False, first_tar_error(stderr.read().decode(errors="replace"))
        return False, ""


def _read_listing(process: subprocess.Popen[bytes]) -> tuple[bool, bool]:
    """Return whether a release file was listed, and whether tar got to the end."""
    for count, line in enumerate(process.stdout or ()):
        if count >= LIST_MEMBERS:
            return False, False
        if _names_release(line.decode(errors="replace").rstrip("\n")):
            return True, True

    # Killed by the timer: a signal, not an exit status of tar's.
    process.wait()
    return False, process.returncode >= 0


def _names_release(member: str) -> bool:
    name = member.lstrip("/")
    while name.startswith("./"):
        name = name[2:]

    # The tree may sit in one top-level directory of the archive.
    _, _, below_top = name.partition("/")
    return name in RELEASE_FILES or below_top in RELEASE_FILES


def first_tar_error(stderr: str) -> str:
    """The line of tar's complaint that says what was wrong."""
    # tar ends with a summary line that says only that something failed.
    lines = [
        line.strip()
        for line in stderr.splitlines()
        if line.strip() and "Exiting with failure status" not in line
    ]
    return lines[0] if lines else "tar failed without saying why"


def _disk_problem(head: bytes) -> str | None:
    """Refuse a file that starts with neither a partition table nor a root fs."""
    partitioned = head[510:512] == b"\x55\xaa" or b"EFI PART" in (
        head[512:520],
        head[4096:4104],
    )
    ext = head[1080:1082] == b"\x53\xef"
    xfs = head[:4] == b"XFSB"
    if partitioned or ext or xfs:
        return None

    for offset, magic, name in OTHER_FORMATS:
        if head[offset:].startswith(magic):
            return f"is {name}, not a raw one; {TO_RAW}"
    if head.startswith(b"PK\x03\x04"):
        return (
            "is a zip archive; give a tar archive of the image's root instead "
            "(tar -C ROOT -cf image.tar .)"
        )
    if b"\x00" not in head and _is_text(head):
        return f"is a text file, not an image; {WHAT_TO_GIVE}"
    return (
        "is neither a tar archive nor a raw disk image (no partition table, no "
        f"ext4 or xfs filesystem at its start); {WHAT_TO_GIVE}"
    )


def _is_text(head: bytes) -> bool:
    try:
        head.decode("utf-8")
    except UnicodeDecodeError as error:
        # The head may end inside a character.
        return error.reason == "unexpected end of data"
    return True
