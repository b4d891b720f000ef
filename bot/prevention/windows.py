"""Deploy windows: the runbook's "Deploy during low-traffic periods" as configured times
(UTC), e.g. ``"Mon-Fri 22:00-06:00"`` (a window may cross midnight: it belongs to the day it
starts on) or ``"Sun 02:00-05:00"``. Parsed once when the config is read."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, time, timedelta

DAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
_WINDOW = re.compile(
    r"^(?P<first>[A-Z][a-z]{2})(?:-(?P<last>[A-Z][a-z]{2}))?\s+"
    r"(?P<start>\d{2}:\d{2})-(?P<end>\d{2}:\d{2})$"
)
FORMAT = '"Mon-Fri 22:00-06:00" or "Sun 02:00-05:00" (days Mon..Sun, times HH:MM UTC)'


@dataclass(frozen=True)
class DeployWindow:
    text: str
    days: frozenset[int]  # 0 = Monday, as datetime.weekday()
    start: time
    end: time

    def contains(self, moment: datetime) -> bool:
        """``moment`` is UTC. A window crossing midnight runs into the next day."""
        for day_offset in (0, 1):
            opened_day = moment - timedelta(days=day_offset)
            if opened_day.weekday() not in self.days:
                continue
            opens = datetime.combine(opened_day.date(), self.start, moment.tzinfo)
            closes = datetime.combine(opened_day.date(), self.end, moment.tzinfo)
            if closes <= opens:
                closes += timedelta(days=1)
            if opens <= moment < closes:
                return True
        return False


def parse_window(text: str) -> DeployWindow:
    """A window from its text; ValueError saying what is wrong."""
    match = _WINDOW.match(text.strip())
    if match is None:
        raise ValueError(f"{text!r} is not a deploy window like {FORMAT}")
    first, last = match["first"], match["last"] or match["first"]
    if first not in DAYS or last not in DAYS:
        raise ValueError(f"{text!r}: days are {', '.join(DAYS)}")
    a, b = DAYS.index(first), DAYS.index(last)
    days = frozenset(range(a, b + 1)) if a <= b else frozenset([*range(a, 7), *range(0, b + 1)])
    try:
        start = time.fromisoformat(match["start"])
        end = time.fromisoformat(match["end"])
    except ValueError:
        raise ValueError(f"{text!r}: times are HH:MM from 00:00 to 23:59") from None
    if start == end:
        raise ValueError(f"{text!r}: the window opens and closes at the same time")
    return DeployWindow(text.strip(), days, start, end)


def inside_any(windows: tuple[DeployWindow, ...], moment: datetime) -> DeployWindow | None:
    return next((w for w in windows if w.contains(moment)), None)


# The retention review's schedule ([backups] retention_review): once a day at a UTC time.
DAILY_FORMAT = '"daily 09:00" (a time HH:MM UTC) or "off"'
_DAILY = re.compile(r"^daily\s+(?P<at>\d{2}:\d{2})$")


def parse_daily(text: str) -> time | None:
    """The time of day ``"daily HH:MM"`` names; None for ``"off"``; ValueError otherwise."""
    if text.strip() == "off":
        return None
    match = _DAILY.match(text.strip())
    if match is None:
        raise ValueError(f"{text!r} is not a schedule like {DAILY_FORMAT}")
    try:
        return time.fromisoformat(match["at"])
    except ValueError:
        raise ValueError(f"{text!r}: the time is HH:MM from 00:00 to 23:59") from None


def next_daily(at: time, now: datetime) -> datetime:
    """The first moment at ``at`` (UTC) strictly after ``now``."""
    moment = datetime.combine(now.date(), at, now.tzinfo)
    return moment if moment > now else moment + timedelta(days=1)
