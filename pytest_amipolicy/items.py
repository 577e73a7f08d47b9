"""The test items the plugin collects: one per (target, policy).

Verdicts map onto pytest outcomes so that nothing undecided can look green:
``pass`` passes, ``fail`` fails, ``error`` is raised during setup and so is
reported as an error, ``skip`` and ``manual`` are skips whose reason says which.

An error is raised as ``pytest.fail(text, pytrace=False)``: pytest formats a
setup error's traceback before any hook can replace it, and the text is all a
reader needs. When a target could not be opened, its first item shows why and
the others say so in one line.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import pytest

from pytest_amipolicy.errors import AmiPolicyError, TargetError
from pytest_amipolicy.verdicts import Outcome, Verdict, undecided

if TYPE_CHECKING:
    from pytest_amipolicy.catalogue import Policy
    from pytest_amipolicy.session import AmiPolicySession

logger = logging.getLogger(__name__)

# The key of an item's user property carrying its verdict and evidence; user
# properties travel from xdist workers to the controller with each report.
PROPERTY = "amipolicy"
# What is known about a target (image, instance, OS release), attached whenever
# that knowledge grows, and what its teardown stopped or deleted.
TARGET_PROPERTY = PROPERTY + "_target_details"
CLOSED_PROPERTY = PROPERTY + "_closed"
# Why a target could not be checked at all (not opened, image not described),
# attached once per target, by the item that showed the reason in full.
NOT_CHECKED_PROPERTY = PROPERTY + "_not_checked"


class PolicyFailed(Exception):
    """The target breaks the policy."""

    def __init__(self, outcome: Outcome) -> None:
        super().__init__(outcome.reason)
        self.outcome = outcome


class PolicyItem(pytest.Item):
    """Check one policy on one target."""

    def __init__(self, *, policy: Policy, target_label: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.policy = policy
        self.target_label = target_label
        self.outcome: Outcome | None = None

    @property
    def run_state(self) -> AmiPolicySession:
        from pytest_amipolicy.session import SESSION_KEY

        return self.config.stash[SESSION_KEY]

    def setup(self) -> None:
        # The verdict is reached during setup so that an undecided check is
        # reported as an error, the same way a broken fixture is.
        failure: AmiPolicyError | None = None
        try:
            self.outcome = self.run_state.judge(self.policy, self.target_label)
        except AmiPolicyError as error:
            failure = error
            self.outcome = undecided(str(error))

        self._record(self.outcome)

        # Outside the except block: the text is the whole story, without the
        # error it replaces chained to it.
        if failure is not None:
            pytest.fail(self._not_checked(failure), pytrace=False)

        if self.outcome.verdict is Verdict.ERROR:
            text = render_outcome(
                self.policy, self.target_label, self.outcome, self._clean()
            )
            pytest.fail(text, pytrace=False)

    def runtest(self) -> None:
        assert self.outcome is not None

        if self.outcome.verdict is Verdict.FAIL:
            raise PolicyFailed(self.outcome)
        if self.outcome.verdict is Verdict.SKIP:
            pytest.skip(f"not applicable: {self.outcome.reason}")
        if self.outcome.verdict is Verdict.MANUAL:
            pytest.skip(f"manual attestation: {self.outcome.reason}")

    def teardown(self) -> None:
        closed = self.run_state.finished_one(self.target_label)
        if closed:
            self.user_properties.append((CLOSED_PROPERTY, closed))

    def repr_failure(
        self, excinfo: pytest.ExceptionInfo[BaseException], style: Any = None
    ) -> str:
        error = excinfo.value
        if isinstance(error, pytest.fail.Exception) and not error.pytrace:
            return str(error.msg)
        if isinstance(error, PolicyFailed):
            return render_outcome(
                self.policy, self.target_label, error.outcome, self._clean()
            )
        if isinstance(error, AmiPolicyError):
            return f"{self.policy.id}: {error}"
        return str(super().repr_failure(excinfo))

    def _not_checked(self, error: AmiPolicyError) -> str:
        """The text of an item whose target could not be opened or described."""
        run = self.run_state.run_for(self.target_label)
        shown_by = run.shown_by(error, self.policy.id)
        if shown_by is None:
            return f"{self.policy.id}: {error}"

        opened = "opened" if error is run.failure else "described"
        if shown_by != self.policy.id:
            return (
                f"{self.policy.id}: not checked, {self.target_label} could not be "
                f"{opened} (the reason is shown under {shown_by})"
            )

        # The summary lists every target that was not checked at all, once.
        if error is run.failure:
            self.user_properties.append(
                (
                    NOT_CHECKED_PROPERTY,
                    {"target": self.target_label, "reason": reason_of(error)},
                )
            )
        return f"{self.policy.id}: {error}"

    def reportinfo(self) -> tuple[str, int | None, str]:
        return "amipolicy", None, self.name

    def _clean(self) -> Callable[[str], str]:
        """Redaction by the run's patterns, for evidence about to be trimmed."""
        from pytest_amipolicy.redaction import compiled_patterns, redact

        patterns = compiled_patterns(self.run_state.settings.redact)
        return functools.partial(redact, patterns=patterns)

    def _record(self, outcome: Outcome) -> None:
        clean = self._clean()
        self.user_properties.append(
            (
                PROPERTY,
                {
                    "policy": self.policy.id,
                    "family": self.policy.family,
                    "summary": self.policy.summary,
                    "remediation": self.policy.remediation,
                    "target": self.target_label,
                    "verdict": outcome.verdict.value,
                    "reason": outcome.reason,
                    "evidence": [e.render(clean=clean) for e in outcome.evidence],
                    "findings": list(outcome.findings),
                    "remote_commands": self.run_state.remote_commands(
                        self.target_label
                    ),
                },
            )
        )

        # What is known of the target (image, instance, OS) reaches the
        # controller the same way, for the report's environment table.
        from pytest_amipolicy.evidence import target_property

        described = target_property(self.run_state.run_for(self.target_label))
        if described is not None:
            self.user_properties.append(described)


def reason_of(error: AmiPolicyError) -> str:
    """The error's message without the target label it may start with."""
    return error.message if isinstance(error, TargetError) else str(error)


def render_outcome(
    policy: Policy,
    target: str,
    outcome: Outcome,
    clean: Callable[[str], str] | None = None,
) -> str:
    """Text shown for a failed or undecided policy: verdict, why, evidence, fix.

    ``clean`` redacts each evidence output before it is trimmed; the whole
    text is redacted again where the report is made.
    """
    lines = [f"{policy.id} {outcome.verdict.value} on {target}: {outcome.reason}"]

    for finding in outcome.findings:
        lines.append(f"  - {finding}")

    if outcome.evidence:
        lines.append("")
        lines.append("Evidence:")
        lines.extend(evidence.render(clean=clean) for evidence in outcome.evidence)

    if outcome.verdict is Verdict.FAIL:
        lines.append("")
        lines.append(f"Fix: {policy.remediation}")
    return "\n".join(lines)


def item_name(label: str, policy_id: str) -> str:
    """The test name of a policy item: ``policy[<label>-<ID>]``."""
    return f"policy[{label}-{policy_id}]"


def make_items(
    session: pytest.Session, labels: list[str], policies: list[Policy]
) -> list[PolicyItem]:
    """Build one item per (target, policy), grouped by target."""
    # On an xdist worker with --dist loadgroup, the "@group" suffix that the
    # scheduler groups by is written here rather than left to xdist's own
    # marker handling, which not every pytest release applies to items made
    # outside collection.
    grouped = bool(getattr(session.config.option, "loadgroup", False))

    items = []
    for label in labels:
        for policy in policies:
            name = item_name(label, policy.id)
            nodeid = f"amipolicy::{name}" + (f"@{label}" if grouped else "")
            item = PolicyItem.from_parent(
                session,
                name=name,
                nodeid=nodeid,
                policy=policy,
                target_label=label,
            )
            item.add_marker(pytest.mark.amipolicy_policy(policy.id))
            items.append(item)
    return items
