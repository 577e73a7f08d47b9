"""The evidence says which local image was checked: its path, kind and digest.

The images here are refused when opened (they have no cloud-init), which is
quick and still after the image was named and digested: the evidence of a
run that could not boot says which file it was about too.
"""

from __future__ import annotations

import hashlib
import json
import tarfile
from pathlib import Path
from typing import Any

import pytest

from tests.plugin.conftest import release_tree

pytestmark = pytest.mark.usefixtures("boot_tools")


def unbootable_tree(root: Path) -> Path:
    release_tree(root)
    for name in ("lib/systemd/systemd", "usr/sbin/sshd"):
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).touch()
    (root / "sbin/init").unlink()
    (root / "sbin/init").symlink_to("/lib/systemd/systemd")
    (root / "usr/bin/cloud-init").unlink()
    return root


def checked(
    pytester: pytest.Pytester,
    image: Path,
    *options: str,
    failure: str = "*has no cloud-init*",
) -> dict[str, Any]:
    result = pytester.runpytest(
        f"--ami-image={image}",
        "--ami-policy=SUDO",
        "--ami-evidence=evidence.json",
        *options,
    )

    result.stdout.fnmatch_lines([failure])
    document = json.loads((pytester.path / "evidence.json").read_text())
    (described,) = document["targets"].values()
    return dict(described)


def test_an_archive_is_named_by_resolved_path_size_and_sha256(
    pytester: pytest.Pytester,
) -> None:
    tree = unbootable_tree(pytester.path / "rootfs")
    archive = pytester.path / "images/web.tar.gz"
    archive.parent.mkdir()
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(tree, arcname=".")
    (pytester.path / "latest.tgz").symlink_to(archive)

    described = checked(pytester, Path("latest.tgz"))

    content = archive.read_bytes()
    assert described["kind"] == "image"
    assert described["image_path"] == str(archive.resolve())
    assert described["image_kind"] == "tar archive"
    assert described["image_bytes"] == str(len(content))
    assert described["image_sha256"] == hashlib.sha256(content).hexdigest()


def test_a_disk_image_is_named_as_one(pytester: pytest.Pytester) -> None:
    image = pytester.path / "root.ext4"
    head = bytearray(2 << 20)
    head[1080:1082] = b"\x53\xef"
    image.write_bytes(bytes(head))

    result = pytester.runpytest(
        f"--ami-image={image}", "--ami-policy=SUDO", "--ami-evidence=evidence.json"
    )

    # Not a filesystem that mounts (nor one a user without root can attach),
    # so the open refuses it; it was named first.
    result.stdout.fnmatch_lines(["SUDO: image:root.ext4: *"])
    document = json.loads((pytester.path / "evidence.json").read_text())
    described = document["targets"]["image:root.ext4"]
    assert described["image_kind"] == "disk image"
    assert described["image_bytes"] == str(2 << 20)
    assert described["image_sha256"] == hashlib.sha256(head).hexdigest()


def test_a_directory_is_named_by_its_path_without_a_digest(
    pytester: pytest.Pytester,
) -> None:
    # Accepted before the run; the stand-in boot tools then fail the boot.
    tree = release_tree(pytester.path / "rootfs")

    described = checked(pytester, tree, failure="*container networking needs root*")

    assert described["image_path"] == str(tree.resolve())
    assert described["image_kind"] == "directory"
    assert "image_sha256" not in described and "image_bytes" not in described


def test_the_html_report_shows_the_image_path_and_sha256(
    pytester: pytest.Pytester,
) -> None:
    pytest.importorskip("pytest_html")
    tree = unbootable_tree(pytester.path / "rootfs")
    archive = pytester.path / "web.tar"
    with tarfile.open(archive, "w") as tar:
        tar.add(tree, arcname=".")

    checked(pytester, archive, "--html=report.html", "--self-contained-html")

    html = (pytester.path / "report.html").read_text()
    digest = hashlib.sha256(archive.read_bytes()).hexdigest()
    assert "Image path" in html and str(archive) in html
    assert "Image sha256" in html and digest in html
