"""Writes into an image before it boots stay in the image, whatever its links say."""

from __future__ import annotations

from pathlib import Path

import pytest

from pytest_amipolicy.errors import ImageError
from pytest_amipolicy.imaging.boot import _os_release_stand_in, _write_seed
from pytest_amipolicy.imaging.paths import inside
from tests.support.cases import Case, lay_case

KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIB1aunchKey launch"


@pytest.fixture
def host(tmp_path: Path) -> Path:
    """A directory standing for this machine's own files, outside the image."""
    directory = tmp_path / "host-etc"
    directory.mkdir()
    return directory


@pytest.fixture
def root(tmp_path: Path) -> Path:
    tree = tmp_path / "image"
    (tree / "etc").mkdir(parents=True)
    (tree / "etc/passwd").write_text("root:x:0:0:root:/root:/bin/bash\n")
    return tree


def files_under(directory: Path) -> list[str]:
    return sorted(str(path.relative_to(directory)) for path in directory.rglob("*"))


def test_an_absolute_link_is_followed_from_the_image_root(
    root: Path, host: Path
) -> None:
    (root / "etc/cloud").symlink_to(host)

    assert inside(root, "etc/cloud/cloud.cfg") == root / str(host)[1:] / "cloud.cfg"


def test_dot_dot_and_relative_links_stop_at_the_image_root(root: Path) -> None:
    (root / "etc/up").symlink_to("../../../..")

    assert inside(root, "/../../etc/passwd") == root / "etc/passwd"
    assert inside(root, "etc/up/etc/passwd") == root / "etc/passwd"


def test_the_last_link_can_be_kept_to_remove_the_link_itself(
    root: Path, host: Path
) -> None:
    (root / "etc/hosts").symlink_to(host / "hosts")

    assert inside(root, "etc/hosts", follow_last=False) == root / "etc/hosts"


def test_a_link_loop_is_an_image_error(root: Path) -> None:
    (root / "etc/a").symlink_to("b")
    (root / "etc/b").symlink_to("a")

    with pytest.raises(ImageError, match="too many levels of symbolic links"):
        inside(root, "etc/a/file")


def test_the_seed_follows_links_to_the_images_own_directories(
    root: Path, host: Path
) -> None:
    (root / "etc/cloud").symlink_to(host)
    (root / "var").mkdir()
    (root / "var/lib").symlink_to(host)

    _write_seed(root, "i-0123456789abcdef0", "admin", KEY)

    assert files_under(host) == []
    image_side = root / str(host)[1:]
    assert (image_side / "cloud.cfg.d/99-amipolicy-boot.cfg").is_file()
    assert "launch" in (image_side / "cloud/seed/nocloud/user-data").read_text()


def test_the_os_release_stand_in_is_written_inside_the_image(
    root: Path, host: Path
) -> None:
    (root / "usr").mkdir()
    (root / "usr/lib").symlink_to(host)

    stand_in = _os_release_stand_in(root)

    assert files_under(host) == []
    assert stand_in == root / str(host)[1:] / "os-release"
    assert stand_in.read_text().startswith('NAME="unknown"')


def test_an_os_release_behind_a_link_inside_the_image_is_found(root: Path) -> None:
    (root / "usr/lib").mkdir(parents=True)
    (root / "usr/lib/os-release").write_text("ID=debian\n")
    (root / "etc/os-release").symlink_to("/usr/lib/os-release")

    assert _os_release_stand_in(root) is None


def test_a_case_is_laid_inside_the_image_through_its_links(
    root: Path, host: Path
) -> None:
    (root / "etc/cloud").symlink_to(host)
    (host / "keep.cfg").write_text("this machine's own\n")
    (root / str(host)[1:]).mkdir(parents=True)
    (root / str(host)[1:] / "old.cfg").write_text("the image's\n")
    case = Case(
        id="links",
        platform="linux",
        clear=["/etc/cloud/*.cfg"],
        files={"/etc/cloud/cloud.cfg.d/50-case.cfg": "ssh_pwauth: true\n"},
    )

    lay_case(case, root)

    assert files_under(host) == ["keep.cfg"]
    assert files_under(root / str(host)[1:]) == [
        "cloud.cfg.d",
        "cloud.cfg.d/50-case.cfg",
    ]
