"""Why an SSH session could not start, said in one line the user can act on."""

from __future__ import annotations

import errno
import socket
from types import SimpleNamespace

import paramiko
import pytest

from pytest_amipolicy.errors import TargetError
from pytest_amipolicy.targets.ssh import (
    connection_failure,
    no_command_message,
    open_ssh,
)


def failure(error: BaseException) -> str:
    return connection_failure(error, "203.0.113.7", 22, 15, "admin@203.0.113.7:22")


def gathered(number: int) -> paramiko.ssh_exception.NoValidConnectionsError:
    """What paramiko raises after trying every address of a host."""
    return paramiko.ssh_exception.NoValidConnectionsError(
        {("203.0.113.7", 22): OSError(number, "fails")}
    )


@pytest.mark.parametrize(
    ("error", "said"),
    [
        (gathered(errno.ECONNREFUSED), "connection to 203.0.113.7:22 refused"),
        (ConnectionRefusedError(errno.ECONNREFUSED, "refused"), "refused"),
        (gathered(errno.EHOSTUNREACH), "no route to 203.0.113.7:22"),
        (OSError(errno.ENETUNREACH, "Network is unreachable"), "no route to"),
        (TimeoutError("timed out"), "no answer from 203.0.113.7:22 within 15s"),
        (OSError(errno.ETIMEDOUT, "Connection timed out"), "no answer from"),
        (socket.gaierror(socket.EAI_NONAME, "Name or service not known"), "resolve"),
        (
            paramiko.SSHException("Error reading SSH protocol banner"),
            "203.0.113.7:22 took the connection but never answered as an SSH server",
        ),
    ],
)
def test_each_kind_of_failure_is_named_for_what_it_is(
    error: BaseException, said: str
) -> None:
    assert said in failure(error)


def test_an_unreachable_network_is_not_called_a_refusal() -> None:
    assert "refused" not in failure(gathered(errno.EHOSTUNREACH))
    assert "refused" not in failure(OSError(errno.ENETUNREACH, "unreachable"))


def test_a_closed_port_on_this_machine_is_a_refusal() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]

    with pytest.raises(TargetError, match=f"connection to 127.0.0.1:{port} refused"):
        open_ssh(
            "ssh://admin@127.0.0.1",
            address="127.0.0.1",
            port=port,
            user="admin",
            key_file=None,
        )


def test_a_login_that_runs_no_command_quotes_what_the_machine_said() -> None:
    refused = SimpleNamespace(
        exit_status=142,
        stdout='Please login as the user "admin" rather than the user "root".\n',
        stderr="",
    )

    said = no_command_message("root@192.0.2.7:22", "root", refused)

    assert said == (
        "root@192.0.2.7:22 accepted the login but ran no command (exit status 142; "
        'it said: Please login as the user "admin" rather than the user "root".); '
        "log in as the image's default user instead (give the user in the spec, "
        "ssh://USER@host)."
    )


def test_a_silent_forced_command_is_named_as_a_likely_cause() -> None:
    silent = SimpleNamespace(exit_status=1, stdout="", stderr="")

    said = no_command_message("deploy@192.0.2.7:22", "deploy", silent)

    assert "(exit status 1; it said: nothing)" in said
    assert "command= in authorized_keys, ForceCommand" in said
