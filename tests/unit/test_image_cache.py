"""The test image cache: an entry whose package lists went stale is built again.

The build itself (mmdebstrap, a network) is replaced by one that lays a tree
with a package list, so what is tested is the cache's bookkeeping.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from pytest_amipolicy.errors import ImageError
from pytest_amipolicy.imaging import build

LISTS = "var/lib/apt/lists"


def lay_tree(base: Path, key: str, *_: object) -> None:
    lists = base / key / "rootfs" / LISTS
    lists.mkdir(parents=True)
    (lists / "deb.debian.org_debian_dists_bookworm_main_binary-amd64_Packages").touch()


def fail_to_build(*_: object) -> None:
    raise ImageError("mmdebstrap failed (check that the mirror is reachable)")


def age(rootfs: Path, seconds: float) -> None:
    then = time.time() - seconds
    for path in (rootfs / LISTS).iterdir():
        os.utime(path, (then, then))


@pytest.fixture()
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setattr(build, "_check_tools", lambda: None)
    monkeypatch.setattr(build, "_build", lay_tree)
    return tmp_path


def test_an_entry_with_fresh_lists_is_served_as_it_is(cache: Path) -> None:
    rootfs = build.build_debian_image(cache)
    (rootfs / "marker").touch()

    assert build.build_debian_image(cache) == rootfs
    assert (rootfs / "marker").exists()


def test_an_entry_with_lists_over_six_hours_old_is_built_again(cache: Path) -> None:
    rootfs = build.build_debian_image(cache)
    (rootfs / "marker").touch()
    age(rootfs, 7 * 3600)
    said: list[str] = []

    again = build.build_debian_image(cache, progress=said.append)

    assert again == rootfs and not (rootfs / "marker").exists()
    assert not build.lists_are_stale(rootfs)
    assert "package lists are over 6 hours old" in said[0]
    (retired,) = cache.glob(".retired-*")
    assert (retired / "rootfs" / "marker").exists()


def test_the_old_tree_is_kept_when_building_again_fails(
    cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    rootfs = build.build_debian_image(cache)
    (rootfs / "marker").touch()
    age(rootfs, 7 * 3600)
    monkeypatch.setattr(build, "_build", fail_to_build)
    said: list[str] = []

    kept = build.build_debian_image(cache, progress=said.append)

    assert kept == rootfs and (rootfs / "marker").exists()
    assert "kept the old test image, as building it failed" in said[-1]
    assert not list(cache.glob(".retired-*"))


def test_trees_set_aside_over_a_day_ago_are_removed_at_the_next_build(
    cache: Path,
) -> None:
    rootfs = build.build_debian_image(cache)
    key = rootfs.parent.name
    old = cache / f".retired-{key}-1-{int(time.time()) - 2 * 86400}"
    recent = cache / f".retired-{key}-2-{int(time.time()) - 3600}"
    old.mkdir()
    recent.mkdir()
    age(rootfs, 7 * 3600)

    build.build_debian_image(cache)

    assert not old.exists() and recent.exists()
