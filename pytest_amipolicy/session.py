"""The state of one pytest session's checks: targets, their runs, and progress."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from pytest_amipolicy.redaction import compile_patterns, redact
from pytest_amipolicy.runtime import TargetRun, judge
from pytest_amipolicy.targets import redacted_spec
from pytest_amipolicy.verdicts import Outcome

if TYPE_CHECKING:
    from pytest_amipolicy.catalogue import Policy
    from pytest_amipolicy.settings import Settings
    from pytest_amipolicy.targets import Target

logger = logging.getLogger(__name__)

SESSION_KEY = pytest.StashKey["AmiPolicySession"]()


class AmiPolicySession:
    """Owns every target of the session and removes what they created."""

    def __init__(
        self, config: pytest.Config, settings: Settings, targets: list[Target]
    ) -> None:
        self.config = config
        self.settings = settings
        self._patterns = compile_patterns(settings.redact)
        self.runs = {
            target.label: TargetRun(target, settings, config) for target in targets
        }

    @property
    def labels(self) -> list[str]:
        return list(self.runs)

    def progress(self, message: str) -> None:
        """Tell the user what is happening (launching, waiting, tearing down)."""
        message = redact(message, self._patterns)
        logger.info("%s", message)
        reporter = self.config.pluginmanager.get_plugin("terminalreporter")
        if reporter is None or hasattr(self.config, "workerinput"):
            return

        # Progress is shown while a test runs, when output is being captured.
        capture = self.config.pluginmanager.get_plugin("capturemanager")
        if capture is None:
            reporter.write_line(f"amipolicy: {message}")
            return
        with capture.global_and_fixture_disabled():
            reporter.write_line(f"amipolicy: {message}")

    def expect(self, label: str, count: int = 1) -> None:
        """Note that ``count`` more items will check the target ``label``."""
        self.runs[label].pending += count

    def judge(self, policy: Policy, label: str) -> Outcome:
        return judge(policy, self.runs[label], self.progress)

    def run_for(self, label: str) -> TargetRun:
        return self.runs[label]

    def remote_commands(self, label: str) -> int:
        return self.runs[label].remote_commands

    def finished_one(self, label: str) -> list[str] | None:
        """Count a finished item; close the target after its last one."""
        run = self.runs[label]
        run.pending -= 1
        if run.pending > 0:
            return None
        return self._close(run)

    def close_all(self) -> list[str]:
        """Close every target not closed yet; after an interrupt, also retry.

        Termination is requested for every launched instance before anything
        is waited for: under xdist a worker is killed a few seconds after
        Ctrl-C, and an instance asked to terminate at least stops costing.
        """
        open_runs = [run for run in self.runs.values() if not run.closed]
        for run in open_runs:
            request = getattr(run.target, "request_termination", None)
            if callable(request):
                request(self.progress)

        lines: list[str] = []
        interrupted: BaseException | None = None
        for run in open_runs:
            try:
                lines.extend(self._close(run))
            except (KeyboardInterrupt, pytest.exit.Exception) as interrupt:
                # One target's interrupted teardown must not strand the others
                # (an image's teardown ends with pytest.exit() when it was).
                interrupted = interrupt
        if interrupted is not None:
            raise interrupted
        return lines

    def _close(self, run: TargetRun) -> list[str]:
        if run.closed:
            return []
        lines = run.close(self.progress)
        for line in lines:
            self.progress(line)
        return lines


def build_targets(config: pytest.Config, settings: Settings) -> list[Target]:
    """Turn the validated settings into target objects; nothing is opened yet.

    Runs, test ids and reports are keyed by label, so two targets with one
    label would silently become one: that is refused as a usage error.
    """
    targets: list[Any] = []

    if settings.amis:
        from pytest_amipolicy.targets.ec2 import Ec2Target

        for ami in settings.amis:
            targets.append(
                Ec2Target(
                    ami,
                    settings,
                    resolve_address=_address_resolver(config, ami),
                )
            )

    if settings.hosts:
        from pytest_amipolicy.targets.host import HostTarget

        targets.extend(HostTarget(spec, settings) for spec in settings.hosts)

    if settings.images:
        from pytest_amipolicy.targets.image import ImageTarget, image_labels

        labels = image_labels(settings.images)
        for path in settings.images:
            targets.append(
                ImageTarget(
                    path, settings, prepare=ImagePreparer(config), label=labels[path]
                )
            )

    named: dict[str, Target] = {}
    for target in targets:
        first = named.setdefault(target.label, target)
        if first is not target:
            raise pytest.UsageError(
                f"{_option_of(first)}={redacted_spec(first.spec)!r} and "
                f"{_option_of(target)}={redacted_spec(target.spec)!r} name the same "
                f"target ({target.label}); give it once."
            )
    return targets


def _option_of(target: Target) -> str:
    return {"ami": "--ami", "host": "--ami-host", "image": "--ami-image"}[target.kind]


def _address_resolver(config: pytest.Config, ami: str) -> Any:
    def resolve(instance: dict[str, Any]) -> tuple[str, int] | None:
        result: tuple[str, int] | None = config.hook.pytest_amipolicy_connect_address(
            config=config, instance=instance, target=ami
        )
        return result

    return resolve


class ImagePreparer:
    """Runs ``pytest_amipolicy_prepare_image`` and names who implements it."""

    hook_name = "pytest_amipolicy_prepare_image"

    def __init__(self, config: pytest.Config) -> None:
        self.config = config

    def __call__(self, label: str, root: Path) -> None:
        self.config.hook.pytest_amipolicy_prepare_image(
            config=self.config, target=label, root=root
        )

    def implementers(self) -> list[str]:
        """The plugins and conftest files implementing the hook, in call order.

        A conftest file is named by its path from the rootdir, a plugin by
        the name it was registered under.
        """
        hook = self.config.hook.pytest_amipolicy_prepare_image
        return [
            _readable_plugin_name(impl.plugin_name, self.config.rootpath)
            for impl in reversed(hook.get_hookimpls())
        ]


def _readable_plugin_name(name: str, rootpath: Path) -> str:
    # pytest registers a conftest module under its absolute path.
    path = Path(name)
    if not path.is_absolute():
        return name
    try:
        return str(path.relative_to(rootpath))
    except ValueError:
        return name
