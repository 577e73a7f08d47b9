"""A boto3 session from the standard credential chain, and error translation.

The plugin never asks for keys: credentials come from wherever the AWS CLI would
find them (environment, profile, SSO, instance role). Every botocore error that
reaches the user is turned into a :class:`CloudError` naming what to do.
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Iterator
from typing import Any

import boto3.session
import botocore.config
import botocore.exceptions

from pytest_amipolicy.errors import CloudError

logger = logging.getLogger(__name__)

# Error codes AWS uses when the caller's policy does not allow a call.
DENIED_CODES = frozenset(
    {"AccessDenied", "AccessDeniedException", "UnauthorizedOperation"}
)

# Error codes for credentials AWS could not validate: no permission would help.
# EC2 says AuthFailure; the JSON services say UnrecognizedClientException.
INVALID_CREDENTIAL_CODES = frozenset(
    {
        "AuthFailure",
        "ExpiredToken",
        "ExpiredTokenException",
        "RequestExpired",
        "InvalidClientTokenId",
        "UnrecognizedClientException",
        "SignatureDoesNotMatch",
    }
)

# Standard retries absorb EC2's throttling without the user seeing it.
CLIENT_CONFIG = botocore.config.Config(
    retries={"mode": "standard", "max_attempts": 5},
    user_agent_extra="pytest-amipolicy",
)


def make_session(region: str | None = None) -> boto3.session.Session:
    """Return a session for ``region``, else the environment's or profile's region.

    Raises :class:`CloudError` when no region is configured anywhere, because a
    default region silently chosen here would check the wrong AMI.
    """
    try:
        session = boto3.session.Session(region_name=region)
    except botocore.exceptions.BotoCoreError as error:
        raise CloudError(f"cannot start an AWS session: {error}") from error

    if not session.region_name:
        raise CloudError(
            "no AWS region is configured: pass --ami-region=REGION "
            "or set AWS_DEFAULT_REGION (or a region in the AWS profile)"
        )

    logger.debug("AWS session in region %s", session.region_name)
    return session


def ec2_client(session: boto3.session.Session) -> Any:
    """Return an EC2 client of ``session`` with retries suited to long runs."""
    return session.client(
        "ec2", config=with_configured_attempts(session, CLIENT_CONFIG)
    )


def with_configured_attempts(
    session: boto3.session.Session, config: botocore.config.Config
) -> botocore.config.Config:
    """``config``, whose retry count gives way to the user's own ``max_attempts``.

    botocore lets a count given in code win over ``AWS_MAX_ATTEMPTS`` and a
    profile's ``max_attempts``; a user who set one means it, as in the AWS CLI.
    """
    configured = session._session.get_config_variable("max_attempts")
    if configured is None:
        return config

    retries = {"mode": "standard", "total_max_attempts": int(configured)}
    return config.merge(botocore.config.Config(retries=retries))


def iam_action(operation: str, service: str = "ec2") -> str:
    """Return the IAM action an API operation needs (EC2 names them alike)."""
    return f"{service}:{operation}"


def error_code(error: BaseException | None) -> str:
    """Return the AWS error code of ``error``, or an empty string."""
    if isinstance(error, botocore.exceptions.ClientError):
        return str(error.response.get("Error", {}).get("Code", ""))
    return ""


def aws_message(error: BaseException | None) -> str:
    """Return AWS's own message of a ``ClientError`` on one line, or ``""``.

    AWS's messages name the caller's ARN and the action and resource refused,
    and hold no secret; they are what the user needs to fix a policy.
    """
    if not isinstance(error, botocore.exceptions.ClientError):
        return ""
    message = str(error.response.get("Error", {}).get("Message", ""))
    return " ".join(message.split())


def cloud_error(error: BaseException, operation: str, region: str) -> CloudError:
    """Return a one-line :class:`CloudError` for a failed call of ``operation``."""
    code = error_code(error)
    message = aws_message(error)
    said = f": {message}" if message else ""

    if code in DENIED_CODES:
        return CloudError(
            f"{operation} was refused in {region} ({code}{said}): the credentials "
            f"lack the IAM permission {iam_action(operation)}; grant it or use "
            "another profile (AWS_PROFILE)"
        )

    if isinstance(error, botocore.exceptions.NoCredentialsError):
        return CloudError(
            "no AWS credentials found: configure them as for the AWS CLI "
            "(aws configure, AWS_PROFILE, SSO or an instance role)"
        )

    if code in INVALID_CREDENTIAL_CODES:
        return CloudError(
            f"{operation} in {region}: AWS did not accept the credentials "
            f"({code}{said}); check them with `aws sts get-caller-identity`, "
            "refresh them (aws sso login, a new session token) and rerun"
        )

    if isinstance(error, botocore.exceptions.EndpointConnectionError):
        return CloudError(
            f"cannot reach the EC2 endpoint of {region}: {error}{_endpoint_hint()}"
        )

    return CloudError(f"{operation} failed in {region}: {error}")


# Variables that send boto3 somewhere other than AWS: a leftover from a test
# setup is the likeliest reason an endpoint does not answer.
ENDPOINT_VARIABLES = ("AWS_ENDPOINT_URL_EC2", "AWS_ENDPOINT_URL")


def _endpoint_hint() -> str:
    for variable in ENDPOINT_VARIABLES:
        value = os.environ.get(variable)
        if value:
            return f" ({variable} is set to {value}; unset it to reach AWS itself)"
    return "; check the network, a proxy (HTTPS_PROXY) and the region's name"


@contextlib.contextmanager
def translated(operation: str, region: str) -> Iterator[None]:
    """Turn botocore errors raised inside the block into :class:`CloudError`."""
    try:
        yield
    except (
        botocore.exceptions.ClientError,
        botocore.exceptions.BotoCoreError,
    ) as error:
        raise cloud_error(error, operation, region) from error
