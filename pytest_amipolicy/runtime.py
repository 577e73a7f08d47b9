"""The live side of a run: opening targets, gathering facts, judging policies.

One :class:`TargetRun` per target opens the machine on first need, gathers its
facts once, and closes it as soon as its last policy has been judged, so that a
run over many targets holds only the machines it is still checking.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from typing import TYPE_CHECKING, Any, Callable

from pytest_amipolicy.errors import AmiPolicyError
from pytest_amipolicy.facts import Facts, MissingFact
from pytest_amipolicy.verdicts import Outcome, Verdict, not_applicable, undecided

if TYPE_CHECKING:
    import pytest

    from pytest_amipolicy.catalogue import Policy
    from pytest_amipolicy.settings import Settings
    from pytest_amipolicy.targets import Connection, Progress, Target

logger = logging.getLogger(__name__)


class TargetRun:
    """One target's state through the session."""

    def __init__(
        self, target: Target, settings: Settings, config: pytest.Config
    ) -> None:
        self.target = target
        self.settings = settings
        self.config = config
        self.connection: Connection | None = None
        self.failure: AmiPolicyError | None = None
        self.pending = 0
        self.closed = False
        self.removed: list[str] = []
        self.timings: dict[str, float] = {}
        self._facts: Facts | None = None
        self._ami_facts: Facts | None = None

    @property
    def label(self) -> str:
        return self.target.label

    def machine_facts(self, progress: Progress) -> Facts:
        """Open the target if needed and return its gathered facts."""
        if self.failure is not None:
            raise self.failure
        if self._facts is not None:
            return self._facts

        try:
            started = time.monotonic()
            self.connection = self.target.open(progress)
            self.timings["open"] = time.monotonic() - started

            started = time.monotonic()
            self._facts = gather_facts(self, progress)
            self.timings["gather"] = time.monotonic() - started
        except AmiPolicyError as error:
            self.failure = error
            raise

        self.config.hook.pytest_amipolicy_facts_gathered(
            config=self.config, target=self.label, facts=self._facts
        )
        return self._facts

    def ami_facts(self) -> Facts | None:
        """Facts from the image's EC2 attributes, or None for non-AMI targets."""
        if self._ami_facts is not None:
            return self._ami_facts

        record = self.target.image_record()
        if record is None:
            return None

        self._ami_facts = Facts(
            target=self.label,
            platform="ami",
            image=record,
            snapshots=getattr(self.target, "snapshots", lambda: {})(),
            region=getattr(self.target, "region", None),
            check_date=self.settings.check_date,
            settings={"max_age_days": self.settings.max_age_days},
        )

        # Amazon's own verdicts are asked for once per AMI, only when enabled.
        from pytest_amipolicy.aws import amazon

        if amazon.wanted(self.settings):
            self._ami_facts.settings[amazon.FACTS_KEY] = amazon.gather_for(
                self.target, self.settings
            )
        return self._ami_facts

    def with_launch(self, facts: Facts, progress: Progress) -> Facts:
        """AMI facts with what the launch showed, launching if it has not yet."""
        self.machine_facts(progress)
        details = self.connection.details if self.connection else None
        return dataclasses.replace(
            facts, settings={**facts.settings, **(details or {})}
        )

    def close(self, progress: Progress) -> list[str]:
        if self.closed:
            return []
        self.closed = True

        try:
            self.removed = self.target.close(progress)
        except AmiPolicyError as error:
            self.removed = [f"cleanup of {self.label} failed: {error}"]
        return self.removed

    def known_facts(self) -> list[Facts]:
        """The facts gathered so far (machine, AMI); never opens or asks the target."""
        return [facts for facts in (self._facts, self._ami_facts) if facts is not None]

    @property
    def remote_commands(self) -> int:
        return self._facts.remote_commands if self._facts is not None else 0


def gather_facts(run: TargetRun, progress: Progress) -> Facts:
    """Run the platform's gathering script on an opened target."""
    connection = run.connection
    assert connection is not None, "gather_facts needs an opened target"

    facts = Facts(
        target=run.label,
        platform=connection.platform,
        launch_public_key=connection.launch_public_key,
        login_user=connection.login_user,
        check_date=run.settings.check_date,
        settings={"max_age_days": run.settings.max_age_days},
        image=run.target.image_record(),
    )
    if connection.details:
        facts.settings.update(connection.details)

    remote = _counting_runner(connection.host, facts)
    progress(f"gathering facts from {run.label}")

    if connection.platform == "windows":
        from pytest_amipolicy.facts import windows

        facts.sections.update(windows.gather(remote))
        return facts

    from pytest_amipolicy.facts import linux

    privileged = connection.login_user != "root"
    facts.sections.update(
        linux.gather(remote, sudo=privileged, user=connection.login_user)
    )
    facts.settings["root"] = linux.ran_as_root(facts.sections)
    if not facts.settings["root"]:
        progress(
            f"{run.label}: {connection.login_user} cannot use sudo without a "
            "password, so checks that need root are errors; log in as root or as "
            "a user with passwordless sudo (--ami-user)"
        )
    facts.loader = lambda name: linux.load_slow(
        # A scanner may be installed only on a machine that is thrown away.
        remote,
        name,
        sudo=privileged,
        install_scanner=run.target.kind != "host",
    )
    return facts


def _counting_runner(host: Any, facts: Facts) -> Callable[[str], tuple[int, str, str]]:
    """Wrap a testinfra host's ``run`` so every remote command is counted."""

    def remote(command: str) -> tuple[int, str, str]:
        facts.remote_commands += 1
        logger.debug("remote command on %s: %.200s", facts.target, command)
        result = host.run(command)

        # Decoded here: testinfra's own decoding first probes the remote
        # encoding with an extra command, which also does not exist on Windows.
        stdout = result.stdout_bytes.decode("utf-8", errors="replace")
        stderr = result.stderr_bytes.decode("utf-8", errors="replace")
        return result.exit_status, stdout, stderr

    return remote


def judge(policy: Policy, run: TargetRun, progress: Progress) -> Outcome:
    """Return the policy's verdict on the target; never raises for a check's doubt."""
    if "manual" in policy.platforms:
        return policy.check(Facts(target=run.label, platform="manual"))

    if "ami" in policy.platforms:
        facts = run.ami_facts()
        if facts is None:
            return not_applicable(
                f"{policy.id} reads the EC2 attributes of a registered AMI; "
                f"{run.label} is not one (check it with --ami)."
            )
        if policy.needs_launch:
            facts = run.with_launch(facts, progress)
    else:
        facts = run.machine_facts(progress)
        if facts.platform not in policy.platforms:
            return not_applicable(
                f"{policy.id} applies to {'/'.join(sorted(policy.platforms))}; "
                f"{run.label} runs {facts.platform}."
            )
        if policy.needs_root and facts.settings.get("root") is False:
            # Files only root can read (shadow, other users' keys) would look
            # absent, and absent is what a pass looks like.
            return undecided(
                f"{policy.id} needs root to read the machine, and "
                f"{facts.login_user} cannot use sudo without a password; log in "
                "as root or as a user with passwordless sudo (--ami-user)."
            )

    try:
        return policy.check(facts)
    except MissingFact as missing:
        return undecided(f"{policy.id} could not be decided: {missing}")


def is_decided(outcome: Outcome) -> bool:
    return outcome.verdict is not Verdict.ERROR
