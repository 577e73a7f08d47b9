"""Reaching a Windows machine over WinRM through pytest-testinfra.

testinfra's ``winrm`` backend runs each command in a new cmd.exe shell through
pywinrm, always with NTLM authentication, over HTTPS unless ``no_ssl`` is set.
This module turns what the user gave (a bare host, ``host:port``, a
``winrm://`` spec or a ``https://host:5986/wsman`` URL) into the host spec that
backend wants, with the credentials quoted into it, and runs commands on it.
"""

from __future__ import annotations

import logging
import re
import urllib.parse
from typing import Any, Callable

from pytest_amipolicy.errors import TargetError
from pytest_amipolicy.targets import redacted_spec

logger = logging.getLogger(__name__)

HTTPS_PORT = 5986
HTTP_PORT = 5985

Run = Callable[[str], "tuple[int, str, str]"]

# "[Errno 111] Connection refused" inside requests' long nested messages.
_ERRNO = re.compile(r"\[Errno -?\d+\] ([^\"')]+)")


def winrm_hostspec(
    spec_or_url: str,
    *,
    user: str | None = None,
    password: str | None = None,
    verify_ssl: bool = True,
) -> str:
    """Return the testinfra host spec for ``spec_or_url`` with the credentials.

    Credentials written in ``spec_or_url`` win over ``user`` and ``password``;
    the user defaults to Administrator. The result holds the password: never
    log it, use :func:`redacted` instead.
    """
    text = spec_or_url.strip()
    if "://" not in text:
        text = "winrm://" + text

    url = urllib.parse.urlsplit(text)
    if url.scheme not in ("winrm", "https", "http") or not url.hostname:
        raise TargetError(
            redacted_spec(spec_or_url),
            "not a WinRM address; give winrm://HOST[:PORT], HOST[:PORT] or "
            "https://HOST:5986/wsman",
        )

    query = urllib.parse.parse_qs(url.query)
    plain = url.scheme == "http" or _is_true(query, "no_ssl")
    port = url.port or (HTTP_PORT if plain else HTTPS_PORT)

    # A user in the spec wins over the default login user.
    if url.username:
        user = urllib.parse.unquote(url.username)
    if url.password:
        password = urllib.parse.unquote(url.password)
    if password is None:
        raise TargetError(
            redacted_spec(spec_or_url),
            "no WinRM password: write it in the spec (winrm://USER:PASSWORD@HOST) "
            "or let the EC2 target fetch the generated one",
        )
    user = user or "Administrator"

    # testinfra splits "user:password@host" at the first "@" and ":" and then
    # unquotes: quoting everything keeps generated passwords (full of
    # punctuation) intact.
    credentials = (
        urllib.parse.quote(user, safe="") + ":" + urllib.parse.quote(password, safe="")
    )
    host = f"[{url.hostname}]" if ":" in url.hostname else url.hostname

    options = {
        key: values[0]
        for key, values in query.items()
        if key in ("read_timeout_sec", "operation_timeout_sec")
    }
    if plain:
        options["no_ssl"] = "true"
    if not verify_ssl or _is_true(query, "no_verify_ssl"):
        options["no_verify_ssl"] = "true"

    spec = f"winrm://{credentials}@{host}:{port}"
    if options:
        spec += "?" + urllib.parse.urlencode(sorted(options.items()))
    return spec


def _is_true(query: dict[str, list[str]], name: str) -> bool:
    return query.get(name, ["false"])[0].lower() == "true"


def redacted(hostspec: str) -> str:
    """Return ``hostspec`` with its password replaced, for logs and reports."""
    return redacted_spec(hostspec)


def open_winrm_host(
    spec_or_url: str,
    *,
    user: str | None = None,
    password: str | None = None,
    verify_ssl: bool = True,
) -> Any:
    """Return a testinfra host that runs commands on the machine over WinRM.

    No connection is made yet: pywinrm connects on the first command.
    """
    import testinfra

    try:
        import winrm  # noqa: F401
    except ImportError:
        raise TargetError(
            redacted_spec(spec_or_url),
            "WinRM targets need pywinrm: pip install 'pytest-amipolicy[windows]'",
        ) from None

    spec = winrm_hostspec(
        spec_or_url, user=user, password=password, verify_ssl=verify_ssl
    )
    logger.debug("opening WinRM host %s", redacted(spec))
    return testinfra.get_host(spec)


def run_on(host: Any) -> Run:
    """Return a function running a cmd.exe command line on ``host``.

    Output is decoded here as UTF-8 with replacement, so that testinfra never
    runs its encoding probe (a ``python -c`` command) on a Windows machine.
    """

    def run(command: str) -> tuple[int, str, str]:
        result = host.run(command)
        stdout = result.stdout_bytes.decode("utf-8", errors="replace")
        stderr = result.stderr_bytes.decode("utf-8", errors="replace")
        return result.rc, stdout, stderr

    return run


def login_failure(error: BaseException, *, where: str, user: str) -> tuple[str, bool]:
    """Return a one-line reason, with the fix, for a failed first WinRM command,
    and whether trying again later may help.

    pywinrm and requests raise many kinds, with nested messages of several
    lines; none of them holds the password, and neither does the reason.
    """
    import requests.exceptions
    import winrm.exceptions

    if isinstance(error, winrm.exceptions.InvalidCredentialsError):
        return (
            f"WinRM at {where} rejected the password of {user}: check the user "
            "and password (in a spec, write ; @ : / # % ? as %XX)",
            False,
        )
    if isinstance(error, requests.exceptions.SSLError):
        if "CERTIFICATE_VERIFY_FAILED" in str(error):
            return (
                f"the TLS certificate of {where} is not trusted: WinRM listeners "
                "usually have a self-signed one; add ?no_verify_ssl=true to accept it",
                False,
            )
        return (
            f"no TLS handshake with {where}: is it a plain HTTP listener (add "
            "?no_ssl=true, usually port 5985)?",
            False,
        )
    if isinstance(error, requests.exceptions.Timeout):
        return (
            f"no answer from WinRM at {where}: check the address, the firewall or "
            "security group, and that a WinRM HTTPS listener runs",
            True,
        )
    if isinstance(error, requests.exceptions.ConnectionError):
        found = _ERRNO.search(str(error))
        why = found.group(1).strip() if found else type(error).__name__
        return (
            f"cannot connect to WinRM at {where} ({why}): check the address and "
            f"port ({HTTPS_PORT} for HTTPS), the firewall or security group, and "
            "that a WinRM HTTPS listener runs",
            True,
        )

    text = " ".join(str(error).split()) or type(error).__name__
    transient = isinstance(
        error,
        (
            winrm.exceptions.WinRMTransportError,
            winrm.exceptions.WinRMOperationTimeoutError,
        ),
    )
    return f"WinRM at {where} failed ({type(error).__name__}: {text[:300]})", transient
