"""``--ami-host``: a machine that is already running, reached by its host spec."""

from __future__ import annotations

import getpass
import logging
import os
import urllib.parse
from pathlib import Path
from typing import Any

from pytest_amipolicy.errors import TargetError
from pytest_amipolicy.targets import Connection, Progress, Target
from pytest_amipolicy.targets.ssh import (
    close_ssh,
    host_key_fingerprint,
    open_ssh,
    public_line_of,
)

logger = logging.getLogger(__name__)


class HostTarget(Target):
    """A running Linux machine over SSH or a Windows machine over WinRM."""

    kind = "host"

    def __init__(self, spec: str, settings: Any) -> None:
        super().__init__(spec, settings)
        self._parsed = urllib.parse.urlsplit(spec)
        self._query = urllib.parse.parse_qs(self._parsed.query)
        self._host: Any = None

    @property
    def label(self) -> str:
        # Passwords and key paths stay out of test ids and reports.
        user = f"{self._parsed.username}@" if self._parsed.username else ""
        port = f":{self._parsed.port}" if self._parsed.port else ""
        return f"{self._parsed.scheme}://{user}{self._parsed.hostname}{port}"

    def open(self, progress: Progress) -> Connection:
        if self._parsed.scheme == "winrm":
            return self._open_winrm(progress)

        user = self._parsed.username or self.settings.user or getpass.getuser()
        key_file = self._key_file()
        progress(f"connecting to {self.label} as {user}")

        self._host = open_ssh(
            self.label,
            address=self._parsed.hostname or "",
            port=self._parsed.port or 22,
            user=user,
            key_file=key_file,
            ssh_config=self._query_path("ssh_config"),
            timeout=float(self._query.get("timeout", ["15"])[0]),
        )
        return Connection(
            host=self._host,
            platform="linux",
            login_user=user,
            launch_public_key=public_line_of(key_file) if key_file else None,
            details={"host_key": host_key_fingerprint(self._host)},
        )

    def _open_winrm(self, progress: Progress) -> Connection:
        from pytest_amipolicy.targets.winrm import login_failure, open_winrm_host

        user = self._parsed.username or self.settings.user or "Administrator"
        verify = self._query.get("no_verify_ssl", ["false"])[0].lower() != "true"
        progress(f"connecting to {self.label} over WinRM as {user}")

        try:
            self._host = open_winrm_host(self.spec, user=user, verify_ssl=verify)
        except TargetError as error:
            # Named by the label: the spec holds the password.
            raise self.error(error.message) from None
        try:
            result = self._host.run("echo amipolicy")
        except Exception as error:  # pywinrm and requests raise many kinds
            plain = self._query.get("no_ssl", ["false"])[0].lower() == "true"
            port = self._parsed.port or (5985 if plain else 5986)
            where = f"{self._parsed.hostname}:{port}"
            reason, _ = login_failure(error, where=where, user=user)
            raise self.error(reason) from None
        if result.rc != 0:
            raise self.error(f"WinRM accepted {user} but cannot run commands.")

        return Connection(host=self._host, platform="windows", login_user=user)

    def close(self, progress: Progress) -> list[str]:
        if self._host is not None and self._parsed.scheme != "winrm":
            close_ssh(self._host)
        self._host = None
        return []

    def _key_file(self) -> Path | None:
        return self._query_path("ssh_identity_file") or self.settings.key_file

    def _query_path(self, name: str) -> Path | None:
        values = self._query.get(name)
        return Path(os.path.expanduser(values[0])) if values else None
