"""The imaging package on real images: build, boot, log in, lay cases."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from pytest_amipolicy.errors import ImageError
from pytest_amipolicy.imaging.boot import BootedMachine, booted
from pytest_amipolicy.imaging.build import build_debian_image
from pytest_amipolicy.imaging.overlay import overlay
from tests.integration.conftest import LaunchKey
from tests.support.cases import lay_case, load_cases
from tests.support.machines import run

pytestmark = pytest.mark.integration

BOOT_TIME_GOAL = 15.0


def manifest(root: Path) -> str:
    """Hash of every path's name, type, mode, owner, size and mtime under root."""
    digest = hashlib.sha256()

    for directory, dirs, files in os.walk(root):
        dirs.sort()
        for name in sorted(dirs + files):
            path = os.path.join(directory, name)
            info = os.lstat(path)
            digest.update(
                f"{path}:{info.st_mode}:{info.st_uid}:{info.st_size}:"
                f"{info.st_mtime_ns}\n".encode()
            )

    return digest.hexdigest()


@pytest.fixture(scope="module")
def machine(debian_image: Path, launch_key: LaunchKey) -> Iterator[BootedMachine]:
    with booted(debian_image, login_user="admin", public_key=launch_key.public) as m:
        yield m


# Building and the cache


def test_the_image_is_served_from_the_cache_once_built(debian_image: Path) -> None:
    started = time.monotonic()
    again = build_debian_image()
    elapsed = time.monotonic() - started

    assert again == debian_image
    assert elapsed < 1.0


def test_the_pristine_image_is_prepared_as_a_careful_seller_ships_it(
    debian_image: Path,
) -> None:
    shadow = (debian_image / "etc/shadow").read_text().splitlines()
    root_password = next(line for line in shadow if line.startswith("root:"))
    cloud = (debian_image / "etc/cloud/cloud.cfg.d/90-amipolicy-image.cfg").read_text()

    assert not list((debian_image / "etc/ssh").glob("ssh_host_*"))
    assert (debian_image / "etc/machine-id").read_text() == ""
    assert root_password.split(":")[1] in ("*", "!")
    assert not (debian_image / "root/.ssh").exists()
    assert not list((debian_image / "home").iterdir())
    assert "name: admin" in cloud and "datasource_list: [NoCloud, None]" in cloud
    assert (debian_image / "etc/ssh/sshd_config.d/50-marketplace.conf").exists()
    assert list((debian_image / "var/lib/apt/lists").glob("*_Packages"))


# Booting and logging in


def test_the_login_user_gets_in_with_the_launch_key_and_sudo(
    machine: BootedMachine, launch_key: LaunchKey
) -> None:
    status, output = run(machine, launch_key, "id -un && sudo -n true && echo sudo-ok")

    assert status == 0, output
    assert output.split() == ["admin", "sudo-ok"]


def test_the_machine_is_named_as_local_not_as_an_ec2_instance(
    machine: BootedMachine, launch_key: LaunchKey
) -> None:
    status, output = run(machine, launch_key, "hostname")

    assert status == 0, output
    assert output.strip().startswith("amipolicy-local-")


def test_boot_to_ssh_meets_the_goal(machine: BootedMachine) -> None:
    assert machine.boot_time < BOOT_TIME_GOAL


def test_host_keys_are_made_at_first_boot_not_shipped(
    machine: BootedMachine, launch_key: LaunchKey, debian_image: Path
) -> None:
    status, _ = run(machine, launch_key, "test -s /etc/ssh/ssh_host_ed25519_key")

    assert status == 0
    assert not (debian_image / "etc/ssh/ssh_host_ed25519_key").exists()


def test_the_launch_key_lands_only_in_the_login_users_authorized_keys(
    machine: BootedMachine, launch_key: LaunchKey
) -> None:
    key_body = launch_key.public.split()[1]

    _, login_keys = run(machine, launch_key, "cat ~/.ssh/authorized_keys")
    _, root_keys = run(machine, launch_key, "sudo -n cat /root/.ssh/authorized_keys")

    assert key_body in login_keys
    assert key_body not in root_keys


def test_the_pristine_tree_is_unchanged_by_a_boot(
    debian_image: Path, launch_key: LaunchKey
) -> None:
    before = manifest(debian_image)

    with booted(debian_image, login_user="admin", public_key=launch_key.public) as m:
        run(m, launch_key, "sudo -n touch /etc/written-inside")

    assert manifest(debian_image) == before


def test_files_laid_by_prepare_are_visible_inside(
    debian_image: Path, launch_key: LaunchKey
) -> None:
    def prepare(root: Path) -> None:
        (root / "etc/amipolicy-fault").write_text("laid before boot\n")

    with booted(
        debian_image,
        login_user="admin",
        public_key=launch_key.public,
        prepare=prepare,
    ) as m:
        status, output = run(m, launch_key, "cat /etc/amipolicy-fault")

    assert status == 0
    assert output == "laid before boot\n"
    assert not (debian_image / "etc/amipolicy-fault").exists()


def test_an_image_is_logged_into_as_the_default_user_its_cloud_init_names(
    debian_image: Path, pytester: pytest.Pytester
) -> None:
    with overlay(debian_image) as tree:
        (tree / "etc/cloud/cloud.cfg.d/95-vendor.cfg").write_text(
            "system_info:\n  default_user:\n    name: ubuntu\n"
        )

        result = pytester.runpytest(
            f"--ami-image={tree}", "--ami-policy=SUDO", "--ami-evidence=evidence.json"
        )

    document = json.loads((pytester.path / "evidence.json").read_text())
    result.stdout.fnmatch_lines(["*booting image:merged, to log in as ubuntu"])
    assert [record["verdict"] for record in document["results"]] == ["pass"]
    assert document["targets"]["image:merged"]["login_user"] == "ubuntu"


def test_two_machines_boot_at_the_same_time(
    debian_image: Path, launch_key: LaunchKey
) -> None:
    machines: list[BootedMachine] = []
    errors: list[BaseException] = []
    ready = threading.Barrier(3)
    done = threading.Event()

    def boot_one() -> None:
        try:
            with booted(
                debian_image, login_user="admin", public_key=launch_key.public
            ) as m:
                machines.append(m)
                ready.wait()
                done.wait(60)
        except BaseException as error:
            errors.append(error)
            ready.abort()

    threads = [threading.Thread(target=boot_one) for _ in range(2)]
    started = time.monotonic()
    for thread in threads:
        thread.start()

    try:
        ready.wait(120)
        both_up = time.monotonic() - started
        outputs = [run(m, launch_key, "hostname")[1] for m in machines]
    finally:
        done.set()
        for thread in threads:
            thread.join(60)

    assert not errors
    assert len({m.address for m in machines}) == 2
    assert outputs[0] != outputs[1]
    assert both_up < 2 * BOOT_TIME_GOAL


def test_a_machine_that_never_answers_ssh_raises_with_the_console_tail(
    debian_image: Path, launch_key: LaunchKey
) -> None:
    def break_sshd(root: Path) -> None:
        (root / "etc/systemd/system/ssh.service").symlink_to("/dev/null")

    with (
        pytest.raises(ImageError, match="nothing answered SSH at .*console: .*"),
        booted(
            debian_image,
            login_user="admin",
            public_key=launch_key.public,
            prepare=break_sshd,
            timeout=12,
        ),
    ):
        pass


# The case layer


def test_case_variants_expand_into_separate_cases_with_merged_expectations() -> None:
    cases = {case.id: case for case in load_cases(platform="linux")}

    assert "shadow-blank-and-old-hash-1" in cases
    assert cases["shadow-locked-root-spellings-2"].shadow == {"root": "!locked"}
    assert cases["shadow-locked-root-spellings-2"].expect == {
        "ROOT-PASSWORD": "pass",
        "NO-PASSWORDS": "pass",
    }
    assert {case.platform for case in load_cases(platform="windows")} == {"windows"}
    assert len(load_cases(platform="ami")) == 2


def test_a_case_is_laid_with_owners_and_modes_of_a_real_home(
    debian_image: Path, tmp_path: Path
) -> None:
    root = tmp_path / "root"
    for name in ("etc", "root"):
        shutil.copytree(debian_image / name, root / name, symlinks=True)
    (root / "home").mkdir()
    case = {c.id: c for c in load_cases(platform="linux")}["keys-authorized-keys2"]

    lay_case(case, root)

    deploy = next(
        line.split(":")
        for line in (root / "etc/passwd").read_text().splitlines()
        if line.startswith("deploy:")
    )
    keys = root / "home/deploy/.ssh/authorized_keys2"
    assert int(deploy[2]) >= 1001 and deploy[6] == "/bin/bash"
    assert keys.stat().st_uid == int(deploy[2])
    assert keys.stat().st_mode & 0o777 == 0o600
    assert (root / "home/deploy/.ssh").stat().st_mode & 0o777 == 0o700
    assert "deploy:!:" in (root / "etc/shadow").read_text()


def test_a_case_clears_globs_before_laying_files(
    debian_image: Path, tmp_path: Path
) -> None:
    root = tmp_path / "root"
    shutil.copytree(debian_image / "etc", root / "etc", symlinks=True)
    case = {c.id: c for c in load_cases(platform="linux")}["ssh-dropin-only"]

    lay_case(case, root)

    assert sorted(p.name for p in (root / "etc/ssh/sshd_config.d").iterdir()) == [
        "60-hardening.conf"
    ]


# The build cache, with mmdebstrap replaced by a stand-in


@pytest.fixture
def fake_mmdebstrap(monkeypatch: pytest.MonkeyPatch) -> list[Path]:
    """Replace the slow build with one that records its calls."""
    from pytest_amipolicy.imaging import build

    calls: list[Path] = []

    def fake_run(rootfs: Path, log: Path, extra: tuple[str, ...] = ()) -> None:
        calls.append(rootfs)
        time.sleep(0.5)
        if os.environ.get("FAKE_MMDEBSTRAP_FAIL"):
            raise KeyboardInterrupt
        (rootfs / "etc").mkdir(parents=True)

    monkeypatch.setattr(build, "_run_mmdebstrap", fake_run)
    monkeypatch.setattr(build, "prepare_tree", lambda root: None)

    return calls


def test_parallel_builds_of_one_recipe_build_once(
    fake_mmdebstrap: list[Path], tmp_path: Path
) -> None:
    results: list[Path] = []
    threads = [
        threading.Thread(target=lambda: results.append(build_debian_image(tmp_path)))
        for _ in range(3)
    ]

    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)

    assert len(fake_mmdebstrap) == 1
    assert len(set(results)) == 1 and len(results) == 3
    assert results[0].is_dir()


def test_an_interrupted_build_leaves_nothing_half_done(
    fake_mmdebstrap: list[Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FAKE_MMDEBSTRAP_FAIL", "1")

    with pytest.raises(KeyboardInterrupt):
        build_debian_image(tmp_path)

    assert [p.name for p in tmp_path.iterdir() if not p.name.endswith(".lock")] == []
