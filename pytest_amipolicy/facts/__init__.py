"""Facts gathered from a target, the only input of a policy check.

Facts are gathered once per target in as few remote commands as possible. A
:class:`Facts` object holds the sections that came back from the gathering
script; sections that are slow (package updates, a malware scan) are fetched on
first use through a loader and then cached. Policy checks only read facts, so a
:class:`Facts` built from recorded sections is all a unit test needs.
"""

from __future__ import annotations

import datetime
import logging
from dataclasses import dataclass, field
from typing import Any, Callable

from pytest_amipolicy.verdicts import Evidence

logger = logging.getLogger(__name__)


class MissingFact(Exception):
    """A fact a policy needs was not gathered; the policy's verdict is error."""

    def __init__(self, name: str, why: str = "") -> None:
        super().__init__(
            f"fact {name!r} is not available" + (f": {why}" if why else "")
        )
        self.name = name
        self.why = why


@dataclass(frozen=True)
class Section:
    """The output of one part of a gathering script, with the command behind it."""

    name: str
    command: str
    status: int
    output: str

    @property
    def ok(self) -> bool:
        return self.status == 0

    def evidence(self, label: str = "", output: str | None = None) -> Evidence:
        return Evidence(
            label=label or self.name,
            command=self.command,
            output=self.output if output is None else output,
        )


Loader = Callable[[str], Section]


@dataclass
class Facts:
    """Everything known about one target, for the policy checks to read."""

    target: str
    platform: str
    sections: dict[str, Section] = field(default_factory=dict)
    # The describe_images record of the AMI, for the AMI-* policies.
    image: dict[str, Any] | None = None
    snapshots: dict[str, dict[str, Any]] = field(default_factory=dict)
    region: str | None = None
    # The public half of the key the checker logged in with (OpenSSH format).
    launch_public_key: str | None = None
    login_user: str | None = None
    check_date: datetime.date = field(default_factory=datetime.date.today)
    settings: dict[str, Any] = field(default_factory=dict)
    loader: Loader | None = None
    # Sections that could not be gathered, with the reason.
    failures: dict[str, str] = field(default_factory=dict)
    # Counted by the runner that executes them, slow sections included.
    remote_commands: int = 0

    def has(self, name: str) -> bool:
        return name in self.sections

    def section(self, name: str) -> Section:
        """Return section ``name``, loading it on first use if it is a slow one."""
        if name in self.sections:
            return self.sections[name]

        if name in self.failures:
            raise MissingFact(name, self.failures[name])

        if self.loader is None:
            raise MissingFact(name, "it was not gathered from this target")

        try:
            section = self.loader(name)
        except MissingFact as error:
            self.failures[name] = error.why
            raise

        self.sections[name] = section
        return section
