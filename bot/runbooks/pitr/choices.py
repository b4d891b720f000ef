"""Runbook option 3 before the operation: what the recovery modal (or `rollback-bot cli
pitr`) offers (the source instance, its snapshots and restorable window, a suggested restore
point just before the harmful migration) and the check of what was chosen against RDS,
which becomes the operation's params.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING

import psycopg

from bot.aws import rds
from bot.clock import shown_utc
from bot.database import connect
from bot.errors import UserError
from bot.prisma.history import read_history
from bot.settings import Config, Environment

if TYPE_CHECKING:
    pass


MODES = {
    "snapshot": "Latest snapshot before the time",
    "time": "Exact time (point-in-time restore)",
}


def iso_seconds(ts: datetime) -> str:
    return ts.astimezone(UTC).isoformat(timespec="seconds")


def parse_moment(value: str) -> datetime:
    return datetime.fromisoformat(value).astimezone(UTC)


def require_rds(env: Environment) -> str:
    """PITR needs the RDS instance and the secret the application reads its URL from."""
    if not env.rds_instance_id:
        raise UserError(
            f"Point-in-time recovery is not set up for {env.name}: it has no rds_instance_id.",
            f"Add rds_instance_id to [environments.{env.name}] in the bot's config.",
            code="pitr_config",
        )
    if not env.database_secret_id:
        raise UserError(
            f"Point-in-time recovery on {env.name} switches traffic through AWS Secrets"
            " Manager, but the environment has no database_secret_id.",
            'Set database_secret_id (the secret holding {"url": ...}) for it.',
            code="pitr_config",
        )
    return env.rds_instance_id


def harmful_migration(env: Environment) -> tuple[str | None, datetime | None, str]:
    """The failed migration if there is one, else the latest applied one; (None, None, why)
    when the history cannot be read."""
    try:
        with connect(env, connect_timeout=5) as conn:
            history = read_history(conn)
    except (UserError, psycopg.Error) as error:
        return None, None, f"migration history not read ({getattr(error, 'message', 'error')})"
    if not history:
        return None, None, "no migration history"
    failed = [r for r in history if r.failed]
    record = (failed or list(history))[-1]
    return record.migration_name, record.started_at, record.state


@dataclass(frozen=True)
class RecoveryChoices:
    environment: str
    source: rds.Instance
    snapshots: list[rds.Snapshot]
    window: rds.RecoveryWindow
    suggestion: rds.RestorePoint
    suggested_snapshot: rds.Snapshot | None
    default_target: str
    # a recent manual snapshot the requester may choose to reuse as the backup (never the
    # default: a fresh one is taken unless the requester picks this one, its age shown)
    reusable_snapshot: rds.Snapshot | None = None
    now: datetime | None = None


def default_target(source: str, now: datetime) -> str:
    # "<source>-recovery-<yyyymmddhhmm>" within RDS's 63 characters.
    return f"{source[:41].rstrip('-')}-recovery-{now:%Y%m%d%H%M}"


def recovery_choices(env: Environment, config: Config, now: datetime) -> RecoveryChoices:
    source = rds.describe_instance(require_rds(env))
    snapshots = rds.list_snapshots(source.id)
    name, started_at, _ = harmful_migration(env)
    suggestion = rds.suggest_restore_point(
        name, started_at, config.pitr_restore_margin_minutes, now
    )
    return RecoveryChoices(
        env.name,
        source,
        snapshots,
        rds.RecoveryWindow.of(source),
        suggestion,
        rds.latest_snapshot_before(snapshots, suggestion.at),
        default_target(source.id, now),
        rds.recent_manual_snapshot(snapshots, config.pitr_snapshot_max_age_minutes, now),
        now,
    )


FRESH = "fresh"
REUSE = "reuse:"


def snapshot_age(snapshot: rds.Snapshot, now: datetime) -> str:
    if snapshot.created is None:
        return "still being created"
    minutes = max(0, int((now - snapshot.created).total_seconds() // 60))
    return f"taken {minutes} min ago, {shown_utc(snapshot.created, 'minutes')}"


def reused_snapshot(source: str, choice: str | None, max_age: float, now: datetime):
    """The snapshot the requester chose to reuse as the backup (``reuse:<id>``), checked
    again: a manual snapshot of the source, available or being created, recent enough.
    None for the default, a fresh snapshot."""
    if not choice or choice == FRESH:
        return None
    wanted = choice.removeprefix(REUSE)
    recent = rds.recent_manual_snapshot(rds.list_snapshots(source), max_age, now)
    if recent is None or recent.id != wanted:
        raise FormErrors(
            {"backup": f"`{wanted}` is not a recent manual snapshot of `{source}` any more."}
        )
    return recent


class FormErrors(UserError):
    """Field -> message for a modal; nothing was changed."""

    def __init__(self, errors: dict[str, str]):
        super().__init__("; ".join(errors.values()), code="form")
        self.errors = errors


def restore_params(
    env: Environment,
    form: dict[str, str | None],
    now: datetime,
    max_reuse_age_minutes: float = 60,
) -> dict:
    """Checks the modal's choices against RDS and returns the operation's params. Field
    names: mode, date, time, target, instance_class, backup ("fresh", the default, or
    "reuse:<snapshot id>")."""
    errors: dict[str, str] = {}
    mode = form.get("mode") or ""
    if mode not in MODES:
        errors["mode"] = "Choose a snapshot or an exact time."
    try:
        point = datetime.strptime(f"{form.get('date')} {form.get('time')}", "%Y-%m-%d %H:%M")
        point = point.replace(tzinfo=UTC)
    except ValueError:
        errors["time"] = "Pick a date and a time (UTC)."
        point = None
    target = (form.get("target") or "").strip()
    problem = rds.identifier_problem(target)
    if problem:
        errors["target"] = f"Not a valid RDS instance id: {problem}."
    instance_class = (form.get("instance_class") or "").strip()
    problem = rds.instance_class_problem(instance_class)
    if problem:
        errors["instance_class"] = f"Not an instance class: {problem}."
    if errors:
        raise FormErrors(errors)
    source = rds.describe_instance(require_rds(env))
    reuse = reused_snapshot(source.id, form.get("backup"), max_reuse_age_minutes, now)
    target = target.lower()
    if target == source.id or rds.find_instance(target) is not None:
        raise FormErrors({"target": f"An RDS instance `{target}` already exists."})
    snapshot = None
    if mode == "time":
        problem = rds.check_restore_time(rds.RecoveryWindow.of(source), point)
        if problem:
            raise FormErrors({"time": f"Cannot restore to {shown_utc(point)}: {problem}."})
    else:
        snapshot = rds.latest_snapshot_before(rds.list_snapshots(source.id), point)
        if snapshot is None:
            raise FormErrors({"mode": f"No available snapshot before {shown_utc(point)}."})
    return {
        "source": source.id,
        "target": target,
        "instance_class": instance_class,
        "mode": mode,
        "restore_time": iso_seconds(point) if mode == "time" else None,
        "chosen_point": iso_seconds(point),
        "snapshot_id": snapshot.id if snapshot else None,
        "snapshot_created": iso_seconds(snapshot.created) if snapshot else None,
        "backup_reuse_chosen": reuse.id if reuse else None,
    }


def pitr_settings(config: Config) -> dict:
    """The [pitr]/[sql] numbers the steps use, copied into the operation's params at start
    (as the drill does): a step gets no Config, and the report shows what was used."""
    return {
        "poll_seconds": config.pitr_poll_seconds,
        "snapshot_max_age_minutes": config.pitr_snapshot_max_age_minutes,
        "statement_timeout": config.sql_statement_timeout,
        "decision_timeout_seconds": config.sql_decision_timeout_seconds,
    }
