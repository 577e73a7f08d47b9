"""Logging in to a launched Windows AMI: the generated password, then WinRM.

A buyer's Windows instance has no key to log in with: its launch agent makes
a random administrator password at first boot, and EC2 hands it out encrypted
for the launch key pair. The checker waits for it, decrypts it with the launch
key that never left this machine, and logs in as Administrator over WinRM on
HTTPS (5986), through testinfra's winrm backend.

The password is used for the login only; it is never logged, reported or put
in an error, and the instance it opens is terminated at the end of the run.
"""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING, Any

from pytest_amipolicy.aws import passwords
from pytest_amipolicy.errors import CloudError, TargetError
from pytest_amipolicy.targets.winrm import login_failure, open_winrm_host

if TYPE_CHECKING:
    from pytest_amipolicy.aws.keys import LaunchKey
    from pytest_amipolicy.settings import Settings
    from pytest_amipolicy.targets import Progress

logger = logging.getLogger(__name__)

# The account whose password EC2 publishes; Windows AMIs have no other login.
ADMIN_USER = "Administrator"


def wait_for_password(
    label: str,
    *,
    ec2: Any,
    region: str,
    instance_id: str,
    key: LaunchKey,
    settings: Settings,
    progress: Progress,
    delay: float,
) -> passwords.Password:
    """Wait for the administrator password EC2 publishes and decrypt it.

    Asked before the WinRM port is waited for: the launch agent publishes the
    password minutes into the first boot, and WinRM answers only after that.
    Raises :class:`TargetError` naming ``label`` when no password is published
    within the boot timeout or when it cannot be decrypted.
    """
    progress(f"{label}: waiting for the administrator password of {instance_id}")
    try:
        data = passwords.wait_for_password_data(
            ec2, instance_id, settings.boot_timeout, delay, region
        )
        return passwords.decrypt_password(data, key.path, instance_id)
    except CloudError as error:
        raise TargetError(label, str(error)) from error


def log_in(
    label: str,
    *,
    address: tuple[str, int],
    password: passwords.Password,
    settings: Settings,
    progress: Progress,
    delay: float,
) -> Any:
    """Return a testinfra host logged in as Administrator on the instance.

    Raises :class:`TargetError` naming ``label`` when WinRM does not take the
    password within the login (``--ami-ssh-timeout``) timeout.
    """
    host_name, port = address
    where = f"{host_name}:{port}"
    progress(f"{label}: logging in to {where} over WinRM as {ADMIN_USER}")

    # The listener's certificate is self-signed, made on this instance at first
    # boot: there is nothing to check it against. The security group admits
    # only this run's address range, which is what keeps others off the path.
    host = open_winrm_host(
        f"winrm://{_bracket(host_name)}:{port}",
        user=ADMIN_USER,
        password=password.reveal(),
        verify_ssl=False,
    )
    _check_login(label, host, where, settings.ssh_timeout, delay)
    return host


def _check_login(
    label: str, host: Any, where: str, timeout: float, interval: float
) -> None:
    """Run a first command; retry what may pass later, until ``timeout``."""
    # The listener can answer before WinRM is ready to run shells; a rejected
    # password, though, will not change, and is reported at once.
    deadline = time.monotonic() + timeout
    while True:
        try:
            result = host.run("echo amipolicy")
        except Exception as error:  # pywinrm and requests raise many kinds
            reason, transient = login_failure(error, where=where, user=ADMIN_USER)
            if not transient or time.monotonic() >= deadline:
                raise TargetError(label, reason) from None
            logger.debug("%s: WinRM not ready yet: %s", label, reason)
            time.sleep(interval)
            continue
        break

    if result.rc != 0:
        raise TargetError(
            label,
            f"WinRM at {where} accepted {ADMIN_USER} but cannot run commands "
            f"(exit status {result.rc})",
        )
    logger.info("%s: logged in as %s at %s over WinRM", label, ADMIN_USER, where)


def reach_line(address: tuple[str, int], region: str, created: Any) -> str:
    """Say how to reach a kept instance; the password stays out of the terminal."""
    host, port = address
    return (
        f"reach it: WinRM over HTTPS at {host}:{port} as {ADMIN_USER}, password "
        f"from `aws ec2 get-password-data --region {region} --instance-id "
        f"{created.instance_id} --priv-launch-key {created.key_file}`"
    )


def _bracket(address: str) -> str:
    return f"[{address}]" if ":" in address else address
