"""--ami-image values that cannot be an image are usage errors before the run.

What a quick look tells (a directory's release file, a file's first bytes, an
archive's member names) is checked when options are read; mounting a disk,
extracting an archive and reading the tree still wait for the open.
"""

from __future__ import annotations

import gzip
import io
import os
import random
import shutil
import subprocess
import tarfile
import zipfile
from pathlib import Path
from typing import Callable

import pytest

from pytest_amipolicy.imaging import probe
from tests.plugin.conftest import release_tree

pytestmark = pytest.mark.usefixtures("boot_tools")

Maker = Callable[[Path], Path]


def text_file(folder: Path) -> Path:
    path = folder / "notes.txt"
    path.write_text("this is not an image\n" * 20)
    return path


def empty_file(folder: Path) -> Path:
    path = folder / "disk.img"
    path.touch()
    return path


def empty_directory(folder: Path) -> Path:
    path = folder / "rootfs"
    path.mkdir()
    return path


def directory_without_release(folder: Path) -> Path:
    path = folder / "rootfs"
    (path / "etc").mkdir(parents=True)
    (path / "etc/hostname").write_text("web\n")
    return path


def directory_above_the_tree(folder: Path) -> Path:
    release_tree(folder / "unpacked/rootfs")
    (folder / "unpacked/notes.txt").write_text("unpacked here\n")
    return folder / "unpacked"


def zero_filled_image(folder: Path) -> Path:
    path = folder / "disk.img"
    with open(path, "wb") as image:
        image.truncate(4 << 20)
    return path


def random_image(folder: Path) -> Path:
    noise = bytearray(random.Random(7).randbytes(1 << 20))
    # No chance of a partition table's signature by luck.
    noise[510:512] = b"\x00\x00"
    path = folder / "disk.img"
    path.write_bytes(bytes(noise))
    return path


def qcow2_image(folder: Path) -> Path:
    path = folder / "disk.qcow2"
    path.write_bytes(b"QFI\xfb\x00\x00\x00\x03" + bytes(1024))
    return path


def zip_archive(folder: Path) -> Path:
    path = folder / "rootfs.zip"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("etc/os-release", "ID=debian\n")
    return path


def _tar_of(folder: Path, name: str, members: dict[str, bytes], mode: str) -> Path:
    path = folder / name
    with tarfile.open(path, mode) as archive:  # type: ignore[call-overload]
        for member, content in members.items():
            info = tarfile.TarInfo(member)
            info.size = len(content)
            archive.addfile(info, io.BytesIO(content))
    return path


def tar_of_notes(folder: Path) -> Path:
    return _tar_of(folder, "notes.tar", {"./readme.txt": b"not an OS\n"}, "w")


def gzipped_tar_of_notes(folder: Path) -> Path:
    members = {"./docs/readme.txt": b"not an OS\n", "./etc/hostname": b"web\n"}
    return _tar_of(folder, "notes.tar.gz", members, "w:gz")


def tar_of_a_disk_image(folder: Path) -> Path:
    return _tar_of(folder, "image.tar", {"disk.raw": bytes(4096)}, "w")


def gzip_of_text(folder: Path) -> Path:
    path = folder / "image.tar.gz"
    with gzip.open(path, "wb") as compressed:
        compressed.write(b"a compressed disk image is not an archive\n" * 100)
    return path


def tree_of_only_a_release_file(folder: Path) -> Path:
    path = folder / "rootfs"
    (path / "etc").mkdir(parents=True)
    (path / "etc/os-release").write_text("ID=debian\n")
    return path


def tree_without_sshd(folder: Path) -> Path:
    path = release_tree(folder / "rootfs")
    (path / "usr/sbin/sshd").unlink()
    return path


def tree_without_cloud_init(folder: Path) -> Path:
    path = release_tree(folder / "rootfs")
    (path / "usr/bin/cloud-init").unlink()
    return path


def this_machines_root(folder: Path) -> Path:
    return Path("/")


def fifo(folder: Path) -> Path:
    path = folder / "pipe"
    os.mkfifo(path)
    return path


BAD_IMAGES: list[tuple[Maker, str]] = [
    (text_file, "is a text file, not an image; give a root directory, a tar *"),
    (empty_file, "is an empty file; give a root directory*"),
    (empty_directory, "is an empty directory; give the root directory of an OS*"),
    (directory_without_release, "holds no release file (etc/os-release, *"),
    (directory_above_the_tree, "is not the root of an OS tree, but holds one: *"),
    (zero_filled_image, "is neither a tar archive nor a raw disk image (no part*"),
    (random_image, "is neither a tar archive nor a raw disk image*"),
    (qcow2_image, "is a qcow2 disk image, not a raw one; *qemu-img convert -O raw*"),
    (zip_archive, "is a zip archive; give a tar archive*"),
    (tar_of_notes, "is a tar archive that holds no release file *"),
    (gzipped_tar_of_notes, "is a tar archive that holds no release file *"),
    (tar_of_a_disk_image, "*or extract a disk image it holds and give that."),
    (gzip_of_text, "cannot be listed as a tar archive (tar: This does not look*"),
    (fifo, "is neither a file nor a directory; *"),
    (tree_of_only_a_release_file, "has no init (sbin/init or *), so it cannot boot*"),
    (tree_without_sshd, "has no SSH server (usr/sbin/sshd); install openssh-server*"),
    (tree_without_cloud_init, "has no cloud-init (usr/bin/cloud-init), *"),
    (this_machines_root, "is this machine's own root, not an image; *"),
]


@pytest.mark.parametrize(
    ("make", "message"), BAD_IMAGES, ids=[make.__name__ for make, _ in BAD_IMAGES]
)
def test_a_value_that_cannot_be_an_image_is_one_usage_error_naming_it(
    pytester: pytest.Pytester, make: Maker, message: str
) -> None:
    image = make(pytester.path)

    result = pytester.runpytest(f"--ami-image={image}", "--ami-policy=SUDO")

    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([f"ERROR: --ami-image='{image}' {message}"])
    assert len(result.stderr.lines) <= 2
    assert "Traceback" not in result.stderr.str()


def tree_with_os_release(folder: Path) -> Path:
    return release_tree(folder / "rootfs")


def tree_with_linked_os_release(folder: Path) -> Path:
    root = release_tree(folder / "rootfs")
    (root / "usr/lib").mkdir(parents=True)
    (root / "usr/lib/os-release").write_text("ID=fedora\n")
    (root / "etc/os-release").unlink()
    (root / "etc/os-release").symlink_to("../usr/lib/os-release")
    return root


def tree_of_an_old_release(folder: Path) -> Path:
    root = release_tree(folder / "rootfs")
    (root / "etc/os-release").unlink()
    (root / "etc/redhat-release").write_text("CentOS release 6.10 (Final)\n")
    return root


def tar_of_a_tree(folder: Path) -> Path:
    members = {"./usr/bin/true": b"", "./etc/os-release": b"ID=debian\n"}
    return _tar_of(folder, "rootfs.tar", members, "w")


def xz_tar_in_a_top_directory(folder: Path) -> Path:
    members = {"rootfs/usr/bin/true": b"", "rootfs/etc/debian_version": b"12.5\n"}
    return _tar_of(folder, "rootfs.tar.xz", members, "w:xz")


def bare_ext4_image(folder: Path) -> Path:
    head = bytearray(4096)
    head[1080:1082] = b"\x53\xef"
    path = folder / "root.ext4"
    path.write_bytes(bytes(head))
    return path


def bare_xfs_image(folder: Path) -> Path:
    path = folder / "root.xfs"
    path.write_bytes(b"XFSB" + bytes(4096))
    return path


def mbr_disk(folder: Path) -> Path:
    head = bytearray(4096)
    head[510:512] = b"\x55\xaa"
    path = folder / "disk.img"
    path.write_bytes(bytes(head))
    return path


def gpt_disk_of_4k_sectors(folder: Path) -> Path:
    head = bytearray(8192)
    head[4096:4104] = b"EFI PART"
    path = folder / "disk.img"
    path.write_bytes(bytes(head))
    return path


GOOD_IMAGES: list[Maker] = [
    tree_with_os_release,
    tree_with_linked_os_release,
    tree_of_an_old_release,
    tar_of_a_tree,
    xz_tar_in_a_top_directory,
    bare_ext4_image,
    bare_xfs_image,
    mbr_disk,
    gpt_disk_of_4k_sectors,
]


@pytest.mark.parametrize("make", GOOD_IMAGES, ids=[m.__name__ for m in GOOD_IMAGES])
def test_what_may_be_an_image_is_left_for_the_open_to_judge(
    pytester: pytest.Pytester, make: Maker
) -> None:
    image = make(pytester.path)

    result = pytester.runpytest(
        "--collect-only", "-q", f"--ami-image={image}", "--ami-policy=SUDO"
    )

    assert result.ret == pytest.ExitCode.OK, result.stderr.str()
    result.stdout.fnmatch_lines(["1 test collected*"])


def test_a_zstd_archive_of_a_tree_is_listed_by_its_content(
    pytester: pytest.Pytester,
) -> None:
    if shutil.which("zstd") is None:
        pytest.skip("zstd is not installed")
    tree = release_tree(pytester.path / "rootfs")
    archive = pytester.path / "rootfs.img"
    subprocess.run(
        ["tar", "--zstd", "-C", str(tree), "-cf", str(archive), "."], check=True
    )

    result = pytester.runpytest("--collect-only", "-q", f"--ami-image={archive}")

    assert result.ret == pytest.ExitCode.OK, result.stderr.str()


def test_an_archive_listed_past_the_bound_is_left_for_the_open_to_judge(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    members = {f"./usr/share/doc/{n}": b"" for n in range(20)}
    archive = _tar_of(pytester.path, "big.tar", members, "w")
    monkeypatch.setattr(probe, "LIST_MEMBERS", 10)

    result = pytester.runpytest("--collect-only", "-q", f"--ami-image={archive}")

    assert result.ret == pytest.ExitCode.OK, result.stderr.str()


def test_the_demo_image_is_not_looked_at_before_it_is_built(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AMIPOLICY_CACHE", str(pytester.path / "empty-cache"))
    if shutil.which("mmdebstrap") is None:
        pytest.skip("without mmdebstrap the demo image is refused for that")

    result = pytester.runpytest("--collect-only", "-q", "--ami-image=demo")

    assert result.ret == pytest.ExitCode.OK, result.stderr.str()


def test_a_key_given_with_only_an_image_is_a_usage_error_saying_it_is_for_hosts(
    pytester: pytest.Pytester,
) -> None:
    tree = release_tree(pytester.path / "rootfs")

    result = pytester.runpytest(f"--ami-image={tree}", "--ami-key=/etc/hostname")

    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        ["ERROR: --ami-key='/etc/hostname' applies to --ami-host only, *"]
    )
