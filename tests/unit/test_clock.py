"""bot/clock.py: one way every moment is shown to people, always in UTC; durations as the
config writes them."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from bot.clock import duration_seconds, iso, parse_iso, shown_utc

MOMENT = datetime(2025, 12, 8, 12, 0, 5, 123456, tzinfo=UTC)


def test_the_store_format_round_trips():
    assert iso(MOMENT) == "2025-12-08T12:00:05.123456Z"
    assert parse_iso(iso(MOMENT)) == MOMENT


def test_shown_utc_from_a_datetime_the_store_format_and_isoformat_with_an_offset():
    berlin = MOMENT.astimezone(timezone(timedelta(hours=1)))
    for moment in (MOMENT, iso(MOMENT), berlin, berlin.isoformat()):
        assert shown_utc(moment) == "2025-12-08 12:00:05 UTC"
    assert shown_utc(MOMENT, "minutes") == "2025-12-08 12:00 UTC"
    assert shown_utc(MOMENT, "time") == "12:00:05 UTC"


def test_no_moment_is_a_dash():
    assert shown_utc(None) == "-" == shown_utc("")


def test_a_duration_as_the_config_writes_it_is_read_in_seconds():
    assert [duration_seconds(d) for d in ("500ms", "30s", "2min", "0s")] == [0.5, 30, 120, 0]
    for bad in ("30", "1.5s", "2 min", "-1s", "1h", ""):
        with pytest.raises(ValueError):
            duration_seconds(bad)
