"""The kinds of machine the policies can be checked on.

Every target turns what the user gave (an AMI id, a host spec, an image path)
into a reachable machine and back. A target owns whatever it creates: the
instance, the key pair, the container, and removes it in :meth:`Target.close`,
which is safe to call more than once and after a failed :meth:`Target.open`.
"""

from __future__ import annotations

import abc
import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable, ClassVar

from pytest_amipolicy.errors import TargetError

if TYPE_CHECKING:
    from pytest_amipolicy.settings import Settings

logger = logging.getLogger(__name__)

# Progress lines for the terminal ("launching i-0abc...", "waiting for SSH").
Progress = Callable[[str], None]


@dataclass
class Connection:
    """How to reach an opened target through pytest-testinfra."""

    # A testinfra host object (testinfra.host.Host).
    host: Any
    platform: str
    login_user: str
    # The public half of the key the checker logged in with (OpenSSH format),
    # the one authorized key an image may hold after launch.
    launch_public_key: str | None = None
    # Extra facts known from outside the machine (instance id, image record).
    details: dict[str, Any] | None = None


class Target(abc.ABC):
    """A machine to check, from what the user named to a live connection."""

    kind: ClassVar[str]

    def __init__(self, spec: str, settings: Settings) -> None:
        self.spec = spec
        self.settings = settings

    @property
    @abc.abstractmethod
    def label(self) -> str:
        """A short, unique, readable name used in test ids and messages."""

    def image_record(self) -> dict[str, Any] | None:
        """Return the describe_images record for AMI targets, else ``None``.

        Only AMI targets have one; the AMI-* policies read it without launching.
        """
        return None

    @abc.abstractmethod
    def open(self, progress: Progress) -> Connection:
        """Make the machine reachable and return how to connect to it."""

    @abc.abstractmethod
    def close(self, progress: Progress) -> list[str]:
        """Remove what :meth:`open` created; return a line per removed thing."""

    def error(self, message: str) -> TargetError:
        return TargetError(self.label, message)


def redacted_spec(spec: str) -> str:
    """Return ``spec`` with the password of its ``user:password@`` part hidden.

    Messages, test ids and reports name a target this way, never by the spec
    as given. Everything up to the last ``@`` counts as the user part, so a
    password that holds ``/``, ``?`` or ``@`` unquoted is hidden too (and a
    spec whose query holds an ``@`` is hidden a little more than needed).
    """
    scheme, separator, rest = spec.partition("://")
    if not separator:
        scheme, rest = "", spec

    userinfo, at, place = rest.rpartition("@")
    user, colon, _ = userinfo.partition(":")
    if not (at and colon):
        return spec
    prefix = f"{scheme}://" if separator else ""
    return f"{prefix}{user}:***@{place}"
