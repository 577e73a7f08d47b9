"""What an image's root tree says about its first boot, read before booting it.

A container that will never let us in would otherwise be found out only when
the SSH timeout runs out (minutes by default): an image without cloud-init
never receives the launch key, and one whose sshd is not enabled never
answers. Both are read from the tree, as systemd and cloud-init will read it,
and so is the login user: the default user cloud-init creates at first boot.
"""

from __future__ import annotations

import fnmatch
import logging
import os
import shlex
from pathlib import Path
from typing import Any

import yaml

from pytest_amipolicy.errors import ImageError
from pytest_amipolicy.imaging.paths import inside

logger = logging.getLogger(__name__)

CLOUD_INIT = ("usr/bin/cloud-init", "bin/cloud-init")
CLOUD_INIT_DISABLED = "etc/cloud/cloud-init.disabled"
CLOUD_CONFIG = "etc/cloud/cloud.cfg"
SYSTEMD = ("lib/systemd/systemd", "usr/lib/systemd/systemd")
SSH_UNITS = ("ssh.service", "sshd.service", "ssh.socket", "sshd.socket")
# Where units are enabled by links, the administrator's directory first.
UNIT_DIRS = ("etc/systemd/system", "usr/lib/systemd/system", "lib/systemd/system")
PRESET_DIRS = (
    "etc/systemd/system-preset",
    "usr/lib/systemd/system-preset",
    "lib/systemd/system-preset",
)


INIT = ("sbin/init", "lib/systemd/systemd", "usr/lib/systemd/systemd")
SSHD = "usr/sbin/sshd"


def tree_problem(root: Path) -> str | None:
    """Why the OS tree at ``root`` cannot be booted and checked, or None.

    The answer completes a sentence that starts with the image's name. A
    missing release file is the caller's to say, as it means a different fix
    for each kind of image.
    """
    if root.resolve() == Path("/"):
        return (
            "is this machine's own root, not an image; give the root directory "
            "of an image, a tar archive or a raw disk image"
        )
    if not any(_exists(root, name) for name in INIT):
        return (
            f"has no init ({' or '.join(INIT[:2])}), so it cannot boot; give the "
            "root of a complete image, with systemd installed"
        )
    if not _exists(root, SSHD):
        return (
            f"has no SSH server ({SSHD}); install openssh-server in the image, as "
            "buyers reach Linux AMIs over SSH"
        )
    # Found out now rather than when the SSH timeout runs out.
    return first_boot_problem(root)


def first_boot_problem(root: Path) -> str | None:
    """Return why ``root`` cannot be logged into after its first boot, or None."""
    if not any(_exists(root, name) for name in CLOUD_INIT):
        return (
            "has no cloud-init (usr/bin/cloud-init), which hands the launch key to "
            "the login user at first boot as on EC2; install cloud-init in the image"
        )
    if _exists(root, CLOUD_INIT_DISABLED):
        return (
            f"has cloud-init turned off ({CLOUD_INIT_DISABLED}), so no launch key "
            "reaches the login user; remove that file from the image"
        )

    # Other init systems are booted as they are, unchecked.
    if any(_exists(root, name) for name in SYSTEMD) and not sshd_enabled(root):
        return (
            "does not start sshd at boot: no ssh or sshd service or socket is "
            "enabled (no link in etc/systemd/system/*.wants, no preset); enable it "
            "in the image (systemctl enable ssh, or sshd on Red Hat systems)"
        )
    return None


def login_user(root: Path) -> str:
    """Return the user to log in to ``root`` as, once booted with a launch key.

    That is the default user cloud-init creates at first boot, as its
    configuration in the tree names it; without one, the user EC2 images of
    the tree's distribution log in with.
    """
    configured = cloud_init_default_user(root)
    if configured is not None:
        return configured

    from pytest_amipolicy.aws.images import login_users

    release = os_release(root)
    for fields in (("ID", "NAME"), ("ID_LIKE",)):
        words = " ".join(release.get(field, "") for field in fields).strip()
        if words:
            found = login_users({"Name": words})
            if found != login_users({}):
                return found[0]
    return login_users({})[0]


def cloud_init_default_user(root: Path) -> str | None:
    """Return ``system_info.default_user.name`` as cloud-init in ``root`` reads it.

    cloud-init reads cloud.cfg, then the ``.cfg`` files of cloud.cfg.d in
    name order, a later file's value winning over an earlier one's.
    """
    files = [CLOUD_CONFIG]
    dropins = _unique_dirs(root, (f"{CLOUD_CONFIG}.d",))
    if dropins:
        names = sorted(path.name for path in dropins[0].glob("*.cfg"))
        files += [f"{CLOUD_CONFIG}.d/{name}" for name in names]

    name: str | None = None
    for relative in files:
        found = _dig(_read_yaml(root, relative), "system_info", "default_user", "name")
        if isinstance(found, str) and found.strip():
            name = found.strip()
    return name


def wrong_user(user: str, name: str, default: str) -> str:
    """Why login user ``user``, given as ``name``, is refused for this image.

    ``default`` is the image's cloud-init default user; ``name`` is the option
    or ini key the user came by, so that the fix names what was written.
    """
    if name.startswith("--"):
        fix = f"drop {name}, or use {name}={default}"
    else:
        fix = f"remove {name} from the ini file, or set {name} = {default}"

    return (
        f"{name}={user!r} is not the image's cloud-init default user {default!r}, "
        "who gets the launch key as on EC2 (checked as another user, SUDO and "
        f"AUTHORIZED-KEYS would judge a machine no buyer gets); {fix}"
    )


def os_release(root: Path) -> dict[str, str]:
    """Return the fields of the tree's os-release file (empty if it has none)."""
    for relative in ("etc/os-release", "usr/lib/os-release"):
        try:
            text = inside(root, relative).read_text(errors="replace")
        except (OSError, ImageError):
            continue

        fields = {}
        for line in text.splitlines():
            key, equals, value = line.partition("=")
            if equals and key.strip() and not key.startswith("#"):
                try:
                    words = shlex.split(value)
                except ValueError:
                    words = [value.strip()]
                fields[key.strip()] = " ".join(words)
        return fields
    return {}


def _read_yaml(root: Path, relative: str) -> Any:
    try:
        path = inside(root, relative)
        if not path.is_file():
            return None
        return yaml.safe_load(path.read_text(errors="replace"))
    except (OSError, ImageError, yaml.YAMLError) as error:
        # cloud-init skips a file it cannot read, and so do we.
        logger.debug("cannot read %s of %s: %s", relative, root, error)
        return None


def _dig(value: Any, *keys: str) -> Any:
    for key in keys:
        if not isinstance(value, dict):
            return None
        value = value.get(key)
    return value


def sshd_enabled(root: Path) -> bool:
    """Tell whether systemd in ``root`` starts an SSH server at boot."""
    for unit in SSH_UNITS:
        if _masked(root, unit):
            continue
        if _wanted(root, unit) or _preset_enables(root, unit):
            return True
    return False


def _wanted(root: Path, unit: str) -> bool:
    for directory in _unique_dirs(root, UNIT_DIRS):
        for wants in directory.glob("*.wants"):
            relative = f"{wants.relative_to(root)}/{unit}"
            if inside(root, relative, follow_last=False).is_symlink():
                return True
            if _exists(root, relative):
                return True
    return False


def _masked(root: Path, unit: str) -> bool:
    link = inside(root, f"etc/systemd/system/{unit}", follow_last=False)
    try:
        return os.readlink(link) == "/dev/null"
    except OSError:
        return False


def _preset_enables(root: Path, unit: str) -> bool:
    """Tell whether a preset enables ``unit`` on a first boot of ``root``.

    systemd applies presets when it boots a tree without a machine id, as a
    well-prepared image is; the first preset line matching the unit decides.
    """
    machine_id = inside(root, "etc/machine-id")
    try:
        first_boot = machine_id.read_text().strip() in ("", "uninitialized")
    except OSError:
        first_boot = True
    if not first_boot:
        return False

    # A file of one name in an earlier directory hides the later ones.
    files: dict[str, Path] = {}
    for directory in _unique_dirs(root, PRESET_DIRS):
        for preset in directory.glob("*.preset"):
            files.setdefault(preset.name, inside(root, preset.relative_to(root)))

    for name in sorted(files):
        try:
            lines = files[name].read_text(errors="replace").splitlines()
        except OSError:
            continue
        for line in lines:
            words = line.split()
            decides = len(words) >= 2 and words[0] in ("enable", "disable")
            if decides and fnmatch.fnmatchcase(unit, words[1]):
                return words[0] == "enable"
    return False


def _unique_dirs(root: Path, names: tuple[str, ...]) -> list[Path]:
    # /lib is a link to /usr/lib on merged systems: each directory once.
    found: dict[Path, None] = {}
    for name in names:
        try:
            directory = inside(root, name)
        except ImageError:
            continue
        if directory.is_dir():
            found.setdefault(directory, None)
    return list(found)


def _exists(root: Path, relative: str) -> bool:
    try:
        return inside(root, relative).exists()
    except (OSError, ImageError):
        return False
