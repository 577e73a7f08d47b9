"""Amazon's own verdicts on an AMI: Inspector, Marketplace and GuardDuty results.

Each feature is opt-in on the command line. :func:`gather` asks the services
for what they know about the image and returns plain, JSON-safe records that
the ``AMAZON-*`` policies judge; it never raises for a refused call, a missing
result or a deadline, because each of those must become an ``error`` verdict of
its own policy and not take the other AMI policies down with it.
"""

from __future__ import annotations

import datetime
import logging
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable

import botocore.config
import botocore.exceptions

from pytest_amipolicy.aws.session import (
    CLIENT_CONFIG,
    DENIED_CODES,
    INVALID_CREDENTIAL_CODES,
    aws_message,
    error_code,
)

if TYPE_CHECKING:
    from pytest_amipolicy.settings import Settings

logger = logging.getLogger(__name__)

# Where each result is recorded in ``facts.settings``; a key is present only
# when its feature was enabled, so a missing key means "not asked for".
FACTS_KEY = "amazon"
INSPECTOR = "inspector"
ASSESSMENT = "assessment"
MALWARE = "malware"

# Which policy reads which result, so a run that deselected a policy does not
# pay for the calls behind it.
POLICY_OF = {
    INSPECTOR: "AMAZON-INSPECTOR",
    ASSESSMENT: "AMAZON-ASSESSMENT",
    MALWARE: "AMAZON-MALWARE",
}

# IAM prefixes differ from the botocore service names for Marketplace.
IAM_PREFIX = {
    "inspector2": "inspector2",
    "guardduty": "guardduty",
    "marketplace-catalog": "aws-marketplace",
}

# Retries are botocore's own; the timeouts bound one HTTP exchange, the poll
# deadline bounds the whole wait for a result.
SERVICE_CONFIG = CLIENT_CONFIG.merge(
    botocore.config.Config(
        retries={"mode": "standard", "max_attempts": 5},
        connect_timeout=10,
        read_timeout=30,
    )
)


class AmazonCheckError(Exception):
    """A service call could not give a result; the message says what to do."""


class DeadlineExceeded(AmazonCheckError):
    """A result did not arrive before the overall deadline."""


def service_client(session: Any, service: str, region: str) -> Any:
    """Return a client of ``service`` with the retry and timeout configuration."""
    return session.client(service, region_name=region, config=SERVICE_CONFIG)


def iam_action(service: str, operation: str) -> str:
    return f"{IAM_PREFIX.get(service, service)}:{operation}"


def service_error(
    error: BaseException, service: str, operation: str, region: str
) -> AmazonCheckError:
    """Return an :class:`AmazonCheckError` whose message names the fix."""
    code = error_code(error)
    action = iam_action(service, operation)
    message = aws_message(error)
    detail = f" ({message})" if message else ""

    if code in DENIED_CODES:
        return AmazonCheckError(
            f"{operation} was refused in {region} ({code}){detail}: the credentials "
            f"lack the IAM permission {action}, or the service is not enabled in "
            "this account and region"
        )

    if isinstance(error, botocore.exceptions.NoCredentialsError):
        return AmazonCheckError(
            "no AWS credentials found: configure them as for the AWS CLI "
            "(aws configure, AWS_PROFILE, SSO or an instance role)"
        )

    if code in INVALID_CREDENTIAL_CODES:
        return AmazonCheckError(
            f"{operation} in {region}: AWS did not accept the credentials "
            f"({code}){detail}; check them with `aws sts get-caller-identity` "
            "and refresh them"
        )

    timeouts = (
        botocore.exceptions.ConnectTimeoutError,
        botocore.exceptions.ReadTimeoutError,
    )
    if isinstance(error, timeouts):
        return AmazonCheckError(
            f"{operation} in {region} timed out after botocore's retries: {error}"
        )

    return AmazonCheckError(f"{operation} ({action}) failed in {region}: {error}")


def call(
    client: Any, service: str, operation: str, region: str, **params: Any
) -> dict[str, Any]:
    """Call ``operation`` (CamelCase) with ``params``, translating botocore errors."""
    method = getattr(client, _snake(operation))
    try:
        response: dict[str, Any] = method(**params)
    except (
        botocore.exceptions.ClientError,
        botocore.exceptions.BotoCoreError,
    ) as error:
        raise service_error(error, service, operation, region) from error
    return response


def pages(
    client: Any,
    service: str,
    operation: str,
    region: str,
    deadline: Deadline | None = None,
    **params: Any,
) -> Iterator[dict[str, Any]]:
    """Yield every page of ``operation`` through botocore's paginator.

    With a ``deadline``, no further page is asked for once it has passed:
    an account with very many resources must not hold the run for ever.
    """
    paginator = client.get_paginator(_snake(operation))
    count = 0
    try:
        for page in paginator.paginate(**params):
            count += 1
            yield page
            if deadline is not None and deadline.expired() and _has_more(page):
                raise DeadlineExceeded(
                    f"{operation} in {region} still had more results after "
                    f"{count} page(s) and {deadline.timeout:g} s; rerun later or "
                    "raise amipolicy_amazon_timeout"
                )
    except (
        botocore.exceptions.ClientError,
        botocore.exceptions.BotoCoreError,
    ) as error:
        raise service_error(error, service, operation, region) from error


def _has_more(page: dict[str, Any]) -> bool:
    # The services read here name their page token nextToken or NextToken.
    return bool(page.get("nextToken") or page.get("NextToken"))


def _snake(operation: str) -> str:
    return "".join(
        f"_{char.lower()}" if char.isupper() and index else char.lower()
        for index, char in enumerate(operation)
    )


@dataclass
class Deadline:
    """The overall time limit of one feature's polling, with a testable clock."""

    timeout: float
    delay: float
    clock: Callable[[], float] = time.monotonic
    sleep: Callable[[float], None] = time.sleep
    started: float = field(init=False)

    def __post_init__(self) -> None:
        self.started = self.clock()

    @property
    def remaining(self) -> float:
        return self.timeout - (self.clock() - self.started)

    def expired(self) -> bool:
        return self.remaining <= 0

    def wait(self, what: str) -> None:
        """Sleep one poll interval, or raise when that would pass the deadline."""
        if self.expired():
            raise DeadlineExceeded(
                f"{what} did not arrive within {self.timeout:g} s; rerun later or "
                "raise amipolicy_amazon_timeout"
            )

        logger.debug("waiting %.1f s for %s", self.delay, what)
        self.sleep(min(self.delay, max(self.remaining, 0.0)))


def jsonable(value: Any) -> Any:
    """Return ``value`` with datetimes as ISO text, so records serialise as JSON."""
    if isinstance(value, (datetime.datetime, datetime.date)):
        return value.isoformat()
    if isinstance(value, dict):
        return {str(key): jsonable(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(item) for item in value]
    return value


def partition(region: str) -> str:
    if region.startswith("cn-"):
        return "aws-cn"
    if region.startswith("us-gov-"):
        return "aws-us-gov"
    return "aws"


@dataclass
class Clients:
    """The service clients of one gathering; tests pass stubbed ones."""

    inspector2: Any = None
    marketplace: Any = None
    guardduty: Any = None


def wanted(settings: Settings) -> list[str]:
    """Return the enabled features whose policy is selected for this run."""
    enabled = {
        INSPECTOR: bool(settings.inspector),
        ASSESSMENT: settings.product is not None,
        MALWARE: bool(settings.guardduty),
    }
    selected = set(settings.policies) if settings.policies else set(POLICY_OF.values())
    return [key for key, on in enabled.items() if on and POLICY_OF[key] in selected]


def gather(
    record: dict[str, Any],
    region: str,
    settings: Settings,
    *,
    session: Any = None,
    clients: Clients | None = None,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> dict[str, Any]:
    """Return feature -> result record for every enabled, selected feature.

    A result record has ``status`` ``"ok"`` with the service's data, or
    ``"error"`` with a one-line ``error`` message for the policy to report.
    """
    from pytest_amipolicy.aws import guardduty, inspector, marketplace

    features = wanted(settings)
    clients = clients or Clients()
    results: dict[str, Any] = {}
    image_id = str(record.get("ImageId", ""))

    for feature in features:
        deadline = Deadline(
            settings.amazon_timeout, settings.amazon_poll_delay, clock, sleep
        )
        try:
            if feature == INSPECTOR:
                client = clients.inspector2 or service_client(
                    session, "inspector2", region
                )
                data = inspector.gather(client, image_id, region, deadline)
            elif feature == ASSESSMENT:
                # The Catalog API answers in us-east-1 only, whatever the AMI's region.
                client = clients.marketplace or service_client(
                    session, "marketplace-catalog", marketplace.REGION
                )
                product = str(settings.product)
                data = marketplace.gather(client, product, image_id, deadline)
            else:
                client = clients.guardduty or service_client(
                    session, "guardduty", region
                )
                data = guardduty.gather(
                    client, record, region, settings.guardduty_role, deadline
                )
        except AmazonCheckError as error:
            logger.info("%s of %s: %s", feature, image_id, error)
            results[feature] = {"status": "error", "error": str(error)}
            continue

        results[feature] = {**jsonable(data), "status": "ok"}

    # The threshold travels with the result so the check needs nothing else.
    if INSPECTOR in results:
        results[INSPECTOR]["threshold"] = settings.inspector_severity

    return results


def gather_for(target: Any, settings: Settings) -> dict[str, Any]:
    """Return :func:`gather`'s results for an EC2 target, in the AMI's region."""
    from pytest_amipolicy.aws.session import make_session
    from pytest_amipolicy.errors import AmiPolicyError

    region = str(target.region)
    try:
        session = make_session(region)
    except AmiPolicyError as error:
        return {
            feature: {"status": "error", "error": str(error)}
            for feature in wanted(settings)
        }

    logger.info("asking Amazon's services about %s in %s", target.label, region)
    return gather(target.image_record(), region, settings, session=session)
