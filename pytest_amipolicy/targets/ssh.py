"""Opening a testinfra host over SSH, with errors a user can act on.

Every Linux target ends here: the address and key differ (a user's machine, a
local container, an EC2 instance) but the login, the check that it worked and
the translation of paramiko's exceptions into one readable line are shared.
"""

from __future__ import annotations

import base64
import contextlib
import errno
import hashlib
import logging
import os
import socket
import tempfile
import time
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import paramiko
import testinfra.backend
import testinfra.host
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, rsa

from pytest_amipolicy.errors import TargetError

logger = logging.getLogger(__name__)

# Throwaway machines get fresh host keys at first boot, so there is nothing to
# pin; a user's own machines keep paramiko's default of warning on unknown keys.
_TRUST_ANY_HOST_KEY = (
    "Host *\n  StrictHostKeyChecking no\n  UserKnownHostsFile /dev/null\n"
)


# What to do about a refused login when the user chose the key: a running
# machine. Targets that log in with a key made for the run give their own.
HOST_REFUSED_ADVICE = (
    "give the private key this user logs in with (--ami-key or "
    "?ssh_identity_file=) or the right user (in the spec, ssh://USER@host, or "
    "--ami-user when the spec names none)"
)


class LaunchKey:
    """A key pair made for one run; the private half lives in a 0600 temp file."""

    def __init__(self, kind: str = "ed25519") -> None:
        if kind == "ed25519":
            private: Any = ed25519.Ed25519PrivateKey.generate()
            encoding = serialization.PrivateFormat.OpenSSH
        elif kind == "rsa":
            private = rsa.generate_private_key(public_exponent=65537, key_size=3072)
            encoding = serialization.PrivateFormat.TraditionalOpenSSL
        else:
            raise ValueError(f"unknown key kind {kind!r}")

        self._directory = tempfile.TemporaryDirectory(prefix="amipolicy-key-")
        self.path = Path(self._directory.name) / f"id_{kind}"
        pem = private.private_bytes(
            serialization.Encoding.PEM, encoding, serialization.NoEncryption()
        )
        descriptor = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "wb") as handle:
            handle.write(pem)

        self.public_line = (
            private.public_key()
            .public_bytes(
                serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH
            )
            .decode()
        )
        self.ssh_config = Path(self._directory.name) / "ssh_config"
        self.ssh_config.write_text(_TRUST_ANY_HOST_KEY)

    def remove(self) -> None:
        self._directory.cleanup()


def public_line_of(key_file: Path) -> str | None:
    """Return the OpenSSH public line of a private key file, or None if unreadable.

    An encrypted key cannot be read without its passphrase; the checker then does
    not know the launch key, which AUTHORIZED-KEYS reports as undecidable.
    """
    try:
        private = serialization.load_ssh_private_key(key_file.read_bytes(), None)
    except (ValueError, TypeError, OSError):
        try:
            private = serialization.load_pem_private_key(key_file.read_bytes(), None)  # type: ignore[assignment]
        except (ValueError, TypeError, OSError):
            return None

    public = private.public_key().public_bytes(
        serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH
    )
    return public.decode()


def open_ssh(
    label: str,
    *,
    address: str,
    port: int,
    user: str,
    key_file: Path | None,
    ssh_config: Path | None = None,
    timeout: float = 15.0,
    key_name: str | None = None,
    refused_advice: str = HOST_REFUSED_ADVICE,
) -> Any:
    """Log in and return a testinfra host; raise TargetError with the fix if not.

    ``key_name`` says which key was offered, when its temporary path would mean
    nothing to the user; ``refused_advice`` is the fix for a refused login, if
    the caller does not give its own.

    The backend is built directly rather than through ``testinfra.get_host``,
    whose cache would hand a closed connection to a later target that happens
    to reuse an address.
    """
    options: dict[str, Any] = {"timeout": max(1, int(timeout))}
    if key_file is not None:
        options["ssh_identity_file"] = str(key_file)
    if ssh_config is not None:
        options["ssh_config"] = str(ssh_config)

    backend = testinfra.backend.get_backend(
        f"paramiko://{user}@{_bracket(address)}:{port}", **options
    )
    host = testinfra.host.Host(backend)
    backend.set_host(host)

    where = f"{user}@{address}:{port}"
    try:
        with warnings.catch_warnings():
            # paramiko warns of every host key it does not know, and testinfra
            # reads no known_hosts: the key goes into the evidence instead.
            warnings.filterwarnings(
                "ignore", message="Unknown .* host key for", category=UserWarning
            )
            result = host.run("true")
    except paramiko.PasswordRequiredException:
        # A subclass of AuthenticationException: the key never reached sshd.
        raise TargetError(
            label,
            f"the key {key_file} is protected by a passphrase, which the plugin "
            f"cannot ask for; load it into ssh-agent (ssh-add {key_file}) and "
            "run pytest where SSH_AUTH_SOCK reaches it, or give a key without "
            "a passphrase",
        ) from None
    except paramiko.AuthenticationException:
        key = key_name or (f"the key {key_file}" if key_file else "the keys offered")
        advice = f"; {refused_advice}" if refused_advice else ""
        raise TargetError(label, f"{where} refused {key}{advice}.") from None
    except (paramiko.SSHException, EOFError, OSError) as error:
        raise TargetError(
            label, connection_failure(error, address, port, timeout, where)
        ) from None

    if result.exit_status != 0:
        raise TargetError(label, no_command_message(where, user, result))
    return host


def no_command_message(where: str, user: str, result: Any) -> str:
    """Why a login that sshd accepted runs no command, as the machine said it."""
    # cloud-init's forced command for root prints its refusal on stdout, and
    # other forced commands may say nothing at all.
    said = " ".join((result.stderr.strip() or result.stdout.strip()).split())
    said = said[:300] or "nothing"
    advice = (
        "log in as the image's default user instead (give the user in the spec, "
        "ssh://USER@host)"
        if user == "root"
        else "check for a forced command (command= in authorized_keys, ForceCommand "
        "in sshd_config) or a login shell that refuses commands"
    )
    return (
        f"{where} accepted the login but ran no command (exit status "
        f"{result.exit_status}; it said: {said}); {advice}."
    )


def connection_failure(
    error: BaseException, address: str, port: int, timeout: float, where: str
) -> str:
    """Return one line saying why no SSH session to ``address`` could start."""
    if isinstance(error, socket.gaierror):
        return (
            f"cannot resolve {address!r} ({error.strerror}); check the host name "
            "and this machine's DNS."
        )

    # paramiko gathers refusals and unreachable hosts, one per address tried.
    causes = list(getattr(error, "errors", {}).values()) or [error]
    numbers = {getattr(cause, "errno", None) for cause in causes}

    if numbers & {errno.EHOSTUNREACH, errno.ENETUNREACH}:
        return (
            f"no route to {address}:{port}; check the address, and that this "
            "machine can reach that network (VPN, routes, subnet)."
        )
    if isinstance(error, TimeoutError) or errno.ETIMEDOUT in numbers:
        return (
            f"no answer from {address}:{port} within {timeout:.0f}s; check the "
            "address, the firewall or security group, and that sshd runs."
        )
    if errno.ECONNREFUSED in numbers or isinstance(error, ConnectionRefusedError):
        return (
            f"connection to {address}:{port} refused; check the address and port "
            "and that sshd runs."
        )
    if isinstance(error, paramiko.SSHException) and "banner" in str(error):
        # Something took the connection but never spoke SSH: a web server,
        # a proxy, a port forward to nowhere, or sshd too busy to greet.
        return (
            f"{address}:{port} took the connection but never answered as an SSH "
            f"server ({_reason(error)}); check that the port is sshd's, and that "
            "no proxy or firewall holds connections to it."
        )
    return f"SSH to {where} failed: {_reason(error)}."


def host_key_fingerprint(host: Any) -> str | None:
    """The host key the connection was made with, as ``TYPE SHA256:...``."""
    client = getattr(host.backend, "__dict__", {}).get("client")
    transport = client.get_transport() if client is not None else None
    if transport is None:
        return None

    key = transport.get_remote_server_key()
    digest = hashlib.sha256(key.asbytes()).digest()
    # As ssh-keygen -lf prints it: unpadded base64.
    return f"{key.get_name()} SHA256:{base64.b64encode(digest).decode().rstrip('=')}"


def close_ssh(host: Any) -> None:
    """Close the SSH connection behind a testinfra host, if one was opened."""
    client = getattr(host.backend, "__dict__", {}).get("client")
    if client is not None:
        with contextlib.suppress(Exception):
            client.close()


def wait_for_port(address: str, port: int, timeout: float) -> bool:
    """Wait until a TCP port accepts connections; return False on timeout."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection((address, port), timeout=3):
                return True
        except OSError:
            time.sleep(0.5)
    return False


def _bracket(address: str) -> str:
    return f"[{address}]" if ":" in address else address


def _reason(error: BaseException) -> str:
    text = str(error).strip()
    return text or type(error).__name__


@contextlib.contextmanager
def launch_key(kind: str = "ed25519") -> Iterator[LaunchKey]:
    key = LaunchKey(kind)
    try:
        yield key
    finally:
        key.remove()
