"""Verdicts and the evidence that backs them.

A policy check is a pure function from gathered facts to an :class:`Outcome`.
The outcome carries what was looked at, so that the report can show a reviewer
why a verdict was reached without rerunning anything.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field


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

    def render(self, width: int = 4000) -> str:
        """Return the evidence as plain text, trimming long outputs."""
        lines = [self.label]
        if self.source:
            lines.append(f"  at {self.source}")
        if self.command:
            lines.append(f"  $ {self.command}")
        if self.output:
            output = self.output
            if len(output) > width:
                output = (
                    output[:width] + f"\n... ({len(self.output) - width} more chars)"
                )
            lines.extend("  " + line for line in output.splitlines())
        return "\n".join(lines)


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
