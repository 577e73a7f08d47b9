"""Opening images from disk: directories, archives and raw disks, read-only."""

from __future__ import annotations

import gzip
import hashlib
import json
import shutil
import subprocess
import tarfile
import tempfile
from pathlib import Path

import pytest

from pytest_amipolicy.errors import ImageError
from pytest_amipolicy.imaging.boot import booted
from pytest_amipolicy.imaging.overlay import overlay
from pytest_amipolicy.imaging.source import open_image
from tests.integration.conftest import LaunchKey
from tests.support.machines import loops_of, mounts_under, run

pytestmark = pytest.mark.integration

TINY_TREE_FILES = (
    "etc/os-release",
    "lib/systemd/systemd",
    "lib/systemd/system/ssh.service",
    "usr/sbin/sshd",
    "usr/bin/cloud-init",
)
SSH_WANTED = "etc/systemd/system/multi-user.target.wants/ssh.service"


def test_a_raw_disk_image_of_the_debian_tree_boots_from_a_read_only_mount(
    debian_image: Path, launch_key: LaunchKey, tmp_path: Path
) -> None:
    image = tmp_path / "debian.raw"
    subprocess.run(
        ["mkfs.ext4", "-q", "-F", "-d", str(debian_image), str(image), "1200M"],
        check=True,
    )
    digest = hashlib.sha256(image.read_bytes()).hexdigest()

    with (
        open_image(image) as root,
        booted(root, login_user="admin", public_key=launch_key.public) as m,
    ):
        status, output = run(m, launch_key, "sudo -n cat /etc/debian_version")

    assert status == 0, output
    assert output.startswith("12.")
    assert hashlib.sha256(image.read_bytes()).hexdigest() == digest
    assert loops_of(image) == ""


def test_a_booted_disk_image_is_named_in_the_evidence_by_path_and_sha256(
    debian_image: Path, tmp_path: Path, pytester: pytest.Pytester
) -> None:
    image = tmp_path / "debian.raw"
    subprocess.run(
        ["mkfs.ext4", "-q", "-F", "-d", str(debian_image), str(image), "1200M"],
        check=True,
    )
    digest = hashlib.sha256()
    with open(image, "rb") as content:
        while block := content.read(1 << 20):
            digest.update(block)

    result = pytester.runpytest(
        f"--ami-image={image}", "--ami-policy=SUDO", "--ami-evidence=evidence.json"
    )

    document = json.loads((pytester.path / "evidence.json").read_text())
    described = document["targets"]["image:debian.raw"]
    assert [record["verdict"] for record in document["results"]] == ["pass"], (
        result.stdout.str()
    )
    assert described["image_path"] == str(image.resolve())
    assert described["image_kind"] == "disk image"
    assert described["image_bytes"] == str(image.stat().st_size)
    assert described["image_sha256"] == digest.hexdigest()
    assert described["os_release"].startswith("Debian GNU/Linux 12")
    assert loops_of(image) == ""


# Opening images from disk


@pytest.fixture
def tiny_tree(tmp_path: Path) -> Path:
    """A stand-in OS tree: enough for open_image to recognise, not to boot."""
    root = tmp_path / "tree"
    for name in TINY_TREE_FILES:
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text("ID=debian\n" if "release" in name else "")
    (root / "sbin").mkdir()
    (root / "sbin/init").symlink_to("/lib/systemd/systemd")
    (root / SSH_WANTED).parent.mkdir(parents=True)
    (root / SSH_WANTED).symlink_to("/lib/systemd/system/ssh.service")

    return root


def test_a_directory_opens_as_itself(tiny_tree: Path) -> None:
    with open_image(tiny_tree) as root:
        assert root == tiny_tree.resolve()


@pytest.mark.parametrize("compression", ["", "gz", "xz"])
def test_a_tar_archive_opens_extracted_and_is_removed_after(
    tiny_tree: Path, tmp_path: Path, compression: str
) -> None:
    archive = tmp_path / f"image.tar{'.' + compression if compression else ''}"
    with tarfile.open(archive, f"w:{compression}") as tar:
        tar.add(tiny_tree, arcname=".")

    with open_image(archive) as root:
        assert (root / "usr/sbin/sshd").exists()
        extracted = root

    assert not extracted.exists()


@pytest.mark.parametrize(
    ("name", "compressor"),
    [
        ("image.tar.zst", "--zstd"),
        ("image.tar.bz2", "--bzip2"),
        ("image.tar.lzma", "--lzma"),
        # Named like a disk image: the content decides.
        ("image.img", "--zstd"),
        ("image.img", "--gzip"),
    ],
)
def test_a_compressed_archive_is_recognised_by_its_content(
    tiny_tree: Path, tmp_path: Path, name: str, compressor: str
) -> None:
    program = compressor.split("=")[-1].lstrip("-")
    if shutil.which(program) is None:
        pytest.skip(f"{program} is not installed")
    archive = tmp_path / name
    subprocess.run(
        ["tar", compressor, "-C", str(tiny_tree), "-cf", str(archive), "."],
        check=True,
    )

    with open_image(archive) as root:
        assert (root / "usr/sbin/sshd").exists()


def test_an_archive_tar_cannot_read_is_one_line_naming_tars_complaint(
    tmp_path: Path,
) -> None:
    archive = tmp_path / "image.tar.gz"
    with gzip.open(archive, "wb") as compressed:
        compressed.write(b"a disk image, compressed, is not an archive\n" * 100)

    with pytest.raises(ImageError) as raised, open_image(archive):
        pass

    message = str(raised.value)
    assert "does not look like a tar archive" in message
    assert "\n" not in message and "['" not in message


def test_a_bare_ext4_image_opens_read_only_and_is_detached_after(
    tiny_tree: Path, tmp_path: Path
) -> None:
    image = tmp_path / "root.ext4"
    subprocess.run(
        ["mkfs.ext4", "-q", "-F", "-d", str(tiny_tree), str(image), "16M"], check=True
    )
    digest = hashlib.sha256(image.read_bytes()).hexdigest()

    with open_image(image) as root:
        assert (root / "etc/os-release").read_text() == "ID=debian\n"
        with pytest.raises(OSError):
            (root / "etc/written").write_text("x")
        mountpoint = root

    assert mounts_under(str(mountpoint)) == []
    assert loops_of(image) == ""
    assert hashlib.sha256(image.read_bytes()).hexdigest() == digest


def test_a_partitioned_disk_image_opens_its_root_partition(
    tiny_tree: Path, tmp_path: Path
) -> None:
    if shutil.which("sfdisk") is None:
        pytest.skip("partitioning a test disk needs sfdisk (apt-get install fdisk)")

    image = tmp_path / "disk.raw"
    filesystem = tmp_path / "part.ext4"
    subprocess.run(
        ["mkfs.ext4", "-q", "-F", "-d", str(tiny_tree), str(filesystem), "16M"],
        check=True,
    )
    subprocess.run(["truncate", "--size=20M", str(image)], check=True)
    subprocess.run(
        ["sfdisk", "--quiet", str(image)],
        input="label: gpt\nstart=2048, size=32768, type=linux\n",
        text=True,
        check=True,
    )
    subprocess.run(
        [
            "dd", f"if={filesystem}", f"of={image}", "bs=512", "seek=2048",
            "conv=notrunc", "status=none",
        ],
        check=True,
    )  # fmt: skip

    with open_image(image) as root:
        assert (root / "usr/sbin/sshd").exists()

    assert loops_of(image) == ""


def test_a_missing_path_is_one_clear_error(tmp_path: Path) -> None:
    with (
        pytest.raises(ImageError, match=r"image .*nowhere does not exist; pass"),
        open_image(tmp_path / "nowhere"),
    ):
        pass


def test_a_tar_of_something_else_is_one_clear_error(tmp_path: Path) -> None:
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes/readme.txt").write_text("not an OS\n")
    archive = tmp_path / "notes.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(tmp_path / "notes", arcname=".")

    with (
        pytest.raises(ImageError, match="holds no operating system"),
        open_image(archive),
    ):
        pass

    assert not [p for p in Path("/tmp").glob("amipolicy-image-*") if p.exists()]


def test_a_disk_image_without_a_filesystem_is_one_clear_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    image = tmp_path / "blank.raw"
    subprocess.run(["truncate", "--size=8M", str(image)], check=True)
    # Mount points go below this test's own directory, so that the disks other
    # tests mount in parallel are not counted.
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))

    with (
        pytest.raises(ImageError, match="no recognisable root filesystem"),
        open_image(image),
    ):
        pass

    assert loops_of(image) == ""
    assert mounts_under(str(tmp_path)) == []


def test_a_tree_without_sshd_is_one_clear_error(tiny_tree: Path) -> None:
    (tiny_tree / "usr/sbin/sshd").unlink()

    with (
        pytest.raises(ImageError, match=r"no SSH server \(usr/sbin/sshd\)"),
        open_image(tiny_tree),
    ):
        pass


def test_a_tree_whose_sshd_is_not_enabled_is_one_clear_error_at_once(
    tiny_tree: Path,
) -> None:
    (tiny_tree / SSH_WANTED).unlink()

    with (
        pytest.raises(ImageError, match="does not start sshd at boot"),
        open_image(tiny_tree),
    ):
        pass


def test_a_tree_without_cloud_init_is_one_clear_error_at_once(tiny_tree: Path) -> None:
    (tiny_tree / "usr/bin/cloud-init").unlink()

    with pytest.raises(ImageError, match="has no cloud-init"), open_image(tiny_tree):
        pass


def test_the_debian_image_with_sshd_disabled_is_refused_before_any_boot(
    debian_image: Path, pytester: pytest.Pytester
) -> None:
    with overlay(debian_image) as tree:
        (tree / "etc/systemd/system/multi-user.target.wants/ssh.service").unlink()

        result = pytester.runpytest(f"--ami-image={tree}", "--ami-policy=SUDO")

    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        [f"ERROR: --ami-image='{tree}' does not start sshd at boot*"]
    )
    assert "booting" not in result.stdout.str()
    assert result.duration < 30


@pytest.fixture
def xfs_image(tiny_tree: Path, tmp_path: Path) -> Path:
    """A bare XFS filesystem holding the tiny tree."""
    if shutil.which("mkfs.xfs") is None:
        pytest.skip("XFS images need mkfs.xfs (apt-get install xfsprogs)")

    image = tmp_path / "root.xfs"
    subprocess.run(["truncate", "--size=320M", str(image)], check=True)
    subprocess.run(["mkfs.xfs", "-q", str(image)], check=True)
    mountpoint = tmp_path / "filling"
    mountpoint.mkdir()
    subprocess.run(["mount", "-o", "loop", str(image), str(mountpoint)], check=True)
    try:
        subprocess.run(["cp", "-a", f"{tiny_tree}/.", str(mountpoint)], check=True)
    finally:
        subprocess.run(["umount", str(mountpoint)], check=True)
    return image


def test_two_xfs_images_of_one_uuid_open_at_the_same_time(
    xfs_image: Path, tmp_path: Path
) -> None:
    twin = tmp_path / "twin.xfs"
    subprocess.run(["cp", "--sparse=always", str(xfs_image), str(twin)], check=True)
    digest = hashlib.sha256(twin.read_bytes()).hexdigest()

    with open_image(xfs_image) as first, open_image(twin) as second:
        assert (first / "usr/sbin/sshd").exists()
        assert (second / "usr/sbin/sshd").exists()

    assert loops_of(xfs_image) == "" and loops_of(twin) == ""
    assert hashlib.sha256(twin.read_bytes()).hexdigest() == digest
