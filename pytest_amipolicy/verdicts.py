"""Verdicts and the evidence that backs them.

A policy check is a pure function from gathered facts to an :class:`Outcome`.
The outcome carries what was looked at, so that the report can show a reviewer
why a verdict was reached without rerunning anything.
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import dataclass, field

from pytest_amipolicy.redaction import scrub


class Verdict(str, enum.Enum):
    """What a policy check concluded about a target."""

    PASS = "pass"
    FAIL = "fail"
    # The check could not decide; reported as a test error, never as a pass.
    ERROR = "error"
    # The policy does not apply to this target, or its tool is unavailable.
    SKIP = "skip"
    # Only a person can confirm it; listed in the report as an attestation.
    MANUAL = "manual"


@dataclass(frozen=True)
class Evidence:
    """One thing that was looked at: a command and its output, or a file line."""

    label: str
    command: str = ""
    output: str = ""
    source: str = ""

    def render(
        self, width: int = 4000, clean: Callable[[str], str] | None = None
    ) -> str:
        """Return the evidence as plain text, trimming long outputs.

        The output is redacted (always-on patterns, then ``clean``) before it
        is trimmed: a cut through a secret would leave a piece that no
        pattern recognises any more.
        """
        lines = [self.label]
        if self.source:
            lines.append(f"  at {self.source}")
        if self.command:
            lines.append(f"  $ {self.command}")
        if self.output:
            output = scrub(self.output)
            if clean is not None:
                output = clean(output)
            lines.extend("  " + line for line in trimmed(output, width).splitlines())
        return "\n".join(lines)


def trimmed(text: str, width: int) -> str:
    """``text`` cut to about ``width`` characters, at a line end where one is near.

    A cut at a line end keeps every shown line whole, so a value that a
    redaction pattern would match later is never split in two.
    """
    if len(text) <= width:
        return text

    cut = text.rfind("\n", 0, width + 1)
    if cut < width // 2:
        cut = width
    return text[:cut].rstrip("\n") + f"\n... ({len(text) - cut} more chars)"


@dataclass(frozen=True)
class Outcome:
    """A verdict with the reason for it and the evidence that decided."""

    verdict: Verdict
    reason: str
    evidence: tuple[Evidence, ...] = field(default_factory=tuple)
    findings: tuple[str, ...] = field(default_factory=tuple)


def passed(reason: str, *evidence: Evidence) -> Outcome:
    return Outcome(Verdict.PASS, reason, tuple(evidence))


def failed(reason: str, *evidence: Evidence, findings: tuple[str, ...] = ()) -> Outcome:
    return Outcome(Verdict.FAIL, reason, tuple(evidence), tuple(findings))


def undecided(reason: str, *evidence: Evidence) -> Outcome:
    return Outcome(Verdict.ERROR, reason, tuple(evidence))


def not_applicable(reason: str, *evidence: Evidence) -> Outcome:
    return Outcome(Verdict.SKIP, reason, tuple(evidence))
