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

from pytest_amipolicy.errors import AmiPolicyError, TargetError
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
        # Why the target could not be opened (or its image not described): kept
        # and raised again for every later item, never tried a second time.
        self.failure: AmiPolicyError | None = None
        self._record_failure: AmiPolicyError | None = None
        self._ami_failure: AmiPolicyError | None = None
        # Which policy's report showed each kept failure in full, so that the
        # others refer to it in one line instead of repeating it.
        self._shown_by: dict[int, str] = {}
        self.pending = 0
        # Set as soon as closing starts: from then on the target is never opened
        # again, or a machine launched after its teardown would be left behind.
        self.closing = False
        # Set once nothing the target created is left (or --ami-keep kept it),
        # so an interrupted teardown is tried again by the session's last close.
        self.closed = False
        self._close_attempts = 0
        self.removed: list[str] = []
        self.timings: dict[str, float] = {}
        self._facts: Facts | None = None
        self._ami_facts: Facts | None = None

    @property
    def label(self) -> str:
        return self.target.label

    def machine_facts(self, progress: Progress) -> Facts:
        """Open the target if needed and return its gathered facts.

        The first failure is kept and raised again for every later item: a
        target that could not be opened is never opened a second time.
        """
        if self.failure is not None:
            raise again(self.failure)
        if self._facts is not None:
            return self._facts
        if self.closing:
            raise self.target.error(
                "was already closed after the last test counted for it, so it is "
                "not opened again; a test that ran later (a rerun, or one that "
                "reaches the fixtures without amipolicy_target) has no machine: "
                "run it in a session of its own"
            )

        self._facts = self._open_and_gather(progress)
        self.config.hook.pytest_amipolicy_facts_gathered(
            config=self.config, target=self.label, facts=self._facts
        )
        return self._facts

    def _open_and_gather(self, progress: Progress) -> Facts:
        # Opening an AMI starts from its record: a failed describe is kept by
        # image_record and is this target's failure as well.
        self.image_record()

        step = "opening"
        try:
            started = time.monotonic()
            self.connection = self.target.open(progress)
            self.timings["open"] = time.monotonic() - started

            step = "gathering facts from"
            started = time.monotonic()
            facts = gather_facts(self, progress)
            self.timings["gather"] = time.monotonic() - started
        except AmiPolicyError as error:
            self.failure = error
            raise
        except Exception as error:
            # A user's hook or a library can raise anything; it must still be
            # one line naming the target, and must not make the next item
            # open the target again over what the first attempt created.
            self.failure = self.target.error(
                f"{step} the target failed: {type(error).__name__}: {error}"
            )
            raise self.failure from error
        return facts

    def image_record(self) -> dict[str, Any] | None:
        """The target's describe_images record (None for non-AMI targets).

        A failure is kept like a failed open: every AMI-* policy and the launch
        would otherwise each ask EC2 again, and an endpoint that cannot be
        reached costs every one of them botocore's retries.
        """
        if self._record_failure is not None:
            raise again(self._record_failure)

        try:
            return self.target.image_record()
        except AmiPolicyError as error:
            self._record_failure = error
            self.failure = self.failure or error
            raise
        except Exception as error:
            self._record_failure = self.target.error(
                f"describing the image failed: {type(error).__name__}: {error}"
            )
            self.failure = self.failure or self._record_failure
            raise self._record_failure from error

    def ami_facts(self) -> Facts | None:
        """Facts from the image's EC2 attributes, or None for non-AMI targets."""
        if self._ami_failure is not None:
            raise again(self._ami_failure)
        if self._ami_facts is not None:
            return self._ami_facts

        record = self.image_record()
        if record is None:
            return None

        try:
            self._ami_facts = self._describe_ami(record)
        except AmiPolicyError as error:
            self._ami_failure = error
            raise
        return self._ami_facts

    def _describe_ami(self, record: dict[str, Any]) -> Facts:
        facts = Facts(
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
            facts.settings[amazon.FACTS_KEY] = amazon.gather_for(
                self.target, self.settings
            )
        return facts

    def shown_by(self, error: AmiPolicyError, policy_id: str) -> str | None:
        """The policy whose report shows ``error`` in full; ``policy_id`` if first.

        None when ``error`` is not one of the failures this run keeps (open,
        describe): such an error belongs to one item and is always shown.
        """
        kept = (self.failure, self._record_failure, self._ami_failure)
        if not any(error is failure for failure in kept):
            return None
        return self._shown_by.setdefault(id(error), policy_id)

    def with_launch(self, facts: Facts, progress: Progress) -> Facts:
        """AMI facts with what the launch showed, launching if it has not yet."""
        self.machine_facts(progress)
        details = self.connection.details if self.connection else None
        return dataclasses.replace(
            facts, settings={**facts.settings, **(details or {})}
        )

    def close(self, progress: Progress) -> list[str]:
        """Remove what the target created; safe to call again after a failure."""
        if self.closed:
            return []
        self.closing = True

        self._close_attempts += 1
        try:
            self.removed = self.target.close(progress)
        except AmiPolicyError as error:
            self.removed = [f"cleanup of {self.label} failed: {error}"]
            # A refusal or a timeout may pass once; it is tried one more time
            # at the end of the session, not over and over.
            self.closed = self._close_attempts >= 2 or not self._anything_left()
            return self.removed
        except BaseException:
            # Interrupted while tearing down: what is still recorded is tried
            # again by the session's final close.
            self.closed = not self._anything_left()
            raise

        self.closed = True
        return self.removed

    def _anything_left(self) -> bool:
        """Whether the target still records something it created (EC2 targets do)."""
        leftovers = getattr(self.target, "leftovers", None)
        return bool(leftovers()) if callable(leftovers) else False

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
        image=run.image_record(),
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
    """Wrap a testinfra host's ``run`` so every remote command is counted.

    A connection that drops (paramiko, socket and pipe errors) becomes a
    :class:`TargetError` naming the target, which the run keeps as its failure.
    """
    import paramiko

    dropped = (paramiko.SSHException, EOFError, OSError)

    def remote(command: str) -> tuple[int, str, str]:
        facts.remote_commands += 1
        logger.debug("remote command on %s: %.200s", facts.target, command)
        try:
            result = host.run(command)
        except dropped as error:
            reason = str(error).strip() or type(error).__name__
            raise TargetError(
                facts.target,
                f"the connection was lost during a remote command ({reason}); "
                "check that the machine stays up and reachable, then rerun",
            ) from error

        # Decoded here: testinfra's own decoding first probes the remote
        # encoding with an extra command, which also does not exist on Windows.
        stdout = result.stdout_bytes.decode("utf-8", errors="replace")
        stderr = result.stderr_bytes.decode("utf-8", errors="replace")
        return result.exit_status, stdout, stderr

    return remote


def again(error: AmiPolicyError) -> AmiPolicyError:
    """A kept failure, ready to be raised once more.

    Raising one exception object again and again makes its traceback grow by
    every raise; each item then shows (and pytest formats) all the earlier ones.
    """
    return error.with_traceback(None)


def judge(policy: Policy, run: TargetRun, progress: Progress) -> Outcome:
    """Return the policy's verdict on the target; never raises for a check's doubt.

    Verdicts that do not depend on the machine (manual attestations, AMI
    policies of a target that is not an AMI, Amazon's checks that were not
    asked for) are reached before anything is described or opened, so a
    target that cannot be reached does not turn them into errors.
    """
    if "manual" in policy.platforms:
        return policy.check(Facts(target=run.label, platform="manual"))

    if "ami" in policy.platforms:
        not_an_ami = not_applicable(not_an_ami_reason(policy, run))
        if run.target.kind != "ami":
            return not_an_ami
        if not amazon_asked_for(policy, run.settings):
            # Without Amazon's record the check skips, naming its option.
            return policy.check(Facts(target=run.label, platform="ami"))

        facts = run.ami_facts()
        if facts is None:
            return not_an_ami
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


def not_an_ami_reason(policy: Policy, run: TargetRun) -> str:
    """Why a policy about a registered AMI does not apply to a host or image."""
    from pytest_amipolicy.policies import amazon

    # Amazon's checks are switched on one by one: say which switch, and that
    # it needs an --ami target, rather than only that this is no AMI.
    if policy.id in amazon.SOURCES:
        if not amazon_asked_for(policy, run.settings):
            return amazon.switched_off(policy.id)

        reads, _ = amazon.SOURCES[policy.id]
        return f"{policy.id} reads {reads}; {run.label} is not one."

    return (
        f"{policy.id} reads the EC2 attributes of a registered AMI; {run.label} "
        "is not one: check the AMI itself with --ami=ID once it is registered."
    )


def amazon_asked_for(policy: Policy, settings: Settings) -> bool:
    """False for an AMAZON-* policy whose switch is off; True for any other."""
    from pytest_amipolicy.aws import amazon

    if policy.id not in amazon.POLICY_OF.values():
        return True
    return policy.id in {
        amazon.POLICY_OF[feature] for feature in amazon.wanted(settings)
    }


def is_decided(outcome: Outcome) -> bool:
    return outcome.verdict is not Verdict.ERROR
