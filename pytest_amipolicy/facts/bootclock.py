"""When this boot began, read from the host-keys section of the Linux facts.

HOST-KEYS and REGION-AGNOSTIC both tell files made during this boot from files
the image shipped; the times are judged here, in one place, with the evidence
wording they share.
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass

from pytest_amipolicy.facts import Section

# The boot's times are whole seconds (btime, and file times as stat prints
# them), and btime can tick over to the next second while the clock is slewed:
# a file made as PID 1 started may read up to this much earlier than it.
BOOT_TIME_SLACK_SECONDS = 2


def boot_time(section: Section) -> float | None:
    """When PID 1 started, in epoch seconds, from the host-keys section.

    ``btime`` alone is the kernel's boot, which in a container is the host's;
    PID 1's start is the machine's own.
    """
    values = _host_key_values(section)
    try:
        ticks = int(values["pid1_start_ticks"]) / int(values["clk_tck"])
        return int(values["btime"]) + ticks
    except (KeyError, ValueError, ZeroDivisionError):
        return None


def _host_key_values(section: Section) -> dict[str, str]:
    return dict(
        line.split(" ", 1) for line in section.output.splitlines() if " " in line
    )


@dataclass(frozen=True)
class BootClock:
    """When this boot began, and whether the clock was put forward since.

    ``pid1_start`` is read as the clock reads now. ``mark_path`` is a file that
    PID 1 made at boot on the fresh tmpfs of /run, and ``mark_time`` its time as
    the clock read then: a mark older than PID 1's start is positive evidence
    that the clock was put forward after it was made, and files made between the
    mark and that step are of this boot too, however old they look.
    """

    pid1_start: float
    mark_path: str = ""
    mark_time: int = 0

    @property
    def put_forward(self) -> float:
        """Seconds the clock was put forward since the mark (0: no sign of it)."""
        if not self.mark_path:
            return 0.0
        gap = self.pid1_start - self.mark_time
        return gap if gap > BOOT_TIME_SLACK_SECONDS else 0.0

    def judge(self, stamp: float) -> tuple[bool, str]:
        """Whether a file time is of this boot, and why, in words."""
        offset = stamp - self.pid1_start
        if offset >= 0:
            return True, f"{span(offset)} after PID 1 started"

        before = f"{span(-offset)} before PID 1 started"
        if offset >= -BOOT_TIME_SLACK_SECONDS:
            return True, (
                f"{before}, within the {BOOT_TIME_SLACK_SECONDS} s by which "
                "whole-second times can differ: made as PID 1 started"
            )
        if self.put_forward and stamp >= self.mark_time - BOOT_TIME_SLACK_SECONDS:
            return True, (
                f"{before} as the clock reads now, but not before {self.mark_path}, "
                f"which PID 1 made at boot: the clock was put forward "
                f"{span(self.put_forward)} since, so this is of this boot"
            )
        return False, f"{before}: older than this boot"

    def describe(self) -> list[str]:
        """PID 1's start and the mark, in words, for the evidence."""
        lines = [f"PID 1 started {utc(self.pid1_start)}"]
        if not self.mark_path:
            lines.append(
                "no file made by PID 1 at boot was found in a tmpfs /run, so a "
                "clock step since boot could not be seen; none is assumed"
            )
        elif self.put_forward:
            lines.append(
                f"{self.mark_path}: made by PID 1 at boot, {utc(self.mark_time)}, "
                f"{span(self.put_forward)} before PID 1 started as the clock reads "
                "now: the clock was put forward that much after boot"
            )
        else:
            lines.append(
                f"{self.mark_path}: made by PID 1 at boot, {utc(self.mark_time)}: "
                "the clock was not put forward since"
            )
        return lines


def boot_clock(section: Section) -> BootClock | None:
    """The boot's clock from the host-keys section; None without PID 1's start."""
    start = boot_time(section)
    if start is None:
        return None

    values = _host_key_values(section)
    mark = values.get("bootmark", "").split(" ", 2)
    # Only a tmpfs /run is new at every boot: elsewhere an old file could be
    # one the image shipped.
    fresh_run = values.get("run_fs", "").strip() in {"tmpfs", "ramfs"}
    if len(mark) == 3 and fresh_run:
        stamps = [int(t) for t in mark[:2] if t.isdigit() and int(t) > 0]
        if stamps:
            return BootClock(start, mark[2], min(stamps))
    return BootClock(start)


def span(seconds: float) -> str:
    """A length of time in words: seconds, minutes, hours or days as it grows."""
    whole = int(seconds)
    if whole < 1:
        return "under 1 s"
    if whole < 120:
        return f"{whole} s"
    minutes = whole // 60
    if minutes < 120:
        return f"{minutes} min"
    hours = minutes // 60
    if hours < 48:
        return f"{hours} h {minutes % 60} min"
    return f"{hours // 24} days {hours % 24} h"


def utc(epoch: float) -> str:
    moment = datetime.datetime.fromtimestamp(epoch, datetime.timezone.utc)
    return moment.strftime("%Y-%m-%d %H:%M:%S UTC")
