"""The administrator password EC2 generates for a Windows instance.

A Windows launch agent (EC2Launch or EC2Config) sets a random password at first
boot and hands it to EC2, which publishes it as "password data": base64 of the
password encrypted with the public key of the instance's key pair, RSA with
PKCS#1 v1.5 padding. The data stays empty until the agent has done so, which
takes several minutes on a real instance. Only the private half of the launch
key, which never leaves this machine, can read it.

The password is a secret of the run. It travels in a :class:`Password`, whose
``repr`` and ``str`` hide it, and no message, log line or error of this module
holds it or the password data.
"""

from __future__ import annotations

import base64
import binascii
import logging
from pathlib import Path
from typing import Any

import botocore.exceptions
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from pytest_amipolicy.aws.instances import waiter_config
from pytest_amipolicy.aws.session import cloud_error, translated
from pytest_amipolicy.errors import CloudError

logger = logging.getLogger(__name__)

OPERATION = "GetPasswordData"


class Password:
    """A password that does not show itself in reprs, tracebacks or f-strings."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        """Return the password itself, for the one place that logs in with it."""
        return self._value

    def __repr__(self) -> str:
        return "Password(***)"

    __str__ = __repr__


def wait_for_password_data(
    ec2: Any, instance_id: str, timeout: float, delay: float, region: str
) -> str:
    """Wait until EC2 publishes the instance's password data and return it.

    Raises :class:`CloudError` when none is published within ``timeout``
    seconds, or when the call itself is refused.
    """
    waiter = ec2.get_waiter("password_data_available")
    try:
        waiter.wait(InstanceId=instance_id, WaiterConfig=waiter_config(timeout, delay))
    except botocore.exceptions.WaiterError as error:
        last = error.last_response or {}
        if "Error" in last:
            # A refusal ends the waiter at once; say which permission is missing.
            refused = botocore.exceptions.ClientError(last, OPERATION)
            raise cloud_error(refused, OPERATION, region) from error
        raise CloudError(
            f"{instance_id} published no administrator password within "
            f"{timeout:.0f}s: the AMI's launch agent must generate one at first "
            "boot (EC2Launch setAdminAccount with a random password, or EC2Config "
            "Ec2SetPassword); if it does, raise --ami-boot-timeout"
        ) from None

    # The waiter keeps its last answer to itself: ask once more for the data.
    with translated(OPERATION, region):
        response = ec2.get_password_data(InstanceId=instance_id)
    data = str(response.get("PasswordData") or "").strip()
    if not data:
        raise CloudError(
            f"{instance_id}: EC2 withdrew the password data it had published; rerun"
        )

    logger.debug(
        "password data of %s published (%d characters)", instance_id, len(data)
    )
    return data


def load_private_key(key_file: Path) -> rsa.RSAPrivateKey:
    """Return the RSA private key in ``key_file`` (OpenSSH or PEM form)."""
    blob = key_file.read_bytes()
    try:
        key: Any = serialization.load_ssh_private_key(blob, None)
    except ValueError:
        key = serialization.load_pem_private_key(blob, None)

    if not isinstance(key, rsa.RSAPrivateKey):
        raise CloudError(
            f"the launch key {key_file} is not RSA: EC2 encrypts Windows passwords "
            "for RSA key pairs only"
        )
    return key


def decrypt_password(password_data: str, key_file: Path, instance_id: str) -> Password:
    """Decrypt EC2's password data with the launch key's private half.

    Raises :class:`CloudError` when the data was not encrypted for this key;
    the message never contains the data.
    """
    try:
        key = load_private_key(key_file)
    except (OSError, ValueError, TypeError) as error:
        raise CloudError(
            f"cannot read the launch key {key_file} to decrypt the password of "
            f"{instance_id} ({type(error).__name__})"
        ) from None

    # Real password data comes wrapped in lines; the decoder drops the breaks.
    try:
        secret = key.decrypt(base64.b64decode(password_data), padding.PKCS1v15())
        password = secret.decode("utf-8")
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise CloudError(
            f"the password data of {instance_id} cannot be decrypted with the "
            "launch key: it was encrypted for another key pair, or it is not "
            "EC2 password data"
        ) from None

    if not password:
        raise CloudError(f"the password data of {instance_id} holds an empty password")
    return Password(password)
