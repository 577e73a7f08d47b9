"""A tiny apt repository built and served by a test, to stand in for a mirror.

:func:`build_deb` makes a real (empty) binary package with ``dpkg-deb``,
:func:`write_repository` lays one suite of such packages out the way apt reads
it (a pool, a ``Packages`` index and a ``Release`` file with its hashes), and
:func:`served` serves a directory over HTTP on one address of this machine, so
that a booted container reaches it through its private network and nothing
leaves the host.
"""

from __future__ import annotations

import email.utils
import functools
import hashlib
import http.server
import shutil
import subprocess
import threading
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

MAINTAINER = "pytest-amipolicy tests <tests@amipolicy.invalid>"


@dataclass(frozen=True)
class Deb:
    """A built binary package and the control fields its index entry repeats."""

    path: Path
    package: str
    version: str
    architecture: str
    fields: dict[str, str] = field(default_factory=dict)


def build_deb(
    directory: Path,
    package: str,
    version: str,
    architecture: str = "all",
    fields: dict[str, str] | None = None,
) -> Deb:
    """Build an empty ``package`` at ``version`` in ``directory``; return it.

    ``fields`` are more control fields (``Depends``, ``Multi-Arch``...). apt
    takes two packages of one version for the same package only when their
    ``Installed-Size`` and relationships agree too, so a stand-in for an
    installed version repeats them.
    """
    tree = directory / f"{package}-{version}-tree"
    (tree / "DEBIAN").mkdir(parents=True)
    (tree / "DEBIAN/control").write_text(
        f"Package: {package}\n"
        f"Version: {version}\n"
        f"Architecture: {architecture}\n"
        f"Maintainer: {MAINTAINER}\n"
        f"{_lines(fields or {})}"
        "Description: stand-in built by a pytest-amipolicy test\n"
        " It only has to be offered by a repository; it is never installed.\n",
        encoding="utf-8",
    )

    # Debian's file names leave the epoch out.
    path = directory / f"{package}_{version.split(':', 1)[-1]}_{architecture}.deb"
    subprocess.run(
        ["dpkg-deb", "--root-owner-group", "--build", str(tree), str(path)],
        check=True,
        capture_output=True,
    )
    shutil.rmtree(tree)

    return Deb(path, package, version, architecture, dict(fields or {}))


def _lines(fields: dict[str, str]) -> str:
    return "".join(f"{name}: {value}\n" for name, value in fields.items())


def write_repository(
    root: Path,
    debs: Iterable[Deb],
    *,
    suite: str = "bookworm-security",
    origin: str = "Debian",
    label: str = "Debian-Security",
    component: str = "main",
    architecture: str = "amd64",
) -> None:
    """Lay ``debs`` out under ``root`` as ``suite``'s only component.

    ``architecture`` is the machine's; packages of architecture ``all`` are
    listed in its index, as Debian's own mirrors do.
    """
    pool = root / "pool" / component
    pool.mkdir(parents=True, exist_ok=True)

    entries = []
    for deb in debs:
        target = pool / deb.path.name
        shutil.copyfile(deb.path, target)
        data = target.read_bytes()
        entries.append(
            f"Package: {deb.package}\n"
            f"Version: {deb.version}\n"
            f"Architecture: {deb.architecture}\n"
            f"Maintainer: {MAINTAINER}\n"
            f"{_lines(deb.fields)}"
            f"Filename: {target.relative_to(root).as_posix()}\n"
            f"Size: {len(data)}\n"
            f"SHA256: {hashlib.sha256(data).hexdigest()}\n"
            "Description: stand-in built by a pytest-amipolicy test\n"
        )

    dists = root / "dists" / suite
    index = Path(component) / f"binary-{architecture}" / "Packages"
    (dists / index).parent.mkdir(parents=True, exist_ok=True)
    (dists / index).write_text("\n".join(entries), encoding="utf-8")

    body = (dists / index).read_bytes()
    (dists / "Release").write_text(
        f"Origin: {origin}\n"
        f"Label: {label}\n"
        f"Suite: {suite}\n"
        f"Codename: {suite}\n"
        f"Date: {email.utils.formatdate(usegmt=True)}\n"
        f"Architectures: {architecture}\n"
        f"Components: {component}\n"
        "Description: a repository served by a pytest-amipolicy test\n"
        "SHA256:\n"
        f" {hashlib.sha256(body).hexdigest()} {len(body)} {index.as_posix()}\n",
        encoding="utf-8",
    )


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        # The request log would only clutter the test output.
        pass


@contextmanager
def served(directory: Path, address: str) -> Iterator[str]:
    """Serve ``directory`` over HTTP on ``address``; yield its base URL.

    The port is picked by the kernel. Bind to the host side of a container's
    network so that only that container (and this machine) can reach it.
    """
    handler = functools.partial(_QuietHandler, directory=str(directory))
    server = http.server.ThreadingHTTPServer((address, 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()

    try:
        yield f"http://{address}:{server.server_port}/"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
