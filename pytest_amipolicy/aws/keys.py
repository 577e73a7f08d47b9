"""The launch key: made locally, its public half imported, its private half in a
0600 file that lives only as long as the run.

The private key never leaves this machine and is never logged; messages show
the key pair name and the public key's SHA256 fingerprint only.
"""

from __future__ import annotations

import base64
import hashlib
import logging
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, rsa

from pytest_amipolicy.aws.session import error_code, translated
from pytest_amipolicy.errors import CloudError

logger = logging.getLogger(__name__)

# Windows needs RSA: EC2 encrypts the generated administrator password with it.
# ImportKeyPair documents RSA keys of 1024, 2048 and 4096 bits only.
RSA_BITS = 4096


@dataclass(frozen=True)
class LaunchKey:
    """A freshly made key: the private half on disk, the public half in OpenSSH form."""

    path: Path
    public_openssh: str
    fingerprint: str


def generate(platform: str, comment: str) -> tuple[bytes, str]:
    """Return (private key file contents, public OpenSSH line) for ``platform``.

    Linux gets ed25519 in OpenSSH form. Windows gets RSA, the only kind EC2
    encrypts the administrator password for, written as a traditional PEM
    ("BEGIN RSA PRIVATE KEY"): that is the form ``aws ec2 get-password-data
    --priv-launch-key`` reads, and ssh and paramiko read it too.
    """
    private_key: ed25519.Ed25519PrivateKey | rsa.RSAPrivateKey
    if platform == "windows":
        private_key = rsa.generate_private_key(public_exponent=65537, key_size=RSA_BITS)
        form = serialization.PrivateFormat.TraditionalOpenSSL
    else:
        private_key = ed25519.Ed25519PrivateKey.generate()
        form = serialization.PrivateFormat.OpenSSH

    private_bytes = private_key.private_bytes(
        encoding=serialization.Encoding.PEM,
        format=form,
        encryption_algorithm=serialization.NoEncryption(),
    )
    public_line = private_key.public_key().public_bytes(
        encoding=serialization.Encoding.OpenSSH,
        format=serialization.PublicFormat.OpenSSH,
    )
    return private_bytes, f"{public_line.decode('ascii')} {comment}"


def fingerprint(public_openssh: str) -> str:
    """Return the ``SHA256:...`` fingerprint of an OpenSSH public key line."""
    blob = base64.b64decode(public_openssh.split()[1])
    digest = base64.b64encode(hashlib.sha256(blob).digest()).decode("ascii")
    return "SHA256:" + digest.rstrip("=")


def write_private_key(private_bytes: bytes, name: str) -> Path:
    """Write the private key to a new file only the current user can read."""
    # mkstemp creates the file 0600 atomically: no moment where others can read it.
    handle, path = tempfile.mkstemp(prefix=f"{name}-", suffix=".pem")
    try:
        os.fchmod(handle, 0o600)
        os.write(handle, private_bytes)
    finally:
        os.close(handle)
    return Path(path)


def remove_private_key(path: Path) -> bool:
    """Delete the key file; return whether it was there."""
    try:
        path.unlink()
    except FileNotFoundError:
        return False
    return True


def make_launch_key(platform: str, name: str) -> LaunchKey:
    """Generate a key for ``platform`` and write its private half to a 0600 file."""
    private_bytes, public_line = generate(platform, comment=name)
    path = write_private_key(private_bytes, name)
    key = LaunchKey(
        path=path, public_openssh=public_line, fingerprint=fingerprint(public_line)
    )
    logger.debug("launch key %s written to %s", key.fingerprint, path)
    return key


def import_key_pair(
    ec2: Any, name: str, public_openssh: str, tags: list[dict[str, str]], region: str
) -> str:
    """Import the public key as EC2 key pair ``name``; return its key pair id."""
    with translated("ImportKeyPair", region):
        response = ec2.import_key_pair(
            KeyName=name,
            PublicKeyMaterial=public_openssh.encode("ascii"),
            TagSpecifications=[{"ResourceType": "key-pair", "Tags": tags}],
        )
    return str(response.get("KeyPairId", name))


def delete_key_pair(ec2: Any, name: str, region: str) -> None:
    """Delete EC2 key pair ``name``; a pair already gone is not an error."""
    try:
        with translated("DeleteKeyPair", region):
            ec2.delete_key_pair(KeyName=name)
    except CloudError as error:
        if error_code(error.__cause__) != "InvalidKeyPair.NotFound":
            raise
