"""Helpers for tests of the Amazon services moto does not implement.

Those tests answer each call with botocore's Stubber, which also asserts the
exact request, and move time on a fake clock instead of sleeping.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import boto3
from botocore.stub import Stubber


class FakeClock:
    """A monotonic clock that moves only when the code under test sleeps."""

    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


@contextlib.contextmanager
def stubbed_client(service: str, region: str) -> Iterator[tuple[Any, Stubber]]:
    """A client of ``service`` whose every call must have been stubbed."""
    # Static credentials: the stubbed calls are signed but go nowhere.
    client = boto3.client(
        service,
        region_name=region,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    with Stubber(client) as stubber:
        yield client, stubber
        stubber.assert_no_pending_responses()
