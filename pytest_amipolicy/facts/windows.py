"""Gathering the facts of a Windows machine in one WinRM round trip.

The whole of ``windows.ps1`` runs as one command and prints one JSON document,
kept as the ``windows`` section. WinRM runs commands through cmd.exe, whose
command line stops at 8191 characters, and ``-EncodedCommand`` wants base64 of
UTF-16, which makes a script about 2.7 times longer. So the script travels
compressed in an environment variable set on the same command line (base64 has
no character cmd.exe treats specially), and a short encoded loader inflates and
runs it; no PowerShell quoting is involved.

The JSON document has these keys, each missing when it could not be read (the
reason is then under ``errors``):

``os``
    ``caption``, ``version``, ``build``, ``architecture`` (OSArchitecture, such
    as "64-bit", translated) of Win32_OperatingSystem, and
    ``processor_architecture`` (``AMD64``, ``ARM64``, ``x86``; not translated).
``local_users``
    list of ``name``, ``sid``, ``enabled``.
``groups``
    SID to ``{"name", "members": [{"name", "sid"}]}`` or ``{"error": ...}``.
``services``
    service name to status, for the services that exist.
``paths``
    the known launch agent files that exist.
``launch``
    ``v2`` (``admin_task``, ``password_type``), ``v1`` (``admin_password_type``,
    ``handle_user_data``), ``ec2config`` (plugin name to state), when present.
``rdp``
    ``deny_connections`` (``fDenyTSConnections`` under Terminal Server),
    ``policy_deny_connections`` (the Group Policy value, null when not set),
    ``service_start_mode`` (TermService's: Auto, Manual, Disabled or absent),
    ``firewall`` (the Remote Desktop rule group: ``name``, ``enabled``,
    ``direction``, ``profile``); a part that could not be read is left out,
    with its reason under ``errors`` as ``rdp_policy``, ``rdp_service`` or
    ``rdp_firewall``.
``winlogon``
    ``auto_admin_logon`` and ``default_password``: absent, empty or set.
``unattend_passwords``
    unattend files holding a password (paths only).
``saved_credentials``
    credential folder (Credentials and Vault under every profile, the system
    and service profiles included) to the number of saved credential files in
    it; folders without any are left out, an unreadable one is under
    ``errors`` as ``credentials <folder>``.
"""

from __future__ import annotations

import base64
import importlib.resources
import json
import logging
import re
import zlib
from typing import Any, Callable

from pytest_amipolicy.facts import Facts, MissingFact, Section

logger = logging.getLogger(__name__)

SECTION = "windows"

# Where each fact is read on the machine, named in the evidence as a Linux
# check names its file and line.
SOURCES = {
    "os": "WMI Win32_OperatingSystem",
    "local_users": "WMI Win32_UserAccount (LocalAccount=True)",
    "groups": "ADSI WinNT://<computer>/<group>, found by SID",
    "services": "Get-Service",
    "rdp": "HKLM\\System\\CurrentControlSet\\Control\\Terminal Server "
    "(fDenyTSConnections)",
    "rdp_policy": "HKLM\\SOFTWARE\\Policies\\Microsoft\\Windows NT\\Terminal Services "
    "(fDenyTSConnections)",
    "rdp_service": "WMI Win32_Service TermService (StartMode)",
    "rdp_firewall": "Get-NetFirewallRule -Group @FirewallAPI.dll,-28752",
    "winlogon": "HKLM\\SOFTWARE\\Microsoft\\Windows NT\\CurrentVersion\\Winlogon "
    "(AutoAdminLogon, DefaultPassword)",
    "unattend_passwords": "%WINDIR%\\Panther\\Unattend.xml, "
    "%WINDIR%\\Panther\\Unattend\\Unattend.xml, "
    "%WINDIR%\\System32\\Sysprep\\unattend.xml (and its Panther folder), "
    "%SystemDrive%\\unattend.xml, %SystemDrive%\\autounattend.xml and the "
    "launch agents' sysprep files",
    "saved_credentials": "C:\\Users\\*\\AppData\\{Local,Roaming}\\Microsoft\\Credentials, "
    "C:\\Users\\*\\AppData\\Local\\Microsoft\\Vault, and the system and service "
    "profiles' own",
}

SCRIPT = (
    importlib.resources.files("pytest_amipolicy.facts")
    .joinpath("windows.ps1")
    .read_text(encoding="utf-8")
)

# cmd.exe refuses longer command lines; WinRM hands every command to cmd.exe.
CMD_LINE_LIMIT = 8191

BLOB_VARIABLE = "AMIPOLICY_FACTS"

POWERSHELL = "powershell -NoProfile -NonInteractive -EncodedCommand "

# Inflates the raw-deflate, base64 script held in the environment variable and
# runs it. Kept to what Windows PowerShell 3.0 understands (no ::new()).
LOADER = (
    f"$s=New-Object IO.MemoryStream(,[Convert]::FromBase64String($env:{BLOB_VARIABLE}));"
    "$d=New-Object IO.Compression.DeflateStream($s,"
    "[IO.Compression.CompressionMode]::Decompress);"
    "iex (New-Object IO.StreamReader($d,[Text.Encoding]::UTF8)).ReadToEnd()"
)

# cmd.exe's "set NAME=VALUE&& next": the value ends right before the "&&".
_SET = re.compile(r"^set (\w+)=([A-Za-z0-9+/=]*)&& (.*)$", re.DOTALL)

Run = Callable[[str], "tuple[int, str, str]"]


def encode_script(script: str) -> str:
    """Return the cmd.exe command line that runs ``script`` in PowerShell."""
    packer = zlib.compressobj(9, zlib.DEFLATED, -15)
    packed = packer.compress(script.encode("utf-8")) + packer.flush()
    blob = base64.b64encode(packed).decode("ascii")
    loader = base64.b64encode(LOADER.encode("utf-16-le")).decode("ascii")
    return f"set {BLOB_VARIABLE}={blob}&& {POWERSHELL}{loader}"


def decode_command(command: str) -> str | None:
    """Return the script a command from :func:`encode_script` carries, else None.

    The inverse of :func:`encode_script`, for tests and the fake endpoint.
    """
    match = _SET.match(command)
    if match is None or match.group(1) != BLOB_VARIABLE:
        return None

    name, blob, rest = match.groups()
    if not rest.startswith(POWERSHELL):
        return None

    try:
        loader = base64.b64decode(rest[len(POWERSHELL) :].strip()).decode("utf-16-le")
        if loader != LOADER:
            return None
        return zlib.decompress(base64.b64decode(blob), -15).decode("utf-8")
    except (ValueError, zlib.error, UnicodeDecodeError):
        return None


def describe(command: str) -> str:
    """A readable stand-in for the encoded command, for reports and logs."""
    return (
        f"set {BLOB_VARIABLE}=<facts/windows.ps1, {len(SCRIPT)} characters, "
        f"compressed>&& {POWERSHELL}<loader> ({len(command)} characters in all)"
    )


def gather(run: Run) -> dict[str, Section]:
    """Run the fact script through ``run`` and return the ``windows`` section.

    ``run`` takes a cmd.exe command line and returns exit status, stdout and
    stderr. Transport errors from ``run`` propagate to the caller.
    """
    command = encode_script(SCRIPT)
    if len(command) > CMD_LINE_LIMIT:
        # A broken invariant of this package, not something a user can fix.
        raise RuntimeError(
            f"the Windows fact script needs {len(command)} characters on the "
            f"command line, more than cmd.exe's {CMD_LINE_LIMIT}"
        )

    logger.debug("running the Windows fact script (%d characters)", len(command))
    status, stdout, stderr = run(command)
    logger.debug("Windows fact script exited %d, %d bytes", status, len(stdout))

    output = stdout.strip()
    if status != 0 or not output:
        output = "\n".join(part for part in (stdout.strip(), stderr.strip()) if part)
        status = status or 1

    return {
        SECTION: Section(
            name=SECTION, command=describe(command), status=status, output=output
        )
    }


def parse(output: str) -> dict[str, Any]:
    """Return the fact document in ``output``; raise MissingFact if it is not one."""
    try:
        document = json.loads(output)
    except ValueError as error:
        raise MissingFact(
            SECTION, f"the fact script printed no JSON ({error})"
        ) from error

    if not isinstance(document, dict):
        raise MissingFact(SECTION, "the fact script printed JSON that is not an object")

    return document


def machine(facts: Facts) -> dict[str, Any]:
    """Return the parsed ``windows`` section of ``facts``.

    Raises MissingFact when it was not gathered, the script failed, or its
    output is not the expected JSON object.
    """
    section = facts.section(SECTION)
    if not section.ok:
        excerpt = section.output[:300] or "no output"
        raise MissingFact(
            SECTION, f"the fact script exited {section.status}: {excerpt}"
        )

    return parse(section.output)
