"""``--ami-image``: a local image booted in a container, reached over SSH.

The image is never written: it is the lower layer of an overlay, booted with
systemd-nspawn in a network namespace of its own, and given the launch key by
cloud-init at first boot exactly as EC2 would.
"""

from __future__ import annotations

import contextlib
import logging
from pathlib import Path
from typing import Any, Callable

from pytest_amipolicy.options import DEMO_IMAGE
from pytest_amipolicy.targets import Connection, Progress, Target
from pytest_amipolicy.targets.ssh import LaunchKey, close_ssh, open_ssh

logger = logging.getLogger(__name__)

# The login user cloud-init creates in the demo image, as on Debian's own AMIs.
DEFAULT_USER = "admin"

Prepare = Callable[[str, Path], None]


class ImageTarget(Target):
    """A root tree, tar archive or raw disk image, booted on this machine."""

    kind = "image"

    def __init__(
        self, spec: str, settings: Any, prepare: Prepare | None = None
    ) -> None:
        super().__init__(spec, settings)
        self._prepare = prepare
        self._stack = contextlib.ExitStack()
        self._host: Any = None
        self.machine: Any = None

    @property
    def label(self) -> str:
        if self.spec == DEMO_IMAGE:
            return "image:demo"
        return f"image:{Path(self.spec).name or self.spec}"

    def open(self, progress: Progress) -> Connection:
        from pytest_amipolicy.imaging.boot import booted
        from pytest_amipolicy.imaging.source import open_image

        with self._stack.pop_all() as stack:
            root = self._root(stack, open_image, progress)
            key = LaunchKey()
            stack.callback(key.remove)

            user = self.settings.user or DEFAULT_USER
            progress(f"booting {self.label}")
            self.machine = stack.enter_context(
                booted(
                    root,
                    login_user=user,
                    public_key=key.public_line,
                    prepare=self._prepare_root,
                    progress=progress,
                    timeout=self.settings.ssh_timeout,
                )
            )
            progress(
                f"{self.label} answers SSH at {self.machine.address} after "
                f"{self.machine.boot_time:.1f}s"
            )

            self._host = open_ssh(
                self.label,
                address=self.machine.address,
                port=self.machine.port,
                user=user,
                key_file=key.path,
                ssh_config=key.ssh_config,
            )
            stack.callback(close_ssh, self._host)

            # Everything opened so far is closed by close(), not on leaving here.
            self._stack = stack.pop_all()

        return Connection(
            host=self._host,
            platform="linux",
            login_user=user,
            launch_public_key=key.public_line,
            details={"boot_seconds": self.machine.boot_time},
        )

    def _root(
        self, stack: contextlib.ExitStack, open_image: Any, progress: Progress
    ) -> Path:
        if self.spec == DEMO_IMAGE:
            from pytest_amipolicy.imaging.build import build_debian_image

            progress("preparing the Debian demo image (built once, then cached)")
            return build_debian_image(self.settings.image_cache, progress=progress)

        root: Path = stack.enter_context(open_image(Path(self.spec)))
        return root

    def _prepare_root(self, root: Path) -> None:
        if self._prepare is not None:
            self._prepare(self.label, root)

    def close(self, progress: Progress) -> list[str]:
        if self.machine is None:
            self._stack.close()
            return []

        progress(f"stopping {self.label}")
        name = self.machine.name
        self._stack.close()
        self.machine = None
        return [f"{self.label}: container {name} stopped, overlay and network removed"]
