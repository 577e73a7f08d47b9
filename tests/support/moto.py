"""A moto server on loopback that every EC2 call of a test goes to.

Nothing may reach AWS from the tests: the endpoint, the credentials and the
config files are pinned for as long as the server runs.
"""

from __future__ import annotations

import contextlib
import tempfile
import urllib.request
from collections.abc import Iterator
from pathlib import Path

from moto.server import ThreadedMotoServer

REGION = "us-east-1"


@contextlib.contextmanager
def moto_server() -> Iterator[dict[str, str]]:
    """Run moto on a free loopback port; yield the environment that reaches it."""
    with tempfile.TemporaryDirectory(prefix="amipolicy-aws-") as scratch:
        empty = Path(scratch) / "empty"
        empty.write_text("")

        server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
        server.start()
        host, port = server.get_host_and_port()
        try:
            yield {
                "AWS_ENDPOINT_URL": f"http://{host}:{port}",
                "AWS_ACCESS_KEY_ID": "testing",
                "AWS_SECRET_ACCESS_KEY": "testing",
                "AWS_SESSION_TOKEN": "testing",
                "AWS_DEFAULT_REGION": REGION,
                "AWS_CONFIG_FILE": str(empty),
                "AWS_SHARED_CREDENTIALS_FILE": str(empty),
                # No instance-role lookups to a link-local address either.
                "AWS_EC2_METADATA_DISABLED": "true",
            }
        finally:
            server.stop()


def reset(endpoint: str) -> None:
    """Put moto back in its initial state (default VPC, built-in AMIs)."""
    request = urllib.request.Request(f"{endpoint}/moto-api/reset", method="POST")
    with urllib.request.urlopen(request, timeout=10) as response:
        response.read()
