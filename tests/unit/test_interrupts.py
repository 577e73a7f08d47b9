"""The first Ctrl-C or SIGTERM stops the run; the ones after it only wait."""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator

import pytest

from pytest_amipolicy import interrupts


def send(signum: int) -> None:
    # Python runs the handler before os.kill returns to the caller's next line.
    os.kill(os.getpid(), signum)


@pytest.fixture
def announced() -> Iterator[list[str]]:
    lines: list[str] = []
    restore = interrupts.install(lines.append)
    try:
        yield lines
    finally:
        restore()


def test_the_first_signal_raises_and_the_next_ones_are_only_announced(
    announced: list[str],
) -> None:
    with pytest.raises(KeyboardInterrupt):
        send(signal.SIGINT)

    send(signal.SIGINT)
    send(signal.SIGTERM)

    assert announced == [interrupts.WAIT_LINE, interrupts.WAIT_LINE]


def test_sigterm_first_raises_an_interrupt_that_names_it(
    announced: list[str],
) -> None:
    with pytest.raises(KeyboardInterrupt, match=f"signal {int(signal.SIGTERM)}"):
        send(signal.SIGTERM)


def test_an_interrupt_pytest_caught_elsewhere_makes_signals_wait(
    announced: list[str],
) -> None:
    interrupts.note_interrupted()

    send(signal.SIGINT)

    assert announced == [interrupts.WAIT_LINE]


def test_a_first_signal_inside_a_deferred_block_is_raised_when_it_ends(
    announced: list[str],
) -> None:
    finished = []

    with pytest.raises(KeyboardInterrupt), interrupts.deferred():
        send(signal.SIGINT)
        send(signal.SIGINT)
        finished.append(True)

    assert finished == [True]
    assert announced == [interrupts.WAIT_LINE, interrupts.WAIT_LINE]


def test_a_deferred_block_holds_an_interrupt_without_install_too() -> None:
    finished = []

    with pytest.raises(KeyboardInterrupt), interrupts.deferred():
        send(signal.SIGINT)
        finished.append(True)

    assert finished == [True]
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
    # Python's own handler is back, and raises at once.
    with pytest.raises(KeyboardInterrupt):
        send(signal.SIGINT)


def test_restoring_gives_back_the_handlers_from_before() -> None:
    def before(signum: int, frame: object) -> None:
        raise AssertionError("not to be called")

    previous = signal.signal(signal.SIGTERM, before)
    try:
        interrupts.install(lambda line: None)()

        assert signal.getsignal(signal.SIGTERM) is before
        assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
    finally:
        signal.signal(signal.SIGTERM, previous)


def test_a_signal_the_process_ignores_stays_ignored() -> None:
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        restore = interrupts.install(lambda line: None)
        ignored = signal.getsignal(signal.SIGINT)
        restore()
    finally:
        signal.signal(signal.SIGINT, previous)

    assert ignored is signal.SIG_IGN
