"""The prevention keys of an environment (backup retention, pre-migration snapshots, deploy
windows) and the windows themselves."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from bot.errors import ConfigError
from bot.prevention.windows import inside_any, parse_window
from bot.settings import load_config

BASE = """
default_environment = "{name}"
[environments.{name}]
database_url_env = "DB"
protected = false
{extra}
"""


def env_of(tmp_path, name: str = "production", extra: str = ""):
    path = tmp_path / "rollback.toml"
    path.write_text(BASE.format(name=name, extra=extra))
    return load_config(path).environment(None)


def test_defaults_follow_the_runbook_table(tmp_path):
    production = env_of(tmp_path, "production")
    assert production.snapshot_retention_days == 90
    assert production.expected_automated_retention == 30
    assert production.wants_pre_migration_snapshot
    staging = env_of(tmp_path, "staging")
    assert staging.expected_automated_retention == 7
    assert not staging.wants_pre_migration_snapshot
    development = env_of(tmp_path, "development")
    assert development.expected_automated_retention is None
    assert development.deploy_windows == ()


def test_keys_override_the_table(tmp_path):
    env = env_of(
        tmp_path,
        "staging",
        "snapshot_retention_days = 14\nautomated_backup_retention_days = 10\n"
        'pre_migration_snapshot = true\ndeploy_windows = ["Sat 02:00-06:00"]',
    )
    assert env.snapshot_retention_days == 14
    assert env.expected_automated_retention == 10
    assert env.wants_pre_migration_snapshot
    assert [w.text for w in env.deploy_windows] == ["Sat 02:00-06:00"]


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ("snapshot_retention_days = 0", "snapshot_retention_days must be a positive number"),
        ("automated_backup_retention_days = -1", "automated_backup_retention_days must be"),
        ('snapshot_retention_days = "90"', "snapshot_retention_days must be "),
        ('deploy_windows = ["weekends"]', "deploy_windows: 'weekends' is not a deploy window"),
        ('deploy_windows = ["Mon 25:00-26:00"]', "times are HH:MM"),
        ('deploy_windows = ["Xyz 01:00-02:00"]', "days are Mon"),
        ('deploy_windows = ["Mon 01:00-01:00"]', "opens and closes at the same time"),
        ("pre_migration_snapshot = 1", "pre_migration_snapshot must be a boolean"),
    ],
)
def test_bad_values_name_the_key(tmp_path, extra, message):
    with pytest.raises(ConfigError) as error:
        env_of(tmp_path, "production", extra)
    assert message in str(error.value)
    assert "[environments.production]" in str(error.value)


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def test_a_window_crossing_midnight_belongs_to_the_day_it_opens():
    window = parse_window("Mon-Fri 22:00-06:00")
    # 2026-12-04 is a Friday.
    assert window.contains(at("2026-12-04 22:00"))
    assert window.contains(at("2026-12-05 05:59"))  # Saturday morning: Friday's window
    assert not window.contains(at("2026-12-05 06:00"))
    assert not window.contains(at("2026-12-05 23:00"))  # Saturday night: no window opens
    assert window.contains(at("2026-12-08 00:30"))  # Tuesday early: Monday's window
    assert not window.contains(at("2026-12-07 21:59"))


def test_day_ranges_wrap_around_the_week():
    window = parse_window("Sat-Mon 01:00-03:00")
    assert window.days == frozenset({5, 6, 0})
    assert inside_any((parse_window("Wed 10:00-11:00"), window), at("2026-12-06 02:00")) is window
    assert inside_any((window,), at("2026-12-08 02:00")) is None
