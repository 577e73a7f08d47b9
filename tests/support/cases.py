"""The shared case files, loaded as test cases and laid over a root tree.

Each JSON file in the cases directory (``../shared/cases`` next to the
repository, or ``$AMIPOLICY_CASES``) is one situation; its ``variants`` are
separate machines, expanded here into separate cases. See the cases README for
the fields.
"""

from __future__ import annotations

import copy
import fnmatch
import json
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

import pytest

from pytest_amipolicy.imaging.paths import inside

CASES_DIR = Path(__file__).resolve().parents[2].parent / "shared" / "cases"

FIRST_USER_UID = 1001  # 1000 is taken by the login user cloud-init creates.


@dataclass
class Case:
    """One machine of a case file, with its variant (if any) laid over it."""

    id: str
    platform: str
    summary: str = ""
    source: str = ""
    files: dict[str, str] = field(default_factory=dict)
    clear: list[str] = field(default_factory=list)
    remove: list[str] = field(default_factory=list)
    shadow: dict[str, str] = field(default_factory=dict)
    machine: dict[str, Any] = field(default_factory=dict)
    image: dict[str, Any] = field(default_factory=dict)
    check_date: str | None = None
    expect: dict[str, str] = field(default_factory=dict)


def cases_dir() -> Path:
    """Return the cases directory: ``$AMIPOLICY_CASES`` or the shared one."""
    configured = os.environ.get("AMIPOLICY_CASES")
    directory = Path(configured) if configured else CASES_DIR

    # Every case must pass as a test; without them the suite proves less, so
    # the modules that run them fail to collect instead of running nothing.
    if not directory.is_dir():
        pytest.fail(
            f"the shared cases are not in {directory}: clone the repository "
            "beside ../shared, or set AMIPOLICY_CASES to the cases directory",
            pytrace=False,
        )
    return directory


PLATFORMS = ("linux", "windows", "ami")


def load_cases(
    directory: Path | str | None = None, platform: str = "linux"
) -> list[Case]:
    """Return every case of ``platform`` in ``directory``, variants expanded.

    ``load_cases("windows")`` is short for the default directory and that
    platform.
    """
    if isinstance(directory, str) and directory in PLATFORMS:
        directory, platform = None, directory

    directory = Path(directory) if directory is not None else cases_dir()
    cases = []

    for path in sorted(directory.glob("*.json")):
        data = json.loads(path.read_text(encoding="utf-8"))
        if data.get("platform") != platform:
            continue

        cases += _expand(data)

    return cases


def _expand(data: dict[str, Any]) -> list[Case]:
    variants = data.get("variants")
    base = {key: value for key, value in data.items() if key != "variants"}

    if not variants:
        return [_case(base, base["id"])]

    cases = []
    for number, variant in enumerate(variants, start=1):
        merged = copy.deepcopy(base)
        for key, value in variant.items():
            if key == "expect":
                merged["expect"] = {**merged.get("expect", {}), **value}
            else:
                merged[key] = copy.deepcopy(value)

        cases.append(_case(merged, f"{base['id']}-{number}"))

    return cases


def _case(data: dict[str, Any], case_id: str) -> Case:
    return Case(
        id=case_id,
        platform=data["platform"],
        summary=data.get("summary", ""),
        source=data.get("source", ""),
        files=dict(data.get("files", {})),
        clear=list(data.get("clear", [])),
        remove=list(data.get("remove", [])),
        shadow=dict(data.get("shadow", {})),
        machine=dict(data.get("machine", {})),
        image=dict(data.get("image", {})),
        check_date=data.get("check_date"),
        expect=dict(data.get("expect", {})),
    )


def lay_case(case: Case, root: Path) -> None:
    """Write the state of a Linux ``case`` into the root tree at ``root``.

    Every path is resolved inside the tree, its links followed as the booted
    image follows them: a link such as /etc/cloud -> /etc in the image must
    never lead a write to this machine's /etc.
    """
    for pattern in case.clear:
        for match in _glob_inside(root, pattern):
            _delete(match)

    for path in case.remove:
        _delete(_inside(root, path, follow_last=False))

    # Users first, so the files laid in their homes get the right owners.
    for user, password in case.shadow.items():
        if _passwd_entry(root, user) is None:
            _create_user(root, user)
        _set_password(root, user, password)

    for path, content in case.files.items():
        _write(root, path, content)


def _inside(root: Path, path: str, *, follow_last: bool = True) -> Path:
    return inside(root, path, follow_last=follow_last)


def _glob_inside(root: Path, pattern: str) -> list[Path]:
    """Expand ``pattern`` in the image one component at a time, never leaving it.

    glob.glob() would follow the image's links from this machine; here each
    directory listed is first resolved inside the image.
    """
    found = [""]
    for part in PurePosixPath(pattern).parts:
        if part == "/":
            continue
        if not any(magic in part for magic in "*?["):
            found = [f"{base}/{part}" for base in found]
            continue

        matches = []
        for base in found:
            try:
                names = sorted(os.listdir(_inside(root, base)))
            except OSError:
                continue
            hidden = part.startswith(".")
            matches += [
                f"{base}/{name}"
                for name in names
                if fnmatch.fnmatchcase(name, part) and (hidden or name[0] != ".")
            ]
        found = matches

    paths = [_inside(root, path, follow_last=False) for path in found]
    return [path for path in paths if path.exists() or path.is_symlink()]


def _delete(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    elif path.exists() or path.is_symlink():
        path.unlink()


def _read_lines(path: Path) -> list[str]:
    return path.read_text(encoding="utf-8").splitlines()


def _write_lines(path: Path, lines: list[str]) -> None:
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def _passwd_entry(root: Path, user: str) -> list[str] | None:
    for line in _read_lines(_inside(root, "etc/passwd")):
        fields = line.split(":")
        if fields[0] == user:
            return fields

    return None


def _create_user(root: Path, user: str) -> None:
    passwd = _read_lines(_inside(root, "etc/passwd"))
    group = _read_lines(_inside(root, "etc/group"))
    taken = {int(line.split(":")[2]) for line in passwd + group if line}
    uid = next(n for n in range(FIRST_USER_UID, 60000) if n not in taken)

    home = f"/home/{user}"
    _write_lines(
        _inside(root, "etc/passwd"),
        [*passwd, f"{user}:x:{uid}:{uid}::{home}:/bin/bash"],
    )
    _write_lines(_inside(root, "etc/group"), [*group, f"{user}:x:{uid}:"])
    shadow = _read_lines(_inside(root, "etc/shadow"))
    _write_lines(_inside(root, "etc/shadow"), [*shadow, f"{user}:!:19000:0:99999:7:::"])
    gshadow = _inside(root, "etc/gshadow")
    if gshadow.exists():
        _write_lines(gshadow, [*_read_lines(gshadow), f"{user}:!::"])

    # A home with an .ssh directory, as useradd -m and a deploy tool leave it.
    home_dir = _inside(root, home)
    (home_dir / ".ssh").mkdir(parents=True, exist_ok=True)
    home_dir.chmod(0o755)
    (home_dir / ".ssh").chmod(0o700)
    os.chown(home_dir, uid, uid)
    os.chown(home_dir / ".ssh", uid, uid)


def _set_password(root: Path, user: str, password: str) -> None:
    lines = _read_lines(_inside(root, "etc/shadow"))

    for index, line in enumerate(lines):
        fields = line.split(":")
        if fields[0] == user:
            fields[1] = password
            lines[index] = ":".join(fields)

    _write_lines(_inside(root, "etc/shadow"), lines)


def _write(root: Path, path: str, content: str) -> None:
    target = _inside(root, path)
    owner = _home_owner(root, path)

    # Create missing parents one by one, so those inside a home get its owner.
    missing = [p for p in reversed(target.parents) if not p.exists()]
    for directory in missing:
        directory.mkdir()
        if owner is not None and _is_under_home(root, directory, owner[2]):
            os.chown(directory, owner[0], owner[1])
            if directory.name == ".ssh":
                directory.chmod(0o700)

    target.write_text(content, encoding="utf-8")

    if owner is not None:
        os.chown(target, owner[0], owner[1])
    if ".ssh" in Path(path).parts:
        target.chmod(0o600)


def _home_owner(root: Path, path: str) -> tuple[int, int, str] | None:
    """Return uid, gid and home of the user whose home holds ``path``."""
    best: tuple[int, int, str] | None = None

    for line in _read_lines(_inside(root, "etc/passwd")):
        fields = line.split(":")

        # System accounts have homes such as /bin or /usr/sbin; only login
        # homes mean "this user's files".
        if len(fields) < 7 or not _is_login_home(fields[5]):
            continue

        home = fields[5].rstrip("/")
        inside = path == home or path.startswith(home + "/")
        if inside and (best is None or len(home) > len(best[2])):
            best = (int(fields[2]), int(fields[3]), home)

    return best


def _is_login_home(home: str) -> bool:
    return home.rstrip("/") == "/root" or home.startswith("/home/")


def _is_under_home(root: Path, directory: Path, home: str) -> bool:
    relative = "/" + str(directory.relative_to(root))

    return relative == home or relative.startswith(home + "/")
