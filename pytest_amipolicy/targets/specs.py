"""What names a target, checked before anything is opened: host specs, image paths.

Every message names the value as the user gave it, with any password hidden,
and says how to fix it; :mod:`pytest_amipolicy.options` raises them as usage
errors before a single connection, launch or boot.
"""

from __future__ import annotations

import importlib.util
import math
import os
import shutil
import urllib.parse
from pathlib import Path

import pytest

from pytest_amipolicy.targets import redacted_spec

HOST_SCHEMES = ("ssh", "paramiko", "winrm")
# The query options of a host spec that the targets read; others would be
# silently ignored, so they are refused.
HOST_QUERY_KEYS = {
    "ssh": ("ssh_identity_file", "ssh_config", "timeout"),
    "winrm": ("no_ssl", "no_verify_ssl", "read_timeout_sec", "operation_timeout_sec"),
}
# The value of --ami-image that builds and checks the bundled Debian demo image.
DEMO_IMAGE = "demo"
# What booting a local image runs, with the Debian package that has it.
BOOT_TOOLS = (("systemd-nspawn", "systemd-container"), ("ip", "iproute2"))


def check_host_spec(value: str) -> str:
    """Return ``value`` if it is a host spec the plugin can use; else UsageError.

    Messages show the spec with its password hidden: they reach the terminal,
    and from there logs that others read.
    """
    shown = f"--ami-host={redacted_spec(value)!r}"
    forms = (
        "use ssh://user@host[:port], paramiko://user@host or "
        "winrm://user:password@host[:port]"
    )
    try:
        parsed = urllib.parse.urlsplit(value)
    except ValueError:
        # A bracket left open, as in ssh://[::1.
        raise pytest.UsageError(f"{shown} is not a host spec: {forms}.") from None

    try:
        # urlsplit reads the port only when asked.
        port = parsed.port
    except ValueError:
        quoting = (
            " (write ; @ : / # % ? in a password as %XX)"
            if parsed.scheme == "winrm"
            else ""
        )
        raise pytest.UsageError(
            f"{shown} has a port that is not a number between 1 and 65535{quoting}: "
            f"{forms}."
        ) from None

    if parsed.scheme not in HOST_SCHEMES or not parsed.hostname:
        raise pytest.UsageError(f"{shown} is not a host spec: {forms}.")
    if port == 0:
        raise pytest.UsageError(
            f"{shown} has port 0: give the port sshd or WinRM listens on (1 to "
            "65535), or leave it out for the default."
        )

    if parsed.scheme == "winrm":
        _check_winrm_spec(shown, parsed)
    else:
        _check_ssh_query(shown, parsed)
    return value


def _host_query(shown: str, parsed: urllib.parse.SplitResult) -> dict[str, str]:
    scheme = "winrm" if parsed.scheme == "winrm" else "ssh"
    known = HOST_QUERY_KEYS[scheme]
    kind = "a winrm" if scheme == "winrm" else "an ssh"
    query = {
        key: values[0]
        for key, values in urllib.parse.parse_qs(
            parsed.query, keep_blank_values=True
        ).items()
    }

    unknown = sorted(set(query) - set(known))
    if unknown:
        raise pytest.UsageError(
            f"{shown}: {', '.join(unknown)} is not an option the plugin reads "
            f"from {kind} spec; use {', '.join(known)}."
        )
    return query


def _check_ssh_query(shown: str, parsed: urllib.parse.SplitResult) -> None:
    query = _host_query(shown, parsed)

    files = (
        ("ssh_identity_file", "key", "the private key that logs in to this host"),
        ("ssh_config", "ssh_config", "an ssh_config file, or leave it out"),
    )
    for name, what, fix in files:
        if name in query and not Path(os.path.expanduser(query[name])).is_file():
            raise pytest.UsageError(
                f"{shown}: the {what} file {query[name]!r} does not exist; give "
                f"the path of {fix}."
            )

    if "timeout" in query:
        _check_spec_number(shown, "timeout", query["timeout"])


def _check_winrm_spec(shown: str, parsed: urllib.parse.SplitResult) -> None:
    if not parsed.password:
        raise pytest.UsageError(
            f"{shown} has no password: WinRM logs in with one, as "
            "in winrm://Administrator:PASSWORD@host[:port]."
        )

    query = _host_query(shown, parsed)
    for name in ("no_ssl", "no_verify_ssl"):
        if name in query and query[name].lower() not in ("true", "false"):
            raise pytest.UsageError(
                f"{shown}: {name}={query[name]!r} must be true or false."
            )
    for name in ("read_timeout_sec", "operation_timeout_sec"):
        if name in query:
            _check_spec_number(shown, name, query[name])

    if importlib.util.find_spec("winrm") is None:
        raise pytest.UsageError(
            f"{shown}: WinRM targets need pywinrm; install it with "
            "pip install 'pytest-amipolicy[windows]'."
        )


def _check_spec_number(shown: str, name: str, value: str) -> None:
    try:
        number = float(value)
    except ValueError:
        number = math.nan
    if not (0 < number < math.inf):
        raise pytest.UsageError(
            f"{shown}: {name}={value!r} must be a positive number of seconds, "
            f"such as {name}=30."
        )


def check_image(value: str) -> str:
    if value != DEMO_IMAGE and not Path(value).expanduser().exists():
        raise pytest.UsageError(
            f"--ami-image={value!r} does not exist: give a root directory, a tar "
            f"archive or a raw disk image, or {DEMO_IMAGE} for the bundled image."
        )
    return value


def check_image_contents(images: tuple[str, ...]) -> None:
    """Refuse an image that a quick look shows cannot be one.

    Checked once the boot tools are known to be there (reading a disk image
    may need root): a plain file, an empty directory or an archive of
    something else would otherwise fail every policy in turn, once the run
    has started. Mounting, extracting and reading the tree wait for the open.
    """
    from pytest_amipolicy.imaging.probe import cheap_problem

    for value in images:
        if value == DEMO_IMAGE:
            continue

        problem = cheap_problem(Path(value).expanduser())
        if problem is not None:
            raise pytest.UsageError(f"--ami-image={value!r} {problem}.")


def check_image_users(images: tuple[str, ...], user: str | None, name: str) -> None:
    """Refuse a login user other than the one an image's cloud-init creates.

    Read now from images that are directories (the demo image once built);
    archives and disk images are read when they are opened. ``name`` is what
    the user came by: the option or the ini key.
    """
    if user is None:
        return
    from pytest_amipolicy.imaging.tree import cloud_init_default_user, wrong_user

    for value in images:
        root = _tree_of(value)
        if root is None:
            continue

        default = cloud_init_default_user(root)
        if default is not None and default != user:
            raise pytest.UsageError(
                f"--ami-image={value!r}: {wrong_user(user, name, default)}."
            )


def warn_host_users(
    config: pytest.Config, hosts: tuple[str, ...], user: str | None, name: str
) -> None:
    """Warn for each host spec whose own user overrides the login user given.

    Not refused: the login user may be meant for the run's other targets.
    """
    if user is None:
        return

    for value in hosts:
        named = urllib.parse.urlsplit(value).username
        if named and urllib.parse.unquote(named) != user:
            config.issue_config_time_warning(
                pytest.PytestConfigWarning(
                    f"{name}={user!r} does not apply to "
                    f"--ami-host={redacted_spec(value)!r}, which logs in as the "
                    f"user its spec names ({urllib.parse.unquote(named)!r}); write "
                    "the user into the spec to change it."
                ),
                stacklevel=4,
            )


def _tree_of(value: str) -> Path | None:
    if value == DEMO_IMAGE:
        from pytest_amipolicy.imaging.build import cached_debian_image

        return cached_debian_image()

    path = Path(value).expanduser()
    return path if path.is_dir() else None


def check_boot_tools(images: tuple[str, ...]) -> None:
    """Refuse local images unless this process can mount and boot them.

    Without this, every policy of every image would report the same missing
    tool as an error, after the run had started.
    """
    if not images:
        return
    shown = f"--ami-image={images[0]!r}"

    if os.geteuid() != 0:
        raise pytest.UsageError(
            f"{shown} needs root: the image is mounted and booted in a container "
            "on this machine; run pytest as root (sudo -E pytest ...)."
        )

    for tool, package in BOOT_TOOLS:
        if shutil.which(tool) is None:
            raise pytest.UsageError(
                f"{shown} needs {tool}, which is not on the PATH; install it "
                f"(apt-get install {package}) and run again."
            )

    if DEMO_IMAGE in images and shutil.which("mmdebstrap") is None:
        from pytest_amipolicy.imaging.build import cached_debian_image

        if cached_debian_image() is None:
            raise pytest.UsageError(
                f"--ami-image={DEMO_IMAGE} builds the Debian demo image once, which "
                "needs mmdebstrap (apt-get install mmdebstrap); or give the path "
                "of an image of your own."
            )
