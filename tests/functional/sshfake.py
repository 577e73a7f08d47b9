"""A tiny SSH server on loopback that stands in for a launched instance.

It accepts public-key logins only, only for the keys it was told to accept (as
cloud-init would install the launch key), and answers ``true`` and ``echo``;
every other command exits 127. Enough to drive the EC2 flow's login step
without a machine.
"""

from __future__ import annotations

import io
import logging
import socket
import threading
import time

import paramiko
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519

logger = logging.getLogger(__name__)

# The admin-port probe connects and hangs up without a banner; paramiko logs
# that at ERROR from its server thread, which is noise here.
logging.getLogger("paramiko.transport").setLevel(logging.CRITICAL)


def _host_key() -> paramiko.PKey:
    pem = ed25519.Ed25519PrivateKey.generate().private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.OpenSSH,
        serialization.NoEncryption(),
    )
    return paramiko.Ed25519Key.from_private_key(io.StringIO(pem.decode()))


class _Interface(paramiko.ServerInterface):
    def __init__(self, server: FakeSshServer) -> None:
        self.server = server

    def get_allowed_auths(self, username: str) -> str:
        return "publickey"

    def check_auth_publickey(self, username: str, key: paramiko.PKey) -> int:
        offered = key.get_base64()
        with self.server.lock:
            self.server.attempts.append(username)
            accepted = offered in self.server.authorized
        if accepted and username in self.server.users:
            return paramiko.AUTH_SUCCESSFUL
        return paramiko.AUTH_FAILED

    def check_channel_request(self, kind: str, chanid: int) -> int:
        if kind == "session":
            return paramiko.OPEN_SUCCEEDED
        return paramiko.OPEN_FAILED_ADMINISTRATIVELY_PROHIBITED

    def check_channel_exec_request(
        self, channel: paramiko.Channel, command: bytes
    ) -> bool:
        text = command.decode("utf-8", "replace")
        with self.server.lock:
            self.server.commands.append(text)
        threading.Thread(target=_answer, args=(channel, text), daemon=True).start()
        return True


def _answer(channel: paramiko.Channel, command: str) -> None:
    # The exec request is acknowledged only after check_channel_exec_request
    # returns; answering before that could overtake the acknowledgement.
    time.sleep(0.02)
    words = command.split()
    if words == ["true"]:
        status, output = 0, ""
    elif words and words[0] == "echo":
        status, output = 0, " ".join(words[1:]) + "\n"
    else:
        status, output = 127, ""
    if output:
        channel.sendall(output.encode())
    channel.send_exit_status(status)
    channel.close()


class FakeSshServer:
    """Listen on 127.0.0.1 on a free port until :meth:`stop`."""

    def __init__(self, users: tuple[str, ...] = ("ec2-user",)) -> None:
        self.users = users
        self.authorized: set[str] = set()
        self.attempts: list[str] = []
        self.commands: list[str] = []
        self.lock = threading.Lock()
        self._host_key = _host_key()
        self._socket = socket.create_server(("127.0.0.1", 0))
        self._socket.settimeout(0.2)
        self.port: int = self._socket.getsockname()[1]
        self._stopping = threading.Event()
        self._transports: list[paramiko.Transport] = []
        self._channels_open: list[paramiko.Channel] = []
        self._thread = threading.Thread(target=self._serve, daemon=True)

    def authorize(self, public_line: str) -> None:
        """Accept the key of an OpenSSH public line (``ssh-ed25519 AAAA... comment``)."""
        with self.lock:
            self.authorized.add(public_line.split()[1])

    def start(self) -> FakeSshServer:
        self._thread.start()
        return self

    def _serve(self) -> None:
        while not self._stopping.is_set():
            try:
                connection, _ = self._socket.accept()
            except (socket.timeout, OSError):
                continue
            transport = paramiko.Transport(connection)
            transport.add_server_key(self._host_key)
            self._transports.append(transport)
            try:
                transport.start_server(server=_Interface(self))
            except (paramiko.SSHException, EOFError) as error:
                logger.debug("fake sshd: handshake failed: %s", error)
                continue
            threading.Thread(
                target=self._channels, args=(transport,), daemon=True
            ).start()

    def _channels(self, transport: paramiko.Transport) -> None:
        # Accepted channels are kept: paramiko closes a channel that is
        # garbage collected, before its exec request arrives.
        while transport.is_active() and not self._stopping.is_set():
            channel = transport.accept(timeout=0.2)
            if channel is not None:
                self._channels_open.append(channel)

    def stop(self, timeout: float | None = 5.0) -> None:
        self._stopping.set()
        self._socket.close()
        for transport in self._transports:
            transport.close()
        self._thread.join(timeout)
