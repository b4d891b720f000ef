"""The retention review's rules on snapshots as RDS lists them (which are proposed, which are
kept and why), the re-check before a deletion, its schedule ("daily HH:MM" UTC) and the
config key that turns it on, with bad values refused clearly."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta

import pytest

from bot.aws.snapshots import RETAIN_UNTIL, ManualSnapshot, pre_migration_tags
from bot.errors import ConfigError
from bot.prevention.windows import next_daily, parse_daily
from bot.runbooks.retention import Reviewed, changed_since_plan, review
from bot.settings import Environment, load_config

TODAY = date(2026, 12, 2)
PROD = Environment("production", protected=True, rds_instance_id="db-prod")


def snap(sid, until, *, env="production", instance="db-prod", minute=0, **kw) -> ManualSnapshot:
    tags = {t["Key"]: t["Value"] for t in pre_migration_tags(env, TODAY, ["m1"])}
    if until is None:
        tags = {}
    else:
        tags[RETAIN_UNTIL] = str(until)
    created = datetime(2026, 1, 1, 0, minute, tzinfo=UTC)
    fields = {"status": "available", "snapshot_type": "manual"} | kw
    return ManualSnapshot(
        sid, f"arn:{sid}", fields["status"], created, instance, tags, fields["snapshot_type"]
    )


def verdicts(mine, everything=None) -> dict[str, Reviewed]:
    return {r.snapshot.id: r for r in review(PROD, mine, everything or mine, TODAY)}


def test_only_the_bots_manual_snapshots_past_their_date_are_proposed():
    mine = [
        snap("past", TODAY - timedelta(days=1), minute=1),
        snap("today", TODAY, minute=2),
        snap("future", TODAY + timedelta(days=3), minute=3),
        snap("person", None, minute=4),
        snap("bad-date", "2026-13-40", minute=5),
        snap("other-env", TODAY - timedelta(days=9), env="staging", minute=6),
        snap("auto", TODAY - timedelta(days=9), snapshot_type="automated", minute=7),
        snap("creating", TODAY - timedelta(days=9), status="creating", minute=8),
    ]
    found = verdicts(mine)
    assert [k for k, v in found.items() if v.delete] == ["past"]
    assert found["past"].reason == "retention ended 2026-12-01 (1 day ago)"
    assert found["today"].reason == f"kept until 2026-12-02 ({RETAIN_UNTIL})"
    assert found["person"].reason.startswith("not taken by rollback-bot")
    assert found["bad-date"].reason == f"no valid {RETAIN_UNTIL} date (tag value '2026-13-40')"
    assert found["other-env"].reason == "tagged for environment staging, not production"
    assert found["auto"].reason == "automated snapshot: RDS expires it itself"
    assert found["creating"].reason == "status creating, not available"


def test_the_newest_manual_snapshot_is_kept_when_deleting_would_leave_none():
    old, older = snap("old", "2026-10-01", minute=2), snap("older", "2026-09-01", minute=1)
    found = verdicts([older, old])
    assert not found["old"].delete and "would leave the instance with no manual" in (
        found["old"].reason
    )
    assert found["older"].delete
    # Another manual snapshot of the instance (any environment's, or a person's) remains:
    # both go.
    person = snap("person", None, minute=3)
    found = verdicts([older, old], [older, old, person])
    assert found["old"].delete and found["older"].delete


def test_a_snapshot_changed_since_the_plan_is_not_deleted():
    planned = snap("s", "2026-11-01")
    row = Reviewed(planned, True, "").row()
    assert changed_since_plan(row, planned, TODAY) is None
    assert changed_since_plan(row, None, TODAY) == "it no longer exists"
    moved = snap("s", "2027-01-01")
    assert (
        changed_since_plan(row, moved, TODAY) == f"its tags changed since the plan ({RETAIN_UNTIL})"
    )
    extra = ManualSnapshot(
        "s", "arn:s", "available", planned.created, "db-prod", {**planned.tags, "keep": "yes"}
    )
    assert changed_since_plan(row, extra, TODAY) == "its tags changed since the plan (keep)"
    deleting = snap("s", "2026-11-01", status="deleting")
    assert changed_since_plan(row, deleting, TODAY) == "its status is deleting"
    other = snap("s", "2026-11-01", instance="db-other")
    assert changed_since_plan(row, other, TODAY) == "it is now a manual snapshot of db-other"


def test_daily_schedule_next_run():
    at = parse_daily("daily 09:00")
    assert at == time(9, 0)
    morning = datetime(2026, 12, 2, 8, 59, tzinfo=UTC)
    assert next_daily(at, morning) == datetime(2026, 12, 2, 9, 0, tzinfo=UTC)
    assert next_daily(at, datetime(2026, 12, 2, 9, 0, tzinfo=UTC)) == datetime(
        2026, 12, 3, 9, 0, tzinfo=UTC
    )
    assert parse_daily("off") is None


CONFIG = """
default_environment = "production"
[environments.production]
database_url_env = "DB"
protected = false
{extra}
"""


def config_with(tmp_path, extra: str):
    path = tmp_path / "rollback.toml"
    path.write_text(CONFIG.format(extra=extra))
    return load_config(path)


def test_the_review_is_off_unless_configured(tmp_path):
    assert config_with(tmp_path, "").backups_retention_review is None
    on = config_with(tmp_path, '[backups]\nretention_review = "daily 06:30"')
    assert on.backups_retention_review == time(6, 30)


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ('[backups]\nretention_review = "every day"', 'is not a schedule like "daily 09:00"'),
        ('[backups]\nretention_review = "daily 25:00"', "the time is HH:MM from 00:00 to 23:59"),
        ("[backups]\nretention_review = true", "retention_review must be a string"),
        ('[backups]\nreview = "daily 09:00"', "[backups]: unknown key 'review'"),
    ],
)
def test_bad_retention_config_is_refused_clearly(tmp_path, extra, message):
    with pytest.raises(ConfigError) as error:
        config_with(tmp_path, extra)
    assert message in str(error.value)
    assert "[backups]" in str(error.value)
