"""``--ami-image``: a local image booted in a container, reached over SSH.

The image is never written: it is the lower layer of an overlay, booted with
systemd-nspawn in a network namespace of its own, and given the launch key by
cloud-init at first boot exactly as EC2 would.
"""

from __future__ import annotations

import atexit
import contextlib
import hashlib
import logging
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any, Protocol

import pytest

from pytest_amipolicy.errors import ImageError
from pytest_amipolicy.targets import Connection, Progress, Target
from pytest_amipolicy.targets.specs import DEMO_IMAGE
from pytest_amipolicy.targets.ssh import LaunchKey, close_ssh, open_ssh

logger = logging.getLogger(__name__)


class Prepare(Protocol):
    """Lets the user's hooks change an image's writable root before it boots."""

    hook_name: str

    def __call__(self, label: str, root: Path) -> None: ...

    def implementers(self) -> list[str]:
        """Who may have changed it: the plugins implementing the hook."""
        ...


# Bytes read at a time to digest an image file.
DIGEST_BLOCK = 1 << 20


class ImageTarget(Target):
    """A root tree, tar archive or raw disk image, booted on this machine."""

    kind = "image"

    def __init__(
        self,
        spec: str,
        settings: Any,
        prepare: Prepare | None = None,
        label: str | None = None,
    ) -> None:
        super().__init__(spec, settings)
        self._prepare = prepare
        self._label = label or image_labels([spec])[spec]
        self._stack = contextlib.ExitStack()
        self._host: Any = None
        self.machine: Any = None
        # The container a failed open started and stopped again, and the
        # lines saying so, which close() returns like those of a checked one.
        self._started: str | None = None
        self._removed_at_open: list[str] = []
        # Which image was checked, for the evidence: known once it is opened,
        # kept when the boot then fails.
        self.source: dict[str, str] = {}

    @property
    def label(self) -> str:
        return self._label

    def open(self, progress: Progress) -> Connection:
        try:
            return self._open(progress)
        except ImageError as error:
            # One line naming the target, as for every other kind of target.
            raise self.error(str(error)) from error

    def _open(self, progress: Progress) -> Connection:
        from pytest_amipolicy.imaging.boot import booted
        from pytest_amipolicy.imaging.source import open_image
        from pytest_amipolicy.interrupts import deferred

        stack = contextlib.ExitStack()
        try:
            root = self._root(stack, open_image, progress)
            key = LaunchKey()
            stack.callback(key.remove)

            user = self._login_user(root)
            progress(f"booting {self.label}, to log in as {user}")
            self.machine = stack.enter_context(
                booted(
                    root,
                    login_user=user,
                    public_key=key.public_line,
                    prepare=self._prepare_root,
                    progress=progress,
                    started=self._note_started,
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
                key_name="the launch key made for this run",
                refused_advice=(
                    f"cloud-init's NoCloud seed gave it to {user} at boot: check "
                    f"that the image's cloud-init runs and that {user} is its "
                    "default user, and that the image's sshd accepts public "
                    "keys from ~/.ssh/authorized_keys (PubkeyAuthentication, "
                    "AuthorizedKeysFile)"
                ),
            )
            stack.callback(close_ssh, self._host)
        except BaseException:
            # Undone here when the open fails, and an interrupt waits for it.
            with deferred():
                stack.close()
                if self._started is not None:
                    self._removed_at_open.append(self._stopped_line(self._started))
            raise

        # Everything opened is closed by close().
        self._stack = stack
        _unclosed.add(self)

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
            tree = build_debian_image(self.settings.image_cache, progress=progress)
            self.source = {"image_path": str(tree), "image_kind": "directory"}
            return tree

        self.source = describe_source(Path(self.spec).expanduser(), progress)
        root: Path = stack.enter_context(open_image(Path(self.spec)))
        return root

    def _login_user(self, root: Path) -> str:
        from pytest_amipolicy.imaging.tree import (
            cloud_init_default_user,
            login_user,
            wrong_user,
        )

        # The seed gives the key to this user; any other name would make
        # cloud-init create a new user beside the image's own.
        given: str | None = self.settings.user
        if given is None:
            return login_user(root)

        # Directories (and a demo image already built) were checked before
        # the run; archives and disk images can only be read now.
        default = cloud_init_default_user(root)
        if default is not None and default != given:
            raise ImageError(wrong_user(given, self.settings.user_source, default))
        return given

    def _prepare_root(self, root: Path) -> None:
        from pytest_amipolicy.imaging.overlay import changed

        if self._prepare is None:
            return
        try:
            self._prepare(self.label, root)
        finally:
            # The image booted is then not the one named: the evidence says
            # who changed it rather than pass it off as the file unchanged.
            if changed(root):
                names = ", ".join(self._prepare.implementers())
                self.source["prepared_by"] = f"{names} ({self._prepare.hook_name})"

    def _note_started(self, name: str) -> None:
        self._started = name

    def _stopped_line(self, name: str) -> str:
        return f"{self.label}: container {name} stopped, overlay and network removed"

    def close(self, progress: Progress) -> list[str]:
        _unclosed.discard(self)
        if self.machine is None:
            self._teardown()
            removed, self._removed_at_open = self._removed_at_open, []
            return removed

        progress(f"stopping {self.label}")
        line = self._stopped_line(self.machine.name)
        self.machine = None
        if not self._teardown():
            progress(line)
            pytest.exit(
                f"interrupted while {self.label} was torn down; the teardown was "
                "finished first",
                returncode=pytest.ExitCode.INTERRUPTED,
            )
        return [line]

    def _teardown(self) -> bool:
        """Close what open() made; return False if Ctrl-C was pressed meanwhile.

        The interrupt is not raised here: at the end of a session that would
        also skip the teardown of the targets still to be closed.
        """
        from pytest_amipolicy.interrupts import deferred

        try:
            with deferred():
                self._stack.close()
        except KeyboardInterrupt:
            return False
        return True


# Targets opened and not closed yet: closed at exit if pytest never got to it
# (an earlier target's teardown was interrupted, say).
_unclosed: set[ImageTarget] = set()


@atexit.register
def _close_unclosed() -> None:
    for target in list(_unclosed):
        try:
            target.close(lambda message: logger.info("%s", message))
        except BaseException:
            logger.exception("cleanup of %s at exit failed", target.label)


def describe_source(path: Path, progress: Progress) -> dict[str, str]:
    """Say which image file or tree ``path`` is: where, what kind, its digest.

    A file's sha256 is read once, here, in the process that opens it: it is
    what lets a reviewer tell that the report is about the file uploaded.
    """
    from pytest_amipolicy.imaging.probe import is_tar_archive

    resolved = path.resolve()
    if resolved.is_dir():
        return {"image_path": str(resolved), "image_kind": "directory"}

    kind = "tar archive" if is_tar_archive(resolved) else "disk image"
    described = {"image_path": str(resolved), "image_kind": kind}
    if not resolved.is_file():
        # A block device: reading all of it is not this step's business.
        return described

    try:
        size = resolved.stat().st_size
        progress(f"computing the sha256 of {resolved} ({size / 2**20:.0f} MiB)")
        described["image_sha256"] = sha256_of(resolved)
    except OSError as error:
        raise ImageError(
            f"cannot read image {path} ({error.strerror}); check that it is still "
            "there and readable"
        ) from error

    described["image_bytes"] = str(size)
    return described


def sha256_of(path: Path) -> str:
    """The sha256 of the file at ``path``, read in blocks (images are large)."""
    digest = hashlib.sha256()
    with open(path, "rb") as image:
        while block := image.read(DIGEST_BLOCK):
            digest.update(block)
    return digest.hexdigest()


def image_labels(specs: Iterable[str]) -> dict[str, str]:
    """Return a readable label for each image, unique among ``specs``.

    A label is ``image:`` and the image's file name, with as many of its parent
    directories as it takes to tell apart images of the same name
    (``image:a/rootfs``, ``image:b/rootfs``). Two spellings of one path get the
    same label; the caller refuses that as the same target named twice.
    """
    paths = {spec: _path_parts(spec) for spec in specs}
    depth = dict.fromkeys(paths.values(), 1)

    while True:
        names = {parts: "/".join(parts[-depth[parts] :]) for parts in depth}
        taken = list(names.values())
        clashing = [
            parts
            for parts, name in names.items()
            if taken.count(name) > 1 and depth[parts] < len(parts)
        ]
        if not clashing:
            break
        for parts in clashing:
            depth[parts] += 1

    return {spec: f"image:{names[parts] or '/'}" for spec, parts in paths.items()}


def _path_parts(spec: str) -> tuple[str, ...]:
    if spec == DEMO_IMAGE:
        return (DEMO_IMAGE,)

    # Absolute without resolving links: the test suite gives each case a link
    # of its own name to one shared tree, and each is a target of its own.
    absolute = os.path.abspath(os.path.expanduser(spec))
    return Path(absolute).parts[1:]
