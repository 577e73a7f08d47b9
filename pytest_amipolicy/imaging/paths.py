"""Paths inside an image's root tree, resolved as the image itself would see them.

An image's symbolic links are meant for the image: ``/etc/cloud -> /etc`` or
``/var/lib/cloud -> /data/cloud`` point into the image once it boots, but
followed from this machine they point at this machine's own files. Everything
that reads or writes a file of an image before it boots goes through
:func:`inside`, which follows the links the way the booted image will, and
never leaves the root.
"""

from __future__ import annotations

import os
from pathlib import Path, PurePosixPath

from pytest_amipolicy.errors import ImageError

# The kernel gives up after 40 links in one lookup; so does this.
MAX_LINKS = 40


def inside(
    root: Path, path: str | os.PathLike[str], *, follow_last: bool = True
) -> Path:
    """Return the path on this machine of ``path`` in the image rooted at ``root``.

    Links are followed with ``root`` as the root directory: an absolute link
    starts again at ``root`` and ``..`` stops there. The result lies under
    ``root`` and none of its components below ``root`` is a link, except the
    last when ``follow_last`` is false (to remove a link rather than what it
    points at). Components that do not exist yet are kept as they are, so the
    result can be created with ``mkdir(parents=True)``.
    """
    pending = _parts(path)
    pending.reverse()
    resolved: list[str] = []
    links = 0

    while pending:
        part = pending.pop()
        if part == "..":
            if resolved:
                resolved.pop()
            continue

        candidate = root.joinpath(*resolved, part)
        if (pending or follow_last) and candidate.is_symlink():
            links += 1
            if links > MAX_LINKS:
                raise ImageError(
                    f"too many levels of symbolic links in {path} of the image at "
                    f"{root}; fix the links in the image"
                )
            target = os.readlink(candidate)
            if target.startswith("/"):
                resolved = []
            pending.extend(reversed(_parts(target)))
            continue

        resolved.append(part)

    return root.joinpath(*resolved)


def _parts(path: str | os.PathLike[str]) -> list[str]:
    # PurePosixPath drops "." and repeated slashes but keeps "..", as needed.
    return [part for part in PurePosixPath(path).parts if part != "/"]
