"""Recorded Linux facts for the unit tests, and ways to change one section.

``recorded/debian12-root.txt`` is the real output of ``linux.sh`` run through
sudo by the login user on the booted Debian 12 test image, the secrets scan
limited to a directory with planted fakes (``python -m tests.unit.record_facts``
makes it again); ``recorded/sshd/`` holds real ``sshd -T`` output for the SSH
cases' configs.
"""

from __future__ import annotations

import datetime
import json
from pathlib import Path
from typing import Any

from pytest_amipolicy.facts import Facts, Section, linux

RECORDED = Path(__file__).with_name("recorded")


def real_output() -> str:
    return (RECORDED / "debian12-root.txt").read_text(encoding="utf-8")


def section(name: str, output: str = "", status: int = 0, command: str = "") -> Section:
    return Section(name, command or name, status, output)


def debian(**sections: Section | None) -> Facts:
    """The recorded Debian 12 facts, with ``sections`` replaced (None removes)."""
    parsed = linux.parse(real_output())
    for name, value in sections.items():
        key = name.replace("_", "-")
        if value is None:
            parsed.pop(key, None)
        else:
            parsed[key] = Section(key, value.command, value.status, value.output)
    return Facts(
        target="recorded-debian12",
        platform="linux",
        sections=parsed,
        login_user="admin",
        launch_public_key=recorded_launch_key(),
        check_date=datetime.date(2025, 6, 1),
    )


def recorded_launch_key() -> str:
    """The key the recorded machine was launched with: its login user's only key."""
    keys = linux.parse(real_output())["authorized-keys"].output.splitlines()
    marker = keys.index("@@keyfile /home/admin/.ssh/authorized_keys@@")
    return keys[marker + 1].split(":", 1)[1]


def sshd_t(case: str, user: str) -> str:
    return (RECORDED / "sshd" / f"{case}.{user}.txt").read_text(encoding="utf-8")


def case(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(
        (Path(__file__).parent / "recorded" / "cases" / f"{name}.json").read_text()
    )
    return data


def config_dump(files: dict[str, str]) -> str:
    return "".join(f"@@file {path}@@\n{text}" for path, text in files.items())


def contexts(*evaluations: tuple[str, str]) -> Section:
    """An ``sshd-contexts`` section of (user, sshd -T output) evaluations."""
    return section(
        "sshd-contexts",
        "".join(f"@@context user={user}@@\n{text}" for user, text in evaluations),
    )


NO_MATCH = section("sshd-contexts", "@@no-match@@\n")


def ssh_case(name: str) -> Facts:
    """Facts of one SSH case: its sshd -T output and its config text.

    A case whose configuration has a Match block gets the per-account
    evaluations of the accounts recorded (root and admin).
    """
    files = {path: text for path, text in case(name)["files"].items()}
    main = {"/etc/ssh/sshd_config": files.pop("/etc/ssh/sshd_config")}
    has_match = any(
        line.strip().lower().startswith("match ")
        for text in [*main.values(), *files.values()]
        for line in text.splitlines()
    )
    per_account = (
        contexts(*((user, sshd_t(name, user)) for user in ("root", "admin")))
        if has_match
        else NO_MATCH
    )
    return debian(
        sshd_root=section("sshd-root", sshd_t(name, "root")),
        sshd_login=section("sshd-login", sshd_t(name, "admin")),
        sshd_user=section("sshd-user", sshd_t(name, "amipolicy-nobody")),
        sshd_contexts=per_account,
        sshd_config=section("sshd-config", config_dump({**main, **files})),
        cloud_init=section("cloud-init", "", 1),
    )
