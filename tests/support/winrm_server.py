"""A WS-Management endpoint on loopback that plays a described Windows machine.

It speaks the part of the WinRM shell protocol that pywinrm uses (Create a cmd
shell, Command, Receive until CommandState Done, Signal terminate, Delete), over
HTTPS with a self-signed certificate or plain HTTP, behind NTLM (checked for
real by pyspnego, with TLS channel binding) or basic authentication.

Commands are answered as cmd.exe would on the machine: the fact script of
``pytest_amipolicy/facts/windows.ps1`` (recognised by decoding the command line
and comparing the script it carries) gets the JSON document that script would
print for the described state; ``echo``, ``hostname``, ``whoami`` and ``ver``
get simple answers; anything else fails with cmd.exe's exit status 9009.
"""

from __future__ import annotations

import base64
import datetime
import hashlib
import http.server
import ipaddress
import json
import logging
import os
import ssl
import tempfile
import threading
import uuid
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape

from pytest_amipolicy.facts import windows as windows_facts

logger = logging.getLogger(__name__)

NS = {
    "s": "http://www.w3.org/2003/05/soap-envelope",
    "a": "http://schemas.xmlsoap.org/ws/2004/08/addressing",
    "w": "http://schemas.dmtf.org/wbem/wsman/1/wsman.xsd",
    "rsp": "http://schemas.microsoft.com/wbem/wsman/1/windows/shell",
}
SHELL = "http://schemas.microsoft.com/wbem/wsman/1/windows/shell"
TRANSFER = "http://schemas.xmlsoap.org/ws/2004/09/transfer"
CMD_LINE_LIMIT = 8191
# Receive hands out output in pieces this big, so clients must loop until Done.
CHUNK = 512

DOMAIN_SID = "S-1-5-21-1111111111-2222222222-3333333333"
V2_PATHS = (
    "C:\\Program Files\\Amazon\\EC2Launch\\EC2Launch.exe",
    "C:\\ProgramData\\Amazon\\EC2Launch\\config\\agent-config.yml",
)
EC2CONFIG_PATHS = (
    "C:\\Program Files\\Amazon\\Ec2ConfigService\\Ec2Config.exe",
    "C:\\Program Files\\Amazon\\Ec2ConfigService\\Settings\\config.xml",
)

# Remote desktop as a stock EC2 Windows image has it: allowed, no Group Policy
# value, the service on demand, the firewall rules of its group on.
DEFAULT_RDP: dict[str, Any] = {
    "deny_connections": 0,
    "policy_deny_connections": None,
    "service_start_mode": "Manual",
    "firewall": [
        {
            "name": f"Remote Desktop - User Mode ({protocol}-In)",
            "enabled": "True",
            "direction": "Inbound",
            "profile": "Any",
        }
        for protocol in ("TCP", "UDP")
    ],
}


def render_facts(machine: dict[str, Any]) -> dict[str, Any]:
    """Return the JSON document the fact script would print on ``machine``.

    ``machine`` is the ``machine`` field of a case file; what it leaves out
    takes the value of a well-prepared EC2 Windows image of its OS version.
    """
    os_info = dict(
        machine.get(
            "os",
            {
                "caption": "Microsoft Windows Server 2022 Datacenter",
                "version": "10.0.20348",
            },
        )
    )
    os_info.setdefault("build", os_info.get("version", "").rpartition(".")[2])
    os_info.setdefault("architecture", "64-bit")
    os_info.setdefault("processor_architecture", "AMD64")
    major = os_info.get("version", "").split(".")[0]
    modern = not major.isdigit() or int(major) >= 10

    users = machine.get(
        "local_users",
        [
            {"name": "Administrator", "sid": f"{DOMAIN_SID}-500", "enabled": True},
            {"name": "Guest", "sid": f"{DOMAIN_SID}-501", "enabled": False},
            {"name": "DefaultAccount", "sid": f"{DOMAIN_SID}-503", "enabled": False},
        ],
    )

    groups: dict[str, Any] = {
        "S-1-5-32-544": {
            "name": "Administrators",
            "members": [{"name": "Administrator", "sid": f"{DOMAIN_SID}-500"}],
        },
        "S-1-5-32-555": {"name": "Remote Desktop Users", "members": []},
    }
    for sid, members in machine.get("groups", {}).items():
        groups[sid] = _group(sid, members, users)

    if modern:
        default_services = {"EC2Launch": "Running", "AmazonSSMAgent": "Running"}
        default_paths: tuple[str, ...] = V2_PATHS
    else:
        default_services = {"Ec2Config": "Running", "AmazonSSMAgent": "Running"}
        default_paths = EC2CONFIG_PATHS
    services = machine.get("services", {**default_services, "TermService": "Running"})
    paths = list(machine.get("paths", default_paths))

    document: dict[str, Any] = {
        "schema": 1,
        "os": os_info,
        "local_users": users,
        "groups": groups,
        "services": services,
        "paths": paths,
        "launch": machine.get("launch", _launch_settings(paths)),
        # A described rdp state names what differs from a stock image.
        "rdp": {**DEFAULT_RDP, **machine.get("rdp", {})},
        "winlogon": machine.get(
            "winlogon", {"auto_admin_logon": "0", "default_password": "absent"}
        ),
        "unattend_passwords": machine.get("unattend_passwords", []),
        "saved_credentials": machine.get("saved_credentials", {}),
        "errors": dict(machine.get("errors", {})),
    }

    # A fact the machine could not give is left out, as the script does.
    for key in document["errors"]:
        document.pop(key, None)
    return document


def _group(sid: str, members: Any, users: list[dict[str, Any]]) -> dict[str, Any]:
    if isinstance(members, dict):
        return members
    if isinstance(members, str):
        return {"error": members}

    by_name = {user["name"].lower(): user["sid"] for user in users}
    listed = []
    for member in members:
        if isinstance(member, str):
            member = {"name": member, "sid": by_name.get(member.lower())}
        listed.append(member)
    return {"members": listed}


def _launch_settings(paths: list[str]) -> dict[str, Any]:
    lowered = {path.lower() for path in paths}
    launch: dict[str, Any] = {}
    if any(path.endswith("\\agent-config.yml") for path in lowered):
        launch["v2"] = {"admin_task": True, "password_type": "random"}
    if any(path.endswith("\\launchconfig.json") for path in lowered):
        launch["v1"] = {"admin_password_type": "Random", "handle_user_data": True}
    if any(path.endswith("\\settings\\config.xml") for path in lowered):
        launch["ec2config"] = {
            "Ec2SetPassword": "Enabled",
            "Ec2HandleUserData": "Enabled",
            "Ec2WindowsActivate": "Enabled",
        }
    return launch


@dataclass
class Command:
    stdout: bytes
    stderr: bytes
    exit_code: int
    sent: int = 0


@dataclass
class Shell:
    commands: dict[str, Command] = field(default_factory=dict)


class FakeWindows:
    """The machine behind the endpoint: answers cmd.exe command lines."""

    def __init__(self, machine: dict[str, Any], hostname: str = "EC2AMAZ-TEST01"):
        self.machine = machine
        self.hostname = hostname
        self.commands: list[str] = []

    def run(self, command: str) -> Command:
        self.commands.append(command)
        if len(command) > CMD_LINE_LIMIT:
            return Command(b"", b"The command line is too long.\r\n", 1)

        script = windows_facts.decode_command(command)
        if script is not None:
            if script != windows_facts.SCRIPT:
                return Command(b"", b"unexpected script\r\n", 1)
            document = json.dumps(render_facts(self.machine), ensure_ascii=True)
            return Command(document.encode("ascii"), b"", 0)

        word, _, rest = command.strip().partition(" ")
        version = self.machine.get("os", {}).get("version", "10.0.20348")
        answers = {
            "echo": rest,
            "hostname": self.hostname,
            "whoami": f"{self.hostname.lower()}\\administrator",
            "ver": f"\r\nMicrosoft Windows [Version {version}]",
        }
        if word.lower() in answers:
            return Command((answers[word.lower()] + "\r\n").encode("utf-8"), b"", 0)

        message = (
            f"'{word}' is not recognized as an internal or external command,\r\n"
            "operable program or batch file.\r\n"
        )
        return Command(b"", message.encode("utf-8"), 9009)


class WinRMServer(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, machine: FakeWindows, user: str, password: str) -> None:
        super().__init__(("127.0.0.1", 0), WinRMHandler)
        self.machine = machine
        self.user = user
        self.password = password
        self.shells: dict[str, Shell] = {}
        self.actions: list[str] = []
        self.cert_hash: bytes | None = None
        self.lock = threading.Lock()


class WinRMHandler(http.server.BaseHTTPRequestHandler):
    # Keep-alive matters: NTLM authenticates the connection, not each request.
    protocol_version = "HTTP/1.1"
    server: WinRMServer

    def setup(self) -> None:
        super().setup()
        self.authenticated = False
        self.ntlm: Any = None

    def log_message(self, format: str, *args: Any) -> None:
        logger.debug("fake WinRM: " + format, *args)

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length", "0"))
        body = self.rfile.read(length) if length else b""

        if self.path != "/wsman":
            self._send(404, b"")
            return
        if not self.authenticated and not self._authenticate():
            return
        if not body:
            self._send(400, b"")
            return

        status, reply = self._soap(body)
        self._send(status, reply.encode("utf-8"), "application/soap+xml;charset=UTF-8")

    def _send(self, status: int, body: bytes, kind: str = "", auth: str = "") -> None:
        self.send_response(status)
        if auth:
            self.send_header("WWW-Authenticate", auth)
        if kind:
            self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _authenticate(self) -> bool:
        """Run one step of NTLM or check basic; answer 401 and return False until done."""
        header = self.headers.get("Authorization", "")
        scheme, _, token = header.partition(" ")

        if scheme.lower() == "basic":
            expected = f"{self.server.user}:{self.server.password}".encode()
            self.authenticated = base64.b64decode(token) == expected
        elif scheme.lower() in ("negotiate", "ntlm") and token:
            self.authenticated = self._ntlm_step(scheme, base64.b64decode(token))
            if self.ntlm is not None and not self.authenticated:
                return False

        if not self.authenticated:
            self._send(401, b"", auth="Negotiate")
        return self.authenticated

    def _ntlm_step(self, scheme: str, token: bytes) -> bool:
        import spnego
        import spnego.channel_bindings

        if self.ntlm is None:
            bindings = None
            if self.server.cert_hash is not None:
                bindings = spnego.channel_bindings.GssChannelBindings(
                    application_data=b"tls-server-end-point:" + self.server.cert_hash
                )
            self.ntlm = spnego.server(protocol="ntlm", channel_bindings=bindings)

        try:
            reply = self.ntlm.step(token)
        except Exception as error:  # pyspnego raises several kinds; all are a denial
            logger.debug("fake WinRM: NTLM refused: %s", error)
            self.ntlm = None
            return False

        if self.ntlm.complete:
            return True

        challenge = base64.b64encode(reply or b"").decode("ascii")
        self._send(401, b"", auth=f"{scheme} {challenge}")
        return False

    def _soap(self, body: bytes) -> tuple[int, str]:
        root = ET.fromstring(body)
        action = root.findtext("s:Header/a:Action", "", NS)
        message_id = root.findtext("s:Header/a:MessageID", "", NS)
        shell_id = root.findtext(
            "s:Header/w:SelectorSet/w:Selector[@Name='ShellId']", "", NS
        )
        with self.server.lock:
            self.server.actions.append(action.rsplit("/", 1)[-1])

        if action == f"{TRANSFER}/Create":
            shell_id = str(uuid.uuid4()).upper()
            with self.server.lock:
                self.server.shells[shell_id] = Shell()
            return 200, _envelope(
                f"{TRANSFER}/CreateResponse", message_id, _created(shell_id)
            )

        shell = self.server.shells.get(shell_id)
        if shell is None:
            return 500, _fault(
                message_id,
                "The request for the Windows Remote Shell with ShellId was not found.",
            )

        if action == f"{SHELL}/Command":
            line = root.findtext("s:Body/rsp:CommandLine/rsp:Command", "", NS)
            arguments = root.findtext("s:Body/rsp:CommandLine/rsp:Arguments", "", NS)
            command_id = str(uuid.uuid4()).upper()
            shell.commands[command_id] = self.server.machine.run(
                f"{line} {arguments}".strip() if arguments else line
            )
            reply = f"<rsp:CommandResponse><rsp:CommandId>{command_id}</rsp:CommandId></rsp:CommandResponse>"
            return 200, _envelope(f"{SHELL}/CommandResponse", message_id, reply)

        if action == f"{SHELL}/Receive":
            stream = root.find("s:Body/rsp:Receive/rsp:DesiredStream", NS)
            command_id = "" if stream is None else stream.get("CommandId", "")
            command = shell.commands.get(command_id)
            if command is None:
                return 500, _fault(message_id, "The command was not found.")
            return 200, _envelope(
                f"{SHELL}/ReceiveResponse", message_id, _receive(command_id, command)
            )

        if action == f"{SHELL}/Signal":
            signal = root.find("s:Body/rsp:Signal", NS)
            if signal is not None:
                shell.commands.pop(signal.get("CommandId", ""), None)
            return 200, _envelope(
                f"{SHELL}/SignalResponse", message_id, "<rsp:SignalResponse/>"
            )

        if action == f"{TRANSFER}/Delete":
            with self.server.lock:
                self.server.shells.pop(shell_id, None)
            return 200, _envelope(f"{TRANSFER}/DeleteResponse", message_id, "")

        return 500, _fault(message_id, f"The action {action} is not supported.")


def _envelope(action: str, relates_to: str, body: str) -> str:
    return (
        f'<s:Envelope xmlns:s="{NS["s"]}" xmlns:a="{NS["a"]}" xmlns:w="{NS["w"]}"'
        f' xmlns:rsp="{NS["rsp"]}" xmlns:x="{TRANSFER}">'
        f"<s:Header><a:Action>{action}</a:Action>"
        f"<a:MessageID>uuid:{uuid.uuid4()}</a:MessageID>"
        "<a:To>http://schemas.xmlsoap.org/ws/2004/08/addressing/role/anonymous</a:To>"
        f"<a:RelatesTo>{escape(relates_to)}</a:RelatesTo></s:Header>"
        f"<s:Body>{body}</s:Body></s:Envelope>"
    )


def _created(shell_id: str) -> str:
    return (
        "<x:ResourceCreated><a:Address>http://127.0.0.1/wsman</a:Address>"
        "<a:ReferenceParameters>"
        "<w:ResourceURI>http://schemas.microsoft.com/wbem/wsman/1/windows/shell/cmd</w:ResourceURI>"
        f'<w:SelectorSet><w:Selector Name="ShellId">{shell_id}</w:Selector></w:SelectorSet>'
        "</a:ReferenceParameters></x:ResourceCreated>"
        f"<rsp:Shell><rsp:ShellId>{shell_id}</rsp:ShellId>"
        "<rsp:InputStreams>stdin</rsp:InputStreams>"
        "<rsp:OutputStreams>stdout stderr</rsp:OutputStreams></rsp:Shell>"
    )


def _receive(command_id: str, command: Command) -> str:
    """Hand out the next piece of output; say Done with the exit code at the end."""
    start = command.sent
    stdout = command.stdout[start : start + CHUNK]
    command.sent += len(stdout)
    done = command.sent >= len(command.stdout)

    streams = []
    if stdout:
        data = base64.b64encode(stdout).decode("ascii")
        streams.append(
            f'<rsp:Stream Name="stdout" CommandId="{command_id}">{data}</rsp:Stream>'
        )
    if done:
        if command.stderr:
            data = base64.b64encode(command.stderr).decode("ascii")
            streams.append(
                f'<rsp:Stream Name="stderr" CommandId="{command_id}">{data}</rsp:Stream>'
            )
        streams.append(
            f'<rsp:Stream Name="stdout" CommandId="{command_id}" End="true"/>'
        )
        streams.append(
            f'<rsp:Stream Name="stderr" CommandId="{command_id}" End="true"/>'
        )
        state = (
            f'<rsp:CommandState CommandId="{command_id}" State="{SHELL}/CommandState/Done">'
            f"<rsp:ExitCode>{command.exit_code}</rsp:ExitCode></rsp:CommandState>"
        )
    else:
        state = f'<rsp:CommandState CommandId="{command_id}" State="{SHELL}/CommandState/Running"/>'
    return f"<rsp:ReceiveResponse>{''.join(streams)}{state}</rsp:ReceiveResponse>"


def _fault(relates_to: str, reason: str) -> str:
    body = (
        "<s:Fault><s:Code><s:Value>s:Receiver</s:Value></s:Code>"
        f'<s:Reason><s:Text xml:lang="en-US">{escape(reason)}</s:Text></s:Reason>'
        "</s:Fault>"
    )
    return _envelope(
        "http://schemas.dmtf.org/wbem/wsman/1/wsman/fault", relates_to, body
    )


def self_signed_certificate(directory: Path) -> tuple[Path, Path, bytes]:
    """Write a certificate and key for 127.0.0.1; return their paths and its SHA-256."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.timezone.utc)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
        .sign(key, hashes.SHA256())
    )

    cert_path = directory / "winrm.crt"
    key_path = directory / "winrm.key"
    der = certificate.public_bytes(serialization.Encoding.DER)
    cert_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    # NTLM channel binding: the hash of the DER certificate (tls-server-end-point).
    return cert_path, key_path, hashlib.sha256(der).digest()


class FakeWinRMEndpoint:
    """Serve ``machine`` on loopback until :meth:`stop`; usable as a context manager."""

    def __init__(
        self,
        machine: dict[str, Any],
        *,
        user: str = "Administrator",
        password: str = "Launch;Key%Pass@1",
        tls: bool = True,
    ) -> None:
        self.user = user
        self.password = password
        self.tls = tls
        self.windows = FakeWindows(machine)
        self.server = WinRMServer(self.windows, user, password)
        self._directory = tempfile.TemporaryDirectory(prefix="amipolicy-winrm-")
        self._thread: threading.Thread | None = None
        self._saved_user_file: str | None = None

    @property
    def port(self) -> int:
        return int(self.server.server_address[1])

    @property
    def address(self) -> str:
        """``host:port`` with the options the address needs (plain HTTP)."""
        suffix = "" if self.tls else "?no_ssl=true"
        return f"127.0.0.1:{self.port}{suffix}"

    @property
    def url(self) -> str:
        scheme = "https" if self.tls else "http"
        return f"{scheme}://127.0.0.1:{self.port}/wsman"

    @property
    def actions(self) -> list[str]:
        return list(self.server.actions)

    @property
    def open_shells(self) -> int:
        return len(self.server.shells)

    def start(self) -> FakeWinRMEndpoint:
        directory = Path(self._directory.name)

        # pyspnego's NTLM acceptor reads the accounts from this file only.
        user_file = directory / "ntlm-users"
        user_file.write_text(f":{self.user}:{self.password}\n", encoding="utf-8")
        self._saved_user_file = os.environ.get("NTLM_USER_FILE")
        os.environ["NTLM_USER_FILE"] = str(user_file)

        if self.tls:
            cert, key, self.server.cert_hash = self_signed_certificate(directory)
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            context.load_cert_chain(cert, key)
            self.server.socket = context.wrap_socket(
                self.server.socket, server_side=True
            )

        self._thread = threading.Thread(
            target=self.server.serve_forever, name="fake-winrm", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

        if self._saved_user_file is None:
            os.environ.pop("NTLM_USER_FILE", None)
        else:
            os.environ["NTLM_USER_FILE"] = self._saved_user_file
        self._directory.cleanup()

    def __enter__(self) -> FakeWinRMEndpoint:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()
