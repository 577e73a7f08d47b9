"""Ctrl-C and SIGTERM: the first one stops the run, the later ones wait.

The first interrupt raises :class:`KeyboardInterrupt`, so that pytest stops
running tests and the session's finish tears every target down and writes
the reports. Any interrupt after it is only announced: raised while pytest
formats the first one, or while a container powers off or an instance
terminates, it would leave a traceback, reports that do not say interrupted,
and machines behind.

:func:`deferred` marks a teardown that even the first interrupt must not cut
short: one that comes meanwhile is held and raised when the block ends. It
works without :func:`install` too (a boot outside pytest), for as long as the
block lasts.

Signals reach Python's handlers in the main thread only; elsewhere nothing
here changes a handler.
"""

from __future__ import annotations

import contextlib
import logging
import signal
import threading
from collections.abc import Callable, Iterator
from types import FrameType
from typing import Any

logger = logging.getLogger(__name__)

WAIT_LINE = (
    "stopping: the teardown finishes first (send SIGKILL to abandon it; pytest "
    "--ami-cleanup and the next --ami-image run remove what is left)"
)

SIGNALS = (signal.SIGINT, signal.SIGTERM)

Announce = Callable[[str], None]


class _State:
    """What this process knows of interrupts; signals are process-wide."""

    def __init__(self) -> None:
        # Set once an interrupt was raised or held: later ones only wait.
        self.stopping = False
        # A first interrupt that came inside deferred(), raised when it ends.
        self.held: int | None = None
        self.deferring = 0
        self.announce: Announce = _log_warning
        # Whether install() set the handlers, which then stay for the run.
        self.installed = False


def _log_warning(message: str) -> None:
    logger.warning("%s", message)


_state = _State()


def _on_signal(signum: int, frame: FrameType | None) -> None:
    # pytest names where the interrupt came, not this handler.
    __tracebackhide__ = True

    if _state.stopping:
        _state.announce(WAIT_LINE)
        return

    _state.stopping = True
    if _state.deferring:
        _state.held = signum
        _state.announce(WAIT_LINE)
        return
    raise _interrupt(signum)


def _interrupt(signum: int) -> KeyboardInterrupt:
    # A Ctrl-C reads as Python's own; another signal says which it was.
    if signum == signal.SIGINT:
        return KeyboardInterrupt()
    return KeyboardInterrupt(f"signal {signum}")


def install(
    announce: Announce, signals: tuple[int, ...] = SIGNALS
) -> Callable[[], None]:
    """Handle ``signals`` as described above; return what restores the old handlers.

    A signal this process ignores (as a background job of a shell without
    job control ignores SIGINT) stays ignored.
    """
    global _state

    _state = _State()
    _state.announce = announce
    _state.installed = True
    previous = _replace(signals)

    def restore() -> None:
        global _state

        # The next session, or a boot without pytest, starts afresh.
        _put_back(previous)
        _state = _State()

    return restore


def note_interrupted() -> None:
    """Record an interrupt that did not come through a signal handled here.

    pytest reports every interrupt it catches (a KeyboardInterrupt raised by
    a plugin, ``pytest.exit()``); from then on the run is stopping as well.
    """
    if _state.installed:
        _state.stopping = True


@contextlib.contextmanager
def deferred() -> Iterator[None]:
    """Hold SIGINT and SIGTERM during the block; raise the first one after it.

    An interrupt after the run's first is announced and dropped, as anywhere
    once the run is stopping. Nested blocks hold until the outermost ends.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    # Outside install() (a boot without pytest, or SIGINT in an xdist worker,
    # which execnet uses to stop it), the handler is set for the block only.
    temporary = _replace(SIGNALS)
    stopping_before = _state.stopping
    _state.deferring += 1
    try:
        yield
    finally:
        _state.deferring -= 1
        _put_back(temporary)
        held = _state.held if not _state.deferring else None
        if held is not None:
            _state.held = None
            if temporary and not stopping_before:
                # Nothing here stops the run afterwards: Python's handler will.
                _state.stopping = False
            raise _interrupt(held)


def _replace(signals: tuple[int, ...]) -> dict[int, Any]:
    """Set the handler for each of ``signals`` not ignored nor already ours."""
    if threading.current_thread() is not threading.main_thread():
        logger.debug("not in the main thread; signal handlers left as they are")
        return {}

    previous: dict[int, Any] = {}
    for signum in signals:
        current = signal.getsignal(signum)
        if current in (signal.SIG_IGN, _on_signal):
            continue
        previous[signum] = current
        signal.signal(signum, _on_signal)
    return previous


def _put_back(previous: dict[int, Any]) -> None:
    for signum, handler in previous.items():
        signal.signal(signum, handler if handler is not None else signal.SIG_DFL)
