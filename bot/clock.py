"""UTC time: now, the store's timestamp format, how a moment is shown to people; and the
PostgreSQL-style durations the config writes ("30s"), in seconds.

Every timestamp the bot keeps or shows is UTC (the incident timeline is read across time
zones); ``shown_utc`` is the one way a moment is written for a person.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime

_STORE_FORMAT = "%Y-%m-%dT%H:%M:%S.%fZ"
_SHOWN = {
    "seconds": "%Y-%m-%d %H:%M:%S UTC",
    "minutes": "%Y-%m-%d %H:%M UTC",
    "time": "%H:%M:%S UTC",
}


def utcnow() -> datetime:
    return datetime.now(UTC)


def iso(ts: datetime) -> str:
    """The store's format: fixed width, so text order is time order."""
    return ts.astimezone(UTC).strftime(_STORE_FORMAT)


def parse_iso(value: str) -> datetime:
    return datetime.strptime(value, _STORE_FORMAT).replace(tzinfo=UTC)


def shown_utc(moment: datetime | str | None, to: str = "seconds") -> str:
    """ "2025-12-08 12:00:05 UTC" ("-" for no moment); ``to`` "minutes" leaves out the
    seconds, "time" the date. Takes a datetime or an ISO 8601 text (the store's, or
    ``datetime.isoformat()``'s with any offset)."""
    if moment is None or moment == "":
        return "-"
    if isinstance(moment, str):
        moment = datetime.fromisoformat(moment)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).strftime(_SHOWN[to])


_DURATION = re.compile(r"^(\d+)(ms|s|min)$")
_UNIT_SECONDS = {"ms": 0.001, "s": 1.0, "min": 60.0}


def duration_seconds(duration: str) -> float:
    """A PostgreSQL-style duration as the config writes it ("500ms", "30s", "2min"), in
    seconds; ValueError for anything else."""
    found = _DURATION.match(duration)
    if not found:
        raise ValueError(f"not a duration: {duration!r}")
    return int(found[1]) * _UNIT_SECONDS[found[2]]
