"""/rollback pitr: runbook option 3, point-in-time recovery on AWS RDS; the ``PITR`` runbook.

The runbook's steps, in its words: 1. identify recovery point, backup current state first
(the before-checklist's first item, ticked by the bot), 2. restore (destructive, approved),
wait for the instance to be available, 3. verify restored database (verify.py), 4. switch
traffic (destructive, approved; undoable; #engineering told through a notify card),
5. re-apply safe migrations (reapply.py: option 1's status on the restored database, the
requester chooses, the deploy is destructive and approved), 6. cleanup: a separate
operation behind its own approval (cleanup.py), scheduled after the switch
(cleanup_schedule.py), as is the undo of the switch (undo_switch.py). What the modal
offers and the check of what was chosen are in choices.py.

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

import time
from datetime import UTC, timedelta
from typing import TYPE_CHECKING

from bot.aws import rds, secrets_manager
from bot.clock import utcnow
from bot.database import database_url
from bot.engine.model import Runbook, Step, StepContext, StepInterrupted
from bot.errors import UserError
from bot.runbooks.pitr.choices import harmful_migration, iso_seconds, parse_moment
from bot.runbooks.pitr.params import PitrParams
from bot.runbooks.pitr.reapply import CHOOSE_MIGRATIONS, REAPPLY_MIGRATIONS
from bot.runbooks.pitr.undo_switch import switch_card_key
from bot.runbooks.pitr.verify import VERIFY_RESTORED, restored_url
from bot.settings import Environment
from bot.store.records import CardKind

if TYPE_CHECKING:
    from bot.store.records import Operation

RESTORE_TIMEOUT = timedelta(hours=12)


# --- step 1: identify the recovery point ---------------------------------------------------


def _identify_recovery_point(ctx: StepContext) -> str:
    p = ctx.params
    source = rds.describe_instance(p["source"])
    snapshots = rds.list_snapshots(source.id)
    window = rds.RecoveryWindow.of(source)
    if p["mode"] == "time":
        problem = rds.check_restore_time(window, parse_moment(p["restore_time"]))
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
        CardKind.PITR_RECOVERY_POINT,
        f"Recovery point for {source.id}",
        {
            "source": source.id,
            "mode": p["mode"],
            "chosen_point": p["chosen_point"],
            "snapshot_id": p.get("snapshot_id"),
            "latest_restorable": iso_seconds(window.latest) if window.latest else None,
            "earliest_restorable": iso_seconds(window.earliest) if window.earliest else None,
            "retention_days": window.retention_days,
            "snapshots": [
                [s.id, s.type, iso_seconds(s.created) if s.created else None, s.status]
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
        if p.get("backup_reuse_chosen"):  # only ever the requester's explicit choice
            snapshot_id, reused = p["backup_reuse_chosen"], True
        else:  # the default: the state as it is now, not an older snapshot of it
            snapshot_id, reused = rds.backup_snapshot_id(p["source"], now), False
            rds.create_snapshot(p["source"], snapshot_id)
        ctx.record(backup_snapshot_id=snapshot_id, backup_reused=reused)
        ctx.say(
            f"Reusing manual snapshot `{snapshot_id}` as the backup, as"
            f" <@{ctx.operation.requester}> chose: changes made after it was taken are not"
            " in it."
            if reused
            else f"Taking a fresh manual snapshot `{snapshot_id}` of `{p['source']}`."
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
        restore_time=parse_moment(p["restore_time"]) if p.get("restore_time") else None,
        settings=p.get("source_settings") or {},
    )


def plan_restore(op: Operation, env: Environment) -> str:
    plan = _restore_plan(op)
    s = plan.settings
    method, _ = plan.request()
    origin = (
        f"snapshot: {plan.snapshot_id} (taken {op.params.get('snapshot_created')})"
        if plan.mode == "snapshot"
        else f"point in time: {iso_seconds(plan.restore_time)}"
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
        ctx.record(restore_requested_at=iso_seconds(utcnow() - timedelta(seconds=1)))
    instance = rds.start_restore(_restore_plan(ctx.operation))
    ctx.record(restore_target=instance.id)
    return f"RDS is restoring {instance.id} (status {instance.status})"


# --- step 4: wait for the restore, with progress ------------------------------------------------


def _wait_for_restore(ctx: StepContext) -> str:
    p = ctx.params
    target, requested = p["restore_target"], parse_moment(p["restore_requested_at"])
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
        CardKind.PITR_SWITCH,
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
            "card_key": switch_card_key(ctx.operation.id),
        },
    )
    ctx.say(
        f"Applications that read `{switch.secret_id}` now get the restored instance; restart"
        " or redeploy them if they cache the URL."
    )
    # The runbook: "#engineering is told". A notify card goes to the environment's
    # notify_channel rather than the incident thread (bot/slack/cards.py).
    ctx.card(
        CardKind.PITR_SWITCH_NOTICE,
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
        VERIFY_RESTORED,
        Step(
            "switch_traffic",
            "Switch traffic (Secrets Manager)",
            _switch_traffic,
            destructive=True,
            plan=plan_switch,
        ),
        CHOOSE_MIGRATIONS,
        REAPPLY_MIGRATIONS,
    ),
    describe=lambda p: _describe(p),
    params=PitrParams,
)
