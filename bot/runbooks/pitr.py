"""/rollback pitr: runbook option 3, point-in-time recovery on AWS RDS.

The runbook's steps, in its words: 1. identify recovery point, backup current state first
(the before-checklist's first item, ticked by the bot), 2. restore (destructive, approved),
wait for the instance to be available, 3. verify restored database, 4. switch traffic
(destructive, approved; undoable; #engineering told through a notify card), 5. re-apply
safe migrations (option 1's status on the restored database, the requester chooses, the
deploy is destructive and approved), 6. cleanup: a separate operation behind its own
approval (``CLEANUP``), scheduled by bot/pitr_cleanup.py after the switch, as is the undo
of the switch (``UNDO_SWITCH``).

Waiting for the restore (minutes to hours on RDS) is a step that polls every
``pitr_poll_seconds``, with everything it knows (the restore's target id, when it was
requested, the RDS events already reported) kept in the operation's params through
ctx.record. It is idempotent: at shutdown ctx.sleep returns False and the step raises
StepInterrupted (it stays "running"); at the next start engine.recover() reruns it and
it carries on from the recorded target id; the restore step itself finds its own
instance by the operation tag instead of restoring twice
(tests/scenario/test_pitr_recovery.py). The state is kept in the store rather than in an
APScheduler job: bot/scheduler.py's jobs fire once at a date and the engine has no "step
parked until a job fires" state. A killed process is handled by recover() the same way.
"""

from __future__ import annotations

import dataclasses
import re
import shutil
import tempfile
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

import psycopg

from bot.aws import rds, secrets_manager
from bot.clock import shown_utc, utcnow
from bot.database import connect, connect_url, database_url
from bot.engine.model import Runbook, Step, StepContext, StepInterrupted
from bot.errors import ConflictError, UserError
from bot.migrations import assess, status_card_data
from bot.prisma.deploy import DeployEvent, DeployEventKind, deploy
from bot.prisma.history import read_history
from bot.prisma.migrations_dir import LOCK_FILE
from bot.redaction import Secret, redact_url
from bot.settings import Config, Environment, VerificationQuery

if TYPE_CHECKING:
    from bot.store import Operation

RESTORE_TIMEOUT = timedelta(hours=12)
MODES = {
    "snapshot": "Latest snapshot before the time",
    "time": "Exact time (point-in-time restore)",
}


def _iso(ts: datetime) -> str:
    return ts.astimezone(UTC).isoformat(timespec="seconds")


def _parse(value: str) -> datetime:
    return datetime.fromisoformat(value).astimezone(UTC)


# --- before the operation: what the modal offers, and checking what was chosen -------------


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
    )


class FormErrors(UserError):
    """Field -> message for a modal; nothing was changed."""

    def __init__(self, errors: dict[str, str]):
        super().__init__("; ".join(errors.values()), code="form")
        self.errors = errors


def restore_params(env: Environment, form: dict[str, str | None], now: datetime) -> dict:
    """Checks the modal's choices against RDS and returns the operation's params. Field
    names: mode, date, time, target, instance_class."""
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
        "restore_time": _iso(point) if mode == "time" else None,
        "chosen_point": _iso(point),
        "snapshot_id": snapshot.id if snapshot else None,
        "snapshot_created": _iso(snapshot.created) if snapshot else None,
    }


# --- step 1: identify the recovery point ---------------------------------------------------


def _identify_recovery_point(ctx: StepContext) -> str:
    p = ctx.params
    source = rds.describe_instance(p["source"])
    snapshots = rds.list_snapshots(source.id)
    window = rds.RecoveryWindow.of(source)
    if p["mode"] == "time":
        problem = rds.check_restore_time(window, _parse(p["restore_time"]))
        if problem:
            raise UserError(f"Cannot restore to {p['restore_time']}: {problem}.")
    elif not any(s.id == p["snapshot_id"] and s.status == rds.READY for s in snapshots):
        raise UserError(f"Snapshot `{p['snapshot_id']}` is no longer available.")
    ctx.record(source_settings=source.copied_settings(), source_class=source.instance_class)
    if "harmful_migration" not in p:
        # Read from the live database now: re-applying migrations later leaves this one out.
        name, _, state = harmful_migration(ctx.environment)
        ctx.record(harmful_migration=name, harmful_migration_state=state)
    ctx.card(
        "pitr_recovery_point",
        f"Recovery point for {source.id}",
        {
            "source": source.id,
            "mode": p["mode"],
            "chosen_point": p["chosen_point"],
            "snapshot_id": p.get("snapshot_id"),
            "latest_restorable": _iso(window.latest) if window.latest else None,
            "earliest_restorable": _iso(window.earliest) if window.earliest else None,
            "retention_days": window.retention_days,
            "snapshots": [
                [s.id, s.type, _iso(s.created) if s.created else None, s.status]
                for s in snapshots[-10:]
            ],
            "snapshot_count": len(snapshots),
        },
    )
    what = p["snapshot_id"] if p["mode"] == "snapshot" else p["restore_time"]
    return f"restore {source.id} from {what}"


# --- step 2: backup current state ------------------------------------------------------------


def _backup_current_state(ctx: StepContext) -> str:
    p = ctx.params
    snapshot_id = p.get("backup_snapshot_id")
    if snapshot_id is None:  # not chosen yet (a rerun after a restart keeps the first choice)
        now = utcnow()
        recent = rds.recent_manual_snapshot(
            rds.list_snapshots(p["source"]), p["snapshot_max_age_minutes"], now
        )
        if recent is not None:
            snapshot_id, reused = recent.id, True
        else:
            snapshot_id, reused = rds.backup_snapshot_id(p["source"], now), False
            rds.create_snapshot(p["source"], snapshot_id)
        ctx.record(backup_snapshot_id=snapshot_id, backup_reused=reused)
        ctx.say(
            f"Manual snapshot `{snapshot_id}` is newer than"
            f" {p['snapshot_max_age_minutes']:g} min: reused."
            if reused
            else f"Taking manual snapshot `{snapshot_id}` of `{p['source']}`."
        )
    started = time.monotonic()
    while (status := rds.snapshot_status(snapshot_id)) != rds.READY:
        if status in ("failed", "deleted", "deleting"):
            raise UserError(f"Backup snapshot `{snapshot_id}` is {status}; nothing was restored.")
        ctx.progress(0, 1, f"snapshot {snapshot_id}: {status}, {_elapsed(started)}")
        if not ctx.sleep(p["poll_seconds"]):
            raise StepInterrupted()
    ctx.tick_checklist("before", "backup", f"snapshot {snapshot_id}")
    return f"snapshot {snapshot_id} available"


# --- step 3: restore ------------------------------------------------------------------------------


def _restore_plan(op: Operation) -> rds.RestorePlan:
    p = op.params
    return rds.RestorePlan(
        operation_id=op.id,
        source=p["source"],
        target=p["target"],
        instance_class=p["instance_class"],
        mode=p["mode"],
        snapshot_id=p.get("snapshot_id"),
        restore_time=_parse(p["restore_time"]) if p.get("restore_time") else None,
        settings=p.get("source_settings") or {},
    )


def plan_restore(op: Operation, env: Environment) -> str:
    plan = _restore_plan(op)
    s = plan.settings
    method, _ = plan.request()
    origin = (
        f"snapshot: {plan.snapshot_id} (taken {op.params.get('snapshot_created')})"
        if plan.mode == "snapshot"
        else f"point in time: {_iso(plan.restore_time)}"
    )
    tags = ", ".join(f"{k}={v}" for k, v in s.get("tags", [])) or "(none)"
    return "\n".join(
        [
            f"POINT-IN-TIME RECOVERY on environment {env.name} (operation {op.id})",
            f"RDS call: {method}",
            f"source instance: {plan.source}",
            f"target instance (new): {plan.target}",
            origin,
            f"instance class: {plan.instance_class}",
            "copied from the source (a restore otherwise gets the defaults):",
            f"  VPC security groups: {', '.join(s.get('vpc_security_group_ids', []))}",
            f"  DB subnet group: {s.get('subnet_group')}",
            f"  DB parameter group: {s.get('parameter_group')}",
            f"  Multi-AZ: {'yes' if s.get('multi_az') else 'no'}",
            f"  port: {s.get('port')}",
            f"  tags: {tags} (+ {rds.OPERATION_TAG}={op.id})",
            f"backup of the current state: snapshot {op.params.get('backup_snapshot_id')}",
            f"the source instance {plan.source} is not changed; traffic is not switched yet",
        ]
    )


def _restore(ctx: StepContext) -> str:
    if "restore_requested_at" not in ctx.params:
        ctx.record(restore_requested_at=_iso(utcnow() - timedelta(seconds=1)))
    instance = rds.start_restore(_restore_plan(ctx.operation))
    ctx.record(restore_target=instance.id)
    return f"RDS is restoring {instance.id} (status {instance.status})"


# --- step 4: wait for the restore, with progress ------------------------------------------------


def _wait_for_restore(ctx: StepContext) -> str:
    p = ctx.params
    target, requested = p["restore_target"], _parse(p["restore_requested_at"])
    reported = int(p.get("restore_events_reported", 0))
    while True:
        progress = rds.restore_progress(target, requested)
        for at, message in progress.events[reported:]:
            ctx.say(f"RDS event {at.astimezone(UTC):%H:%M:%S}: {message}")
        if len(progress.events) > reported:
            reported = len(progress.events)
            ctx.record(restore_events_reported=reported)
        elapsed = utcnow() - requested
        text = f"{target}: {progress.status}, {_duration(elapsed)} elapsed"
        if progress.events:
            text += f", last event: {progress.events[-1][1]}"
        ctx.progress(1 if progress.ready else 0, 1, text)
        if progress.ready:
            ctx.record(restored_address=progress.address, restored_port=progress.port)
            return f"{target} is available after {_duration(elapsed)}"
        if progress.failed:
            raise UserError(
                f"The restore of {target} ended in state {progress.status}.",
                "See the RDS events above; traffic was not switched.",
            )
        if elapsed > RESTORE_TIMEOUT:
            raise UserError(f"{target} is still {progress.status} after {_duration(elapsed)}.")
        if not ctx.sleep(p["poll_seconds"]):
            raise StepInterrupted()


# --- step 5: verify the restored database ------------------------------------------------------


def restored_url(env: Environment, params: dict) -> Secret:
    """The environment's URL (credentials, database, parameters) on the restored endpoint."""
    return secrets_manager.url_with_endpoint(
        database_url(env), params["restored_address"], params.get("restored_port")
    )


def _connect_read_only(url: Secret, label: str, statement_timeout: str) -> psycopg.Connection:
    conn = connect_url(
        url,
        f"the {label} ({redact_url(url.reveal())})",
        "Check that the instance is available and its security groups let the bot in.",
    )
    # Verification only reads: a query that tries to write fails instead of changing data.
    conn.execute("SET default_transaction_read_only = on")
    conn.execute("SELECT set_config('statement_timeout', %s, false)", (statement_timeout,))
    return conn


def run_queries(conn: psycopg.Connection, queries: tuple[VerificationQuery, ...]) -> list[dict]:
    results = []
    for q in queries:
        try:
            row = conn.execute(q.sql).fetchone()
            value = None if row is None else row[0]
            results.append({"value": _shown(value), "ok": _meets(value, q.expect), "error": None})
        except psycopg.Error as error:
            results.append({"value": None, "ok": False, "error": str(error).splitlines()[0]})
    return results


def _meets(value, expect: str | None) -> bool:
    """expect is a comparison such as "> 0" (checked by bot/settings.py)."""
    if not expect:
        return True
    match = re.match(r"^\s*(!=|<=|>=|=|<|>)\s*(-?\d+(?:\.\d+)?)\s*$", expect)
    try:
        left, right = float(value), float(match.group(2))
    except (TypeError, ValueError, AttributeError):
        return False
    return {
        "=": left == right,
        "!=": left != right,
        "<": left < right,
        "<=": left <= right,
        ">": left > right,
        ">=": left >= right,
    }[match.group(1)]


def _shown(value) -> str:
    return "NULL" if value is None else str(value)[:200]


def _verify_restored(ctx: StepContext) -> str:
    env, timeout = ctx.environment, ctx.params["statement_timeout"]
    queries = env.verification_queries
    if not queries:
        ctx.say(
            f"No verification queries are configured for {env.name}: nothing was checked."
            " Add [[environments.NAME.verification_queries]] (runbook: prepare verification"
            " queries)."
        )
        return "no verification queries configured"
    with _connect_read_only(database_url(env), f"current {env.name} database", timeout) as conn:
        current = run_queries(conn, queries)
    with _connect_read_only(restored_url(env, ctx.params), "restored instance", timeout) as conn:
        restored = run_queries(conn, queries)
    rows = [
        {"name": q.name, "sql": q.sql, "expect": q.expect, "current": c, "restored": r}
        for q, c, r in zip(queries, current, restored, strict=True)
    ]
    failed = [row["name"] for row in rows if not row["restored"]["ok"]]
    ctx.record(verification_failed=failed)
    ctx.card(
        "pitr_verification",
        f"Verification: current {env.name} database vs restored {ctx.params['restore_target']}",
        {"rows": rows, "target": ctx.params["restore_target"], "environment": env.name},
    )
    if failed:
        raise UserError(
            f"Verification failed on the restored instance: {', '.join(failed)}.",
            "Traffic was not switched. Inspect the restored instance, or restore another point.",
        )
    return f"{len(rows)} verification queries passed on {ctx.params['restore_target']}"


# --- step 6: switch traffic --------------------------------------------------------------------


def plan_switch(op: Operation, env: Environment) -> str:
    p = op.params
    return "\n".join(
        [
            f"SWITCH TRAFFIC on environment {env.name} (operation {op.id})",
            f"Secrets Manager secret: {env.database_secret_id}",
            f'new "url": host {p.get("restored_address")} port {p.get("restored_port")}'
            f" (restored instance {p.get('restore_target')}); user, password, database and"
            " the secret's other keys unchanged",
            "the current version stays available as AWSPREVIOUS; Undo switch makes it"
            " current again (its own approval)",
        ]
    )


def _switch_traffic(ctx: StepContext) -> str:
    env, p = ctx.environment, ctx.params
    before = database_url(env)
    after = restored_url(env, p)
    switch = secrets_manager.switch_url(env.database_secret_id, after, ctx.operation.id)
    ctx.record(
        switch_secret_id=switch.secret_id,
        switch_previous_version=switch.previous_version_id,
        switch_version=switch.switched_version_id,
        switch_from=secrets_manager.shown(before),
        switch_to=secrets_manager.shown(after),
    )
    ctx.card(
        "pitr_switch",
        f"Traffic switched to {p['restore_target']}",
        {
            "operation": ctx.operation.id,
            "environment": env.name,
            "secret_id": switch.secret_id,
            "from": secrets_manager.shown(before),
            "to": secrets_manager.shown(after),
            "previous_version": switch.previous_version_id,
            "version": switch.switched_version_id,
            "old_instance": p["source"],
        },
    )
    ctx.say(
        f"Applications that read `{switch.secret_id}` now get the restored instance; restart"
        " or redeploy them if they cache the URL."
    )
    # The runbook: "#engineering is told". A notify card goes to the environment's
    # notify_channel rather than the incident thread (bot/slack/cards.py).
    ctx.card(
        "pitr_switch_notice",
        f"{env.name}: traffic switched to the restored database {p['restore_target']}",
        {
            "environment": env.name,
            "operation": ctx.operation.id,
            "requester": ctx.operation.requester,
            "target": p["restore_target"],
            "old_instance": p["source"],
            "chosen_point": p["chosen_point"],
            "secret_id": switch.secret_id,
        },
    )
    return f"secret {switch.secret_id} now points at {p['restore_target']}"


# --- step 7: re-apply safe migrations ------------------------------------------------------------


def restored_environment(env: Environment, params: dict) -> Environment:
    """The environment as seen on the restored instance (what the verify step connects
    to), so option 1's status and Prisma's deploy run there and nowhere else."""
    return dataclasses.replace(
        env,
        database_url=restored_url(env, params),
        database_url_env=None,
        database_secret_id=None,
    )


def _choose_migrations(ctx: StepContext) -> str:
    env, p = ctx.environment, ctx.params
    if "reapply_migrations" in p:  # rerun after a restart: the choice stands
        return f"chosen: {', '.join(p['reapply_migrations']) or 'none'}"
    if env.migrations_dir is None:
        ctx.record(reapply_migrations=[], reapply_left_out=[])
        ctx.say(
            f"{env.name} has no migrations_dir in the bot's config: re-apply the migrations"
            " after the restore point with your usual deploy, leaving the harmful one out."
        )
        return "no migrations_dir configured"
    restored = restored_environment(env, p)
    assessment = assess(restored)
    ctx.card(
        "migration_status",
        f"Migration status on the restored {p['restore_target']}",
        status_card_data(f"{env.name} (restored {p['restore_target']})", assessment),
    )
    pending = list(assessment.status.pending)
    harmful = p.get("harmful_migration")
    safe = [m for m in pending if m != harmful]
    if not pending:
        ctx.record(reapply_migrations=[], reapply_left_out=[])
        return "no migration after the restore point"
    choices = {}
    if safe:
        choices["safe"] = f"Deploy {len(safe)} safe migration(s)"
    if harmful in pending:
        choices["all"] = f"Deploy all {len(pending)}, including {harmful}"
    choices["none"] = "Deploy none"
    listed = "\n".join(
        f"• `{m}`" + (" (the failed or harmful one: left out)" if m == harmful else "")
        for m in pending
    )
    choice = ctx.ask(
        f"Migrations after the restore point, missing on {p['restore_target']}:\n{listed}\n"
        "Which should be deployed? Deploying needs an approval in protected environments.",
        choices,
        timeout=p.get("decision_timeout_seconds", 300),
        default="none",
    )
    chosen = {"safe": safe, "all": pending, "none": []}[choice]
    left_out = [m for m in pending if m not in chosen]
    ctx.record(reapply_migrations=chosen, reapply_left_out=left_out)
    return f"chosen: {', '.join(chosen) or 'none'}"


def plan_reapply(op: Operation, env: Environment) -> str:
    p = op.params
    left_out = p.get("reapply_left_out") or []
    return "\n".join(
        [
            f"RE-APPLY MIGRATIONS on environment {env.name} (operation {op.id})",
            f"database: the restored instance {p.get('restore_target')}"
            f" (host {p.get('restored_address')} port {p.get('restored_port')})",
            "prisma migrate deploy of exactly these migrations, in this order:",
            *(f"  {m}" for m in p.get("reapply_migrations") or []),
            "left out (stay pending; fix or remove them before the next deploy): "
            + (", ".join(left_out) or "none"),
        ]
    )


def _reapply_migrations(ctx: StepContext) -> str:
    env, p = ctx.environment, ctx.params
    chosen = p["reapply_migrations"]

    def on_progress(event: DeployEvent) -> None:
        done = event.index - (event.kind == DeployEventKind.STARTED)
        ctx.progress(done, event.total, f"{event.migration}: {event.kind}")
        if event.kind == DeployEventKind.FAILED:
            ctx.say(f"`{event.migration}` failed: {event.error}")
        elif event.kind == DeployEventKind.SUCCEEDED:
            ctx.say(f"Applied `{event.migration}` ({event.index}/{event.total}).")

    with tempfile.TemporaryDirectory(prefix="pitr-reapply-") as tmp:
        # Prisma deploys every pending migration of a directory; a directory holding only
        # the chosen ones (and the lock file) is how the others are left out.
        only_chosen = _chosen_directory(env.migrations_dir, chosen, Path(tmp))
        with connect(restored_environment(env, p)) as conn:
            result = deploy(conn, only_chosen, on_progress=on_progress)
    left_out = p.get("reapply_left_out") or []
    if left_out:
        ctx.say(
            f"Left out: {', '.join(f'`{m}`' for m in left_out)}. They are still pending:"
            " remove or fix them in the repository, or the next `prisma migrate deploy`"
            " applies them again."
        )
    return f"deployed {len(result.applied)}: {', '.join(result.applied) or 'none'}"


def _chosen_directory(source: Path, names: list[str], into: Path) -> Path:
    for name in names:
        shutil.copytree(source / name, into / name)
    if (source / LOCK_FILE).exists():
        shutil.copy2(source / LOCK_FILE, into / LOCK_FILE)
    return into


def pitr_settings(config: Config) -> dict:
    """The [pitr]/[sql] numbers the steps use, copied into the operation's params at start
    (as the drill does): a step gets no Config, and the report shows what was used."""
    return {
        "poll_seconds": config.pitr_poll_seconds,
        "snapshot_max_age_minutes": config.pitr_snapshot_max_age_minutes,
        "statement_timeout": config.sql_statement_timeout,
        "decision_timeout_seconds": config.sql_decision_timeout_seconds,
    }


def _elapsed(started: float) -> str:
    return _duration(timedelta(seconds=time.monotonic() - started))


def _duration(delta: timedelta) -> str:
    seconds = max(0, int(delta.total_seconds()))
    return f"{seconds // 60}m{seconds % 60:02d}s"


def _describe(p: dict) -> str:
    origin = (
        f"snapshot `{p.get('snapshot_id')}`"
        if p.get("mode") == "snapshot"
        else f"the point in time {p.get('restore_time')}"
    )
    return (
        f"Point-in-time recovery of `{p.get('source')}` into new instance"
        f" `{p.get('target')}` from {origin}."
    )


PITR = Runbook(
    name="pitr",
    title="point-in-time recovery",
    steps=(
        Step(
            "identify_recovery_point",
            "Identify recovery point",
            _identify_recovery_point,
            idempotent=True,
        ),
        Step(
            "backup_current_state",
            "Backup current state (manual snapshot)",
            _backup_current_state,
            idempotent=True,
        ),
        Step(
            "restore",
            "Restore to a new RDS instance",
            _restore,
            destructive=True,
            idempotent=True,
            plan=plan_restore,
        ),
        Step(
            "wait_for_restore",
            "Wait for the instance to be available",
            _wait_for_restore,
            idempotent=True,
        ),
        Step("verify_restored", "Verify restored database", _verify_restored, idempotent=True),
        Step(
            "switch_traffic",
            "Switch traffic (Secrets Manager)",
            _switch_traffic,
            destructive=True,
            plan=plan_switch,
        ),
        Step(
            "choose_migrations",
            "Re-apply safe migrations: choose",
            _choose_migrations,
            idempotent=True,
        ),
        Step(
            "reapply_migrations",
            "Re-apply safe migrations: deploy",
            _reapply_migrations,
            destructive=True,
            # A rerun is Prisma's own: applied ones are skipped, a half-applied one is a
            # failed row and deploy refuses it (P3009).
            idempotent=True,
            plan=plan_reapply,
            applies=lambda p: bool(p.get("reapply_migrations")),
        ),
    ),
    describe=lambda p: _describe(p),
)


# --- undo switch: its own operation and approval -------------------------------------------------


def undo_params(pitr_op: Operation) -> dict:
    p = pitr_op.params
    if not p.get("switch_version"):
        raise ConflictError(f"Operation {pitr_op.id} has not switched traffic; nothing to undo.")
    switch = _switch_of(p)
    current = secrets_manager.current_version(switch.secret_id)
    if current.version_id == switch.previous_version_id:
        raise ConflictError("The switch is already undone: the previous version is current.")
    if current.version_id != switch.switched_version_id:
        raise ConflictError(
            f"Secret `{switch.secret_id}` changed after the switch; undoing would discard"
            " that change, so nothing was started.",
            "Check the secret's versions in the AWS console.",
        )
    keys = (
        "switch_secret_id",
        "switch_previous_version",
        "switch_version",
        "switch_from",
        "switch_to",
        "restore_target",
        "source",
    )
    return {"pitr_operation": pitr_op.id, **{k: p.get(k) for k in keys}}


def _switch_of(p: dict) -> secrets_manager.Switch:
    return secrets_manager.Switch(
        p["switch_secret_id"], p["switch_previous_version"], p["switch_version"]
    )


def _confirm_switch_state(ctx: StepContext) -> str:
    switch = _switch_of(ctx.params)
    current = secrets_manager.current_version(switch.secret_id)
    if current.version_id != switch.switched_version_id:
        raise ConflictError(
            f"Secret `{switch.secret_id}` is not at the switched version any more; nothing done."
        )
    ctx.tick_checklist(
        "before",
        "backup",
        f"previous secret version {switch.previous_version_id} kept by Secrets Manager",
    )
    return f"secret is at the switched version {switch.switched_version_id}"


def plan_undo(op: Operation, env: Environment) -> str:
    p = op.params
    return "\n".join(
        [
            f"UNDO TRAFFIC SWITCH on environment {env.name} (operation {op.id},"
            f" switch made by {p.get('pitr_operation')})",
            f"Secrets Manager secret: {p.get('switch_secret_id')}",
            f"make version {p.get('switch_previous_version')} AWSCURRENT again"
            f" (url {p.get('switch_from')})",
            f"version {p.get('switch_version')} (url {p.get('switch_to')}) becomes AWSPREVIOUS",
        ]
    )


def _undo_switch(ctx: StepContext) -> str:
    return secrets_manager.undo_switch(_switch_of(ctx.params))


UNDO_SWITCH = Runbook(
    name="pitr_undo_switch",
    title="undo of the PITR traffic switch",
    steps=(
        Step(
            "confirm_switch_state",
            "Check the secret is at the switched version",
            _confirm_switch_state,
            idempotent=True,
        ),
        Step(
            "undo_switch",
            "Restore the previous secret version",
            _undo_switch,
            destructive=True,
            idempotent=True,
            plan=plan_undo,
        ),
    ),
    describe=lambda p: f"Undo the traffic switch of `{p.get('pitr_operation')}`.",
)


# --- cleanup: delete the old instance, with a final snapshot unless explicitly skipped ---------


def cleanup_params(
    pitr_op: Operation, now: datetime, skip_final_snapshot_by: str | None = None
) -> dict:
    """``skip_final_snapshot_by``: the user who explicitly chose to delete without a final
    snapshot (shown as a warning in the plan); None keeps the final snapshot."""
    p = pitr_op.params
    if not p.get("switch_version"):
        raise ConflictError(
            f"Operation {pitr_op.id} has not switched traffic: the old instance is still the"
            " live one and is not deleted."
        )
    rds.describe_instance(p["source"])
    return {
        "pitr_operation": pitr_op.id,
        "old_instance": p["source"],
        "final_snapshot_id": None
        if skip_final_snapshot_by
        else rds.final_snapshot_id(p["source"], now),
        "skip_final_snapshot_by": skip_final_snapshot_by,
        "switch_secret_id": p["switch_secret_id"],
    }


def _check_old_instance(ctx: StepContext) -> str:
    p = ctx.params
    old = rds.describe_instance(p["old_instance"])
    url = secrets_manager.current_version(p["switch_secret_id"]).url.reveal()
    if old.address and f"@{old.address}" in url:
        raise ConflictError(
            f"Secret `{p['switch_secret_id']}` points at `{old.id}` again (the switch was"
            " undone?): it is live and is not deleted."
        )
    if p.get("final_snapshot_id"):
        ctx.tick_checklist(
            "before", "backup", f"final snapshot {p['final_snapshot_id']} is taken by the deletion"
        )
    else:  # no bot-made backup: a person decides whether the retained backups are enough
        ctx.say(
            f":warning: `{old.id}` will be deleted WITHOUT a final snapshot, as"
            f" <@{p['skip_final_snapshot_by']}> chose. Its automated backups are kept until"
            " their retention ends."
        )
    return f"{old.id} is not the instance the secret points at"


def plan_cleanup(op: Operation, env: Environment) -> str:
    p = op.params
    if p.get("final_snapshot_id"):
        snapshot = (
            f"final snapshot: {p.get('final_snapshot_id')} (SkipFinalSnapshot=false: the"
            " runbook's --skip-final-snapshot would throw away the last copy)"
        )
    else:
        snapshot = (
            "WARNING: NO final snapshot (SkipFinalSnapshot=true), explicitly chosen by"
            f" {p.get('skip_final_snapshot_by')}: the last copy of this instance's data is"
            " thrown away"
        )
    return "\n".join(
        [
            f"DELETE OLD INSTANCE on environment {env.name} (operation {op.id})",
            f"RDS call: delete_db_instance {p.get('old_instance')}",
            snapshot,
            "automated backups kept (DeleteAutomatedBackups=false)",
        ]
    )


def _delete_old_instance(ctx: StepContext) -> str:
    p = ctx.params
    rds.delete_instance(p["old_instance"], p.get("final_snapshot_id"))
    if p.get("final_snapshot_id"):
        return f"{p['old_instance']} deleting; final snapshot {p['final_snapshot_id']}"
    return f"{p['old_instance']} deleting without a final snapshot"


CLEANUP = Runbook(
    name="pitr_cleanup",
    title="PITR cleanup (delete the old instance)",
    steps=(
        Step(
            "check_old_instance",
            "Check the old instance is not live",
            _check_old_instance,
            idempotent=True,
        ),
        Step(
            "delete_old_instance",
            "Delete the old instance",
            _delete_old_instance,
            destructive=True,
            plan=plan_cleanup,
        ),
    ),
    describe=lambda p: (
        f"Delete the old instance `{p.get('old_instance')}`, keeping final snapshot"
        f" `{p.get('final_snapshot_id')}`."
        if p.get("final_snapshot_id")
        else f"Delete the old instance `{p.get('old_instance')}` WITHOUT a final snapshot."
    ),
)
