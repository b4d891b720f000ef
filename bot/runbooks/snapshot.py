"""The runbook's "Manual Snapshot | 90 days | Before migrations": `/rollback snapshot` and
`rollback-bot snapshot --before-deploy` take it, tagged with the pending migrations and a
retention date (``snapshot_retention_days``, 90 by default). Taking a snapshot changes
nothing in the database; it is audited (``snapshot_taken``). No Slack here."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from bot.aws.rds import READY
from bot.aws.snapshots import (
    ManualSnapshot,
    create_pre_migration_snapshot,
    manual_snapshots,
    pre_migration_tags,
)
from bot.database import connect
from bot.engine.model import StepInterrupted
from bot.errors import ConflictError, UserError
from bot.prisma.history import RecordState
from bot.prisma.status import MigrationStatus, migration_status
from bot.runbooks.status import migrations_dir
from bot.settings import Environment
from bot.store.records import EventKind
from bot.text import plural

FAILED_SNAPSHOT_STATES = {"failed", "incompatible-restore"}


@dataclass(frozen=True)
class Pending:
    """What is about to be deployed, and the moment a snapshot must be newer than to count
    as taken before it (``fresh_after``; None when the history is empty: any will do)."""

    migrations: tuple[str, ...]
    fresh_after: datetime | None
    since: str  # that moment as a person reads it: "an attempt at X started", ...


def pending_of(env: Environment) -> Pending:
    with connect(env) as conn:
        status = migration_status(conn, migrations_dir(env))
    return pending_in(status)


def pending_in(status: MigrationStatus) -> Pending:
    """The issue's "newer than the first pending migration's start": the database changed
    last when the newest applied migration finished, or when an attempt at a pending one
    started (failed or rolled back: it ran part of its file) or was marked rolled back (the
    runbook's option 1 reverts the partial changes by hand before that mark). The later of
    these; a snapshot older than it misses what the attempt and the fix changed."""
    moments = [
        (r.finished_at, f"the newest applied migration {r.migration_name} finished")
        for r in status.records
        if r.state == RecordState.APPLIED and r.finished_at
    ]
    for r in status.records:
        if r.migration_name in status.pending:
            moments.append((r.started_at, f"an attempt at {r.migration_name} started"))
            if r.rolled_back_at:
                moments.append((r.rolled_back_at, f"{r.migration_name} was marked rolled back"))
    moment, since = max(moments, key=lambda m: m[0], default=(None, "the migration history began"))
    return Pending(tuple(status.pending), moment, since)


def fresh_snapshot(env: Environment, pending: Pending) -> ManualSnapshot | None:
    """The snapshot the deploy guard and `snapshot --before-deploy` keep instead of taking
    one: the newest usable one taken after ``pending.fresh_after``."""
    return snapshot_since(env, pending.fresh_after)


def instance_of(env: Environment) -> str:
    if not env.rds_instance_id:
        raise UserError(
            f"Environment {env.name} has no rds_instance_id in the config, so the bot"
            " cannot snapshot its database.",
            "Add rds_instance_id (the RDS DB instance identifier) to its table.",
            code="config",
        )
    return env.rds_instance_id


def snapshot_id(instance_id: str, now: datetime) -> str:
    return f"{instance_id}-pre-migration-{now:%Y%m%d%H%M%S}"


def retain_until(env: Environment, now: datetime) -> date:
    return (now + timedelta(days=env.snapshot_retention_days)).date()


def create_snapshot(env: Environment, pending: Pending, now: datetime) -> ManualSnapshot:
    """A manual snapshot of ``env``'s instance, tagged with its pending migrations."""
    instance = instance_of(env)
    tags = pre_migration_tags(env.name, retain_until(env, now), list(pending.migrations))
    return create_pre_migration_snapshot(instance, snapshot_id(instance, now), tags)


def take_snapshot(store, env: Environment, actor: str, now: datetime) -> ManualSnapshot:
    """``create_snapshot`` for a person or a pipeline, audited."""
    instance = instance_of(env)
    pending = pending_of(env)
    snapshot = create_snapshot(env, pending, now)
    store.append_audit(
        None,
        actor,
        EventKind.SNAPSHOT_TAKEN,
        f"Manual snapshot {snapshot.id} of {instance} ({env.name}) before"
        f" {plural(len(pending.migrations), 'pending migration')}",
        detail={
            "environment": env.name,
            "snapshot": snapshot.id,
            "instance": instance,
            "pending": list(pending.migrations),
            "retain_until": snapshot.tags.get("rollback-bot:retain-until"),
        },
        at=now,
    )
    return snapshot


def wait_until_available(
    snapshot: ManualSnapshot,
    *,
    timeout_seconds: float,
    poll_seconds: float,
    sleep: Callable[[float], bool],
) -> str:
    """Polls until the snapshot is available (a pipeline deploys only after it is)."""
    from bot.aws.rds import snapshot_status

    waited = 0.0
    while True:
        status = snapshot_status(snapshot.id)
        if status == READY:
            return status
        if status in FAILED_SNAPSHOT_STATES:
            raise ConflictError(f"Snapshot {snapshot.id} failed ({status}).", "Take another.")
        if waited >= timeout_seconds:
            raise ConflictError(
                f"Snapshot {snapshot.id} is still {status} after {waited:.0f} s.",
                "Wait for it in the RDS console before deploying, or run the command again.",
            )
        if not sleep(poll_seconds):
            raise StepInterrupted(f"stopped waiting for snapshot {snapshot.id}: shutting down")
        waited += poll_seconds


def snapshot_since(env: Environment, moment: datetime | None) -> ManualSnapshot | None:
    """The newest usable manual snapshot of ``env`` taken after ``moment`` (any, when None)."""
    usable = [
        s
        for s in manual_snapshots(instance_of(env))
        if s.status not in FAILED_SNAPSHOT_STATES
        and s.status != "deleting"
        # A snapshot still being created may have no creation time yet: it is the newest.
        and (moment is None or s.created is None or s.created >= moment)
    ]
    return usable[-1] if usable else None
