"""`/rollback backups`: each environment audited against the runbook's "Database Backup
Strategy" table, with a verdict per row:

- RDS automated backups: the instance's retention against the table (production 30 days,
  staging 7; development none), from DescribeDBInstances' BackupRetentionPeriod;
- continuous: how far the latest restorable time lags behind now (RDS uploads transaction
  logs about every five minutes; a larger lag means point-in-time recovery loses more);
- manual snapshot before migrations (production): whether the newest applied migration
  had a manual snapshot taken after the migration before it finished and before it
  started, or a snapshot the bot took names it among the pending migrations it was taken
  before ("migration X was applied with no snapshot before it").

Read-only. No Slack here.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from bot.aws.rds import describe_instance
from bot.aws.snapshots import ManualSnapshot, manual_snapshots
from bot.clock import shown_utc
from bot.database import connect
from bot.errors import UserError
from bot.prisma.history import RecordState, read_history
from bot.settings import Config, Environment
from bot.text import plural

# RDS copies transaction logs to S3 every five minutes (RDS User Guide, "Restoring a DB
# instance to a specified time"): a lag beyond three periods means something is wrong.
RESTORE_LAG_MAX = timedelta(minutes=15)


class RowVerdict(StrEnum):
    OK = "ok"
    WRONG = "wrong"
    NOT_CHECKED = "not_checked"  # the environment lacks what the row needs (say why)
    NOT_REQUIRED = "not_required"


@dataclass(frozen=True)
class BackupRow:
    environment: str
    backup_type: str  # the runbook table's column: "RDS Automated", "Manual Snapshot"
    expected: str
    found: str
    verdict: RowVerdict

    def to_dict(self) -> dict:
        return {
            "environment": self.environment,
            "backup_type": self.backup_type,
            "expected": self.expected,
            "found": self.found,
            "verdict": str(self.verdict),
        }


def audit_backups(config: Config, env_name: str | None, now: datetime) -> list[BackupRow]:
    envs = [config.environment(env_name)] if env_name else list(config.environments.values())
    rows: list[BackupRow] = []
    for env in envs:
        rows += audit_environment(env, now)
    return rows


def audit_environment(env: Environment, now: datetime) -> list[BackupRow]:
    if not env.rds_instance_id:
        expected = env.expected_automated_retention
        verdict = RowVerdict.NOT_REQUIRED if not expected else RowVerdict.NOT_CHECKED
        return [
            BackupRow(
                env.name,
                "RDS Automated",
                f"{expected} days" if expected else "none",
                "no rds_instance_id in the config",
                verdict,
            )
        ]
    try:
        instance = describe_instance(env.rds_instance_id)
    except UserError as error:
        return [BackupRow(env.name, "RDS Automated", "-", error.message, RowVerdict.NOT_CHECKED)]
    rows = [_retention_row(env, instance.backup_retention_days)]
    rows.append(_lag_row(env, instance.backup_retention_days, instance.latest_restorable_time, now))
    if env.wants_pre_migration_snapshot:
        rows.append(_snapshot_row(env))
    return rows


def _retention_row(env: Environment, days: int) -> BackupRow:
    expected = env.expected_automated_retention
    found = f"{days} days" if days else "off (retention 0)"
    if not expected:
        return BackupRow(env.name, "RDS Automated", "none", found, RowVerdict.NOT_REQUIRED)
    verdict = RowVerdict.OK if days >= expected else RowVerdict.WRONG
    if verdict == RowVerdict.WRONG:
        found += (
            f": shorter than the runbook's {expected} days; set the instance's backup"
            f" retention period to {expected}"
        )
    return BackupRow(env.name, "RDS Automated", f"{expected} days", found, verdict)


def _lag_row(env: Environment, days: int, latest: datetime | None, now: datetime) -> BackupRow:
    expected = f"continuous: latest restorable time within {RESTORE_LAG_MAX.seconds // 60} min"
    if not days or latest is None:
        verdict = RowVerdict.WRONG if env.expected_automated_retention else RowVerdict.NOT_REQUIRED
        return BackupRow(env.name, "Point-in-time", expected, "no restorable time", verdict)
    lag = max(now - latest, timedelta(0))
    found = f"latest restorable {shown_utc(latest)} ({int(lag.total_seconds() // 60)} min ago)"
    verdict = RowVerdict.OK if lag <= RESTORE_LAG_MAX else RowVerdict.WRONG
    return BackupRow(env.name, "Point-in-time", expected, found, verdict)


def _snapshot_row(env: Environment) -> BackupRow:
    expected = f"before migrations, kept {env.snapshot_retention_days} days"
    try:
        with connect(env) as conn:
            history = read_history(conn) or ()
    except UserError as error:
        return BackupRow(
            env.name, "Manual Snapshot", expected, error.message, RowVerdict.NOT_CHECKED
        )
    applied = sorted(
        (r for r in history if r.state == RecordState.APPLIED and r.finished_at),
        key=lambda r: r.started_at,
    )
    snapshots = [s for s in manual_snapshots(env.rds_instance_id) if s.created is not None]
    if not applied:
        found = f"{plural(len(snapshots), 'manual snapshot')}; no migration applied yet"
        return BackupRow(env.name, "Manual Snapshot", expected, found, RowVerdict.OK)
    newest = applied[-1]
    previous_end = applied[-2].finished_at if len(applied) > 1 else None
    before = _tagged_for(snapshots, newest.migration_name, newest.started_at) or _taken_between(
        snapshots, previous_end, newest.started_at
    )
    if before is None:
        found = f"migration {newest.migration_name} was applied with no snapshot before it"
        return BackupRow(env.name, "Manual Snapshot", expected, found, RowVerdict.WRONG)
    found = (
        f"{before.id} ({shown_utc(before.created)}) before {newest.migration_name}"
        f" ({shown_utc(newest.started_at)})"
    )
    return BackupRow(env.name, "Manual Snapshot", expected, found, RowVerdict.OK)


def _tagged_for(
    snapshots: list[ManualSnapshot], migration: str, started: datetime
) -> ManualSnapshot | None:
    """A snapshot the bot took before a deploy names every migration that deploy applied:
    one deploy's later migrations were preceded by it too."""
    tagged = [s for s in snapshots if migration in s.migrations and s.created <= started]
    return tagged[-1] if tagged else None


def _taken_between(
    snapshots: list[ManualSnapshot], after: datetime | None, before: datetime
) -> ManualSnapshot | None:
    taken = [s for s in snapshots if s.created <= before and (after is None or s.created >= after)]
    return taken[-1] if taken else None
