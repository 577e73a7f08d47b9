"""pytest-amipolicy's entry module: options, collection, header and summary.

The plugin does nothing unless a target is named with ``--ami``,
``--ami-host`` or ``--ami-image``; then it collects one test per (target,
policy) by itself, so a run works from an empty directory.
"""

from __future__ import annotations

import logging
import signal
from collections.abc import Generator
from pathlib import Path
from typing import Any

import pytest

from pytest_amipolicy import __version__, hooks, interrupts
from pytest_amipolicy.catalogue import all_policies, get_policy
from pytest_amipolicy.completeness import OWN_TEST_PROPERTY, Completeness
from pytest_amipolicy.errors import AmiPolicyError
from pytest_amipolicy.evidence import EvidenceFilter, EvidenceWriter
from pytest_amipolicy.items import CLOSED_PROPERTY, PolicyItem, make_items
from pytest_amipolicy.options import add_options, check_cleanup_options, settings_from
from pytest_amipolicy.session import SESSION_KEY, AmiPolicySession, build_targets
from pytest_amipolicy.summary import RunSummary

logger = logging.getLogger(__name__)

# The name the run's Completeness is registered under.
COMPLETENESS = "amipolicy-completeness"

# Set by the controller in a worker's input when items are grouped by target.
_LOADGROUP_KEY = "amipolicy_loadgroup"


def pytest_addhooks(pluginmanager: pytest.PytestPluginManager) -> None:
    pluginmanager.add_hookspecs(hooks)


def pytest_addoption(parser: pytest.Parser) -> None:
    add_options(parser)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "amipolicy_policy(id): the policy a built-in check judges."
    )
    config.addinivalue_line(
        "markers", "xdist_group(name): keep tests of one group on one xdist worker."
    )

    settings = settings_from(config)
    if not (settings.amis or settings.hosts or settings.images):
        return

    targets = build_targets(config, settings)
    completeness = Completeness.for_run(
        config, settings, [t.label for t in targets], len(all_policies())
    )

    # The summary listens to reports on the controller, which under xdist is
    # not where the targets are opened.
    config.pluginmanager.register(
        RunSummary(settings, completeness), "amipolicy-summary"
    )
    config.pluginmanager.register(EvidenceFilter(settings), "amipolicy-filter")
    if settings.evidence_path is not None and not hasattr(config, "workerinput"):
        config.pluginmanager.register(
            EvidenceWriter(settings.evidence_path, settings, completeness),
            "amipolicy-evidence",
        )
    if config.getoption("htmlpath", None) and not hasattr(config, "workerinput"):
        from pytest_amipolicy.report import HtmlEvidence

        config.pluginmanager.register(
            HtmlEvidence(settings, completeness), "amipolicy-html"
        )

    # Registered last: of the session-finish wrappers marked trylast, the last
    # registered is innermost, and the tracker must stop an interrupt raised
    # in the finish before the report writers' wrappers around it see one.
    config.pluginmanager.register(completeness, COMPLETENESS)

    # Every policy of a target must run on the worker that opened it; plain
    # load balancing would launch one instance per worker for the same AMI.
    if getattr(config.option, "dist", "no") == "load":
        config.option.dist = "loadgroup"

    # A worker parses the command line again, so it never sees the switch
    # above; without being told it would not tag items with their group and
    # the controller would spread one target over every worker.
    workerinput = getattr(config, "workerinput", None)
    if workerinput is not None and workerinput.get(_LOADGROUP_KEY):
        config.option.loadgroup = True

    run_state = AmiPolicySession(config, settings, targets)
    config.stash[SESSION_KEY] = run_state
    _stop_gently(config, run_state)

    # paramiko logs a traceback for every banner it could not read while an
    # instance's sshd is still starting; the plugin reports the outcome itself.
    if config.get_verbosity() < 2:
        logging.getLogger("paramiko").setLevel(logging.CRITICAL)


@pytest.hookimpl(optionalhook=True)
def pytest_configure_node(node: Any) -> None:
    """Tell an xdist worker that the controller groups items by target."""
    if getattr(node.config.option, "dist", "no") == "loadgroup":
        node.workerinput[_LOADGROUP_KEY] = True


def _stop_gently(config: pytest.Config, run_state: AmiPolicySession) -> None:
    # The first Ctrl-C or SIGTERM stops the run; later ones wait for the
    # teardown rather than cut it (or pytest's handling of the first) short.
    # An xdist worker leaves SIGINT alone: execnet sends it one to stop it.
    worker = hasattr(config, "workerinput")
    signals = (signal.SIGTERM,) if worker else interrupts.SIGNALS
    config.add_cleanup(interrupts.install(run_state.progress, signals))


def pytest_keyboard_interrupt(excinfo: pytest.ExceptionInfo[BaseException]) -> None:
    # Also an interrupt that was no signal (pytest.exit(), a plugin's raise).
    interrupts.note_interrupted()


def pytest_cmdline_main(config: pytest.Config) -> int | pytest.ExitCode | None:
    if not config.getoption("ami_cleanup"):
        return None

    from pytest_amipolicy.aws.cleanup import run_cleanup

    check_cleanup_options(config)
    return run_cleanup(config)


def pytest_ignore_collect(collection_path: Path, config: pytest.Config) -> bool | None:
    run_state = config.stash.get(SESSION_KEY, None)
    if run_state is None:
        return None

    # An image tree below the current directory is a target, not a test suite:
    # its own packages' test files must not be collected.
    for image in run_state.settings.images:
        root = Path(image).resolve()
        if (
            collection_path.resolve() == root
            or root in collection_path.resolve().parents
        ):
            return True
    return None


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(
    session: pytest.Session, config: pytest.Config, items: list[pytest.Item]
) -> None:
    run_state = config.stash.get(SESSION_KEY, None)
    if run_state is None:
        return

    policies = [get_policy(policy_id) for policy_id in run_state.settings.policies]
    collected = make_items(session, run_state.labels, policies)
    items.extend(collected)

    # A user's test of a target goes to the worker that opens the target, or
    # that worker would never see its last item and another would open it too.
    for item in items:
        if isinstance(item, PolicyItem):
            continue
        label = _target_of(item)
        if label is not None and item.get_closest_marker("xdist_group") is None:
            item.add_marker(pytest.mark.xdist_group(label))

    # The items were not found by a collector, so announce them as if one had:
    # the terminal's "N tests collected" and other plugins count from this.
    config.hook.pytest_collectreport(
        report=pytest.CollectReport(
            "amipolicy", "passed", None, list(collected), sections=[]
        )
    )


def pytest_collection_finish(session: pytest.Session) -> None:
    run_state = session.config.stash.get(SESSION_KEY, None)
    if run_state is None:
        return

    # Deselection (-k, -m, --lf) has happened: count what each target will run
    # (the built-in checks and the user's tests that use its fixtures) so that
    # it is closed right after the last item that needs it, whatever the order.
    for item in session.items:
        label = _target_of(item)
        if label is not None:
            run_state.expect(label)


def _target_of(item: pytest.Item) -> str | None:
    """The target an item checks: a policy's, or a user test's fixture parameter."""
    if isinstance(item, PolicyItem):
        return item.target_label
    callspec = getattr(item, "callspec", None)
    if callspec is None or "amipolicy_target" not in callspec.params:
        return None
    return str(callspec.params["amipolicy_target"])


@pytest.hookimpl(wrapper=True)
def pytest_runtest_teardown(
    item: pytest.Item, nextitem: pytest.Item | None
) -> Generator[None, None, None]:
    try:
        return (yield)
    finally:
        # A policy item counts itself; a user's test is counted here.
        label = None if isinstance(item, PolicyItem) else _target_of(item)
        run_state = item.config.stash.get(SESSION_KEY, None)
        if label is not None and run_state is not None:
            closed = run_state.finished_one(label)
            if closed:
                item.user_properties.append((CLOSED_PROPERTY, closed))


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    report = yield

    # A policy's failure or error is its verdict text, as a plain string,
    # whatever raised it. A skip keeps its (path, line, reason) form, which
    # -rs and JUnit XML expect.
    if isinstance(item, PolicyItem) and call.excinfo is not None and report.failed:
        report.longrepr = item.repr_failure(call.excinfo)

    # Any other test is the user's own; its outcome counts in its target's
    # standing, which the controller learns from the report alone.
    if not isinstance(item, PolicyItem) and SESSION_KEY in item.config.stash:
        report.user_properties.append((OWN_TEST_PROPERTY, _target_of(item) or ""))
    return report


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "amipolicy_target" not in metafunc.fixturenames:
        return

    run_state = metafunc.config.stash.get(SESSION_KEY, None)
    labels = run_state.labels if run_state is not None else []
    metafunc.parametrize("amipolicy_target", labels, scope="session")


@pytest.fixture(scope="session")
def amipolicy_facts(request: pytest.FixtureRequest, amipolicy_target: str) -> Any:
    """The facts gathered from the target, as the built-in policies see them."""
    run_state = request.config.stash[SESSION_KEY]
    try:
        return run_state.run_for(amipolicy_target).machine_facts(run_state.progress)
    except AmiPolicyError as error:
        # The same one line a built-in check shows, not the plugin's traceback.
        pytest.fail(str(error), pytrace=False)


@pytest.fixture(scope="session")
def amipolicy_host(request: pytest.FixtureRequest, amipolicy_facts: Any) -> Any:
    """The pytest-testinfra host of the target, logged in as the login user."""
    run_state = request.config.stash[SESSION_KEY]
    run = run_state.run_for(amipolicy_facts.target)
    if run.closing or run.connection is None:
        pytest.fail(
            f"{run.label}: the target was already closed after the last test "
            "counted for it, so there is no machine to run commands on",
            pytrace=False,
        )
    return run.connection.host


def pytest_amipolicy_connect_address(
    config: pytest.Config, instance: dict[str, Any], target: str
) -> tuple[str, int] | None:
    run_state = config.stash.get(SESSION_KEY, None)
    prefer = run_state.settings.connect if run_state else "public"

    public = instance.get("PublicIpAddress")
    private = instance.get("PrivateIpAddress")
    address = (public or private) if prefer == "public" else (private or public)
    if address is None:
        return None

    windows = (instance.get("Platform") or "").lower() == "windows"
    return address, 5986 if windows else 22


def pytest_report_header(config: pytest.Config) -> list[str] | None:
    run_state = config.stash.get(SESSION_KEY, None)
    if run_state is None:
        return None

    settings = run_state.settings
    lines = [
        f"amipolicy {__version__}: targets {', '.join(run_state.labels)}",
        f"amipolicy: {len(settings.policies)} "
        f"polic{'y' if len(settings.policies) == 1 else 'ies'}, check date "
        f"{settings.check_date.isoformat()}"
        + (f", region {settings.region}" if settings.region and settings.amis else ""),
    ]
    if settings.keep and settings.amis:
        lines.append("amipolicy: --ami-keep: launched instances are left running")
    return lines


def pytest_terminal_summary(
    terminalreporter: Any, exitstatus: int, config: pytest.Config
) -> None:
    # A bare `pytest` in a directory without tests: say how to name a target,
    # rather than leave "no tests ran" as the only line. Not when tests were
    # collected and all deselected, nor when a target was named.
    if config.stash.get(SESSION_KEY, None) is not None:
        return
    if exitstatus != pytest.ExitCode.NO_TESTS_COLLECTED:
        return
    if terminalreporter.stats.get("deselected"):
        return

    terminalreporter.write_line(
        "amipolicy: no target named; give --ami=ID, --ami-host=SPEC or "
        "--ami-image=PATH (see pytest --help)"
    )


def pytest_sessionfinish(session: pytest.Session) -> None:
    run_state = session.config.stash.get(SESSION_KEY, None)
    if run_state is None:
        return

    try:
        _record_late_cleanup(session.config, run_state.close_all())
    except (KeyboardInterrupt, pytest.exit.Exception) as interrupt:
        # The run's first interrupt came while the targets were torn down
        # (later ones only wait), or a hook called pytest.exit(). The rest of
        # the finish (the user's fixtures, the reports) must still run; what
        # is left of the targets is tried again at unconfigure.
        completeness = session.config.pluginmanager.get_plugin(COMPLETENESS)
        if completeness is None:
            raise
        completeness.note_interrupt(session, interrupt)


# What was torn down reaches these in teardown reports; a target closed at the
# session's end (after Ctrl-C, when its last policy never ran) sends none.
CLEANUP_COLLECTORS = ("amipolicy-summary", "amipolicy-evidence", "amipolicy-html")


def _record_late_cleanup(config: pytest.Config, lines: list[str]) -> None:
    if not lines:
        return
    for name in CLEANUP_COLLECTORS:
        collector = config.pluginmanager.get_plugin(name)
        if collector is not None:
            collector.note_closed(lines)


def pytest_unconfigure(config: pytest.Config) -> None:
    # Runs even when an interrupt broke off the teardown above: whatever is
    # still recorded is tried once more (closed targets are not touched).
    run_state = config.stash.get(SESSION_KEY, None)
    if run_state is None:
        return

    try:
        run_state.close_all()
    except (KeyboardInterrupt, pytest.exit.Exception):
        # The last chance to tear down was interrupted too (a hook's raise or
        # pytest.exit(); signals wait by now): say what removes the rest
        # rather than end on a traceback.
        logger.debug("teardown at exit interrupted", exc_info=True)
        reporter = config.pluginmanager.get_plugin("terminalreporter")
        if reporter is not None:
            reporter.write_line(
                "amipolicy: the teardown was interrupted again; pytest "
                "--ami-cleanup removes what an --ami run left once it expires, "
                "and the next --ami-image run what a container left",
                red=True,
            )
