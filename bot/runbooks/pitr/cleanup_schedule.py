"""Runbook option 3, "Cleanup": the deletion of the old instance, scheduled after a traffic
switch.

When a point-in-time recovery has switched traffic, deleting the old instance is scheduled
``[pitr] cleanup_delay_days`` later (a row in ``scheduled_jobs``, run by bot/scheduler.py,
so it survives restarts). When it comes due, the cleanup operation (``CLEANUP``, cleanup.py) is
started for the recovery's requester: it needs the before-checklist and an approval like
any destructive step. Until then the job can be cancelled, and the final snapshot can be
explicitly skipped, in a protected environment by an approver only (a warning everywhere it
shows).

No Slack here: the cards and buttons are in bot/slack/pitr_views.py and handlers/pitr.py.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from datetime import timedelta

from bot.clock import iso
from bot.engine.engine import Engine
from bot.engine.model import BOT_ACTOR, Event
from bot.errors import ConflictError, NotFound, PermissionDenied, UserError
from bot.runbooks.pitr.cleanup import cleanup_params
from bot.store.records import CardKind, EventKind, JobKind, Operation, ScheduledJob


def job_id(pitr_op_id: str) -> str:
    return f"pitr-cleanup:{pitr_op_id}"


def after_switch(engine: Engine, sync: Callable[[], None]) -> Callable[[Event], None]:
    """An engine listener: the switch step's success schedules the cleanup. ``sync`` hands
    the new row to APScheduler at once (Scheduler.sync)."""

    def on_event(event: Event) -> None:
        if event.kind != EventKind.STEP_SUCCEEDED or event.step_id != "switch_traffic":
            return
        op = engine.store.operation(event.operation_id)
        if op is not None and op.runbook == "pitr":
            schedule(engine, op)
            sync()

    return on_event


def schedule(engine: Engine, pitr_op: Operation) -> ScheduledJob:
    run_at = engine.clock() + timedelta(days=engine.config.pitr_cleanup_delay_days)
    job = ScheduledJob(
        id=job_id(pitr_op.id),
        operation_id=pitr_op.id,
        kind=JobKind.PITR_CLEANUP_DUE,
        run_at=iso(run_at),
        payload={"pitr_operation": pitr_op.id, "skip_final_snapshot_by": None},
    )
    engine.store.schedule_job(job)
    _card(engine, pitr_op, job, "Cleanup scheduled")
    return job


def pending_job(engine: Engine, pitr_op_id: str) -> ScheduledJob:
    job = engine.store.job(job_id(pitr_op_id))
    if job is None:
        raise NotFound(f"No cleanup is scheduled for {pitr_op_id}.")
    if job.done_at:
        raise ConflictError(
            "This cleanup already ran or was cancelled; nothing changed.", code="cleanup_done"
        )
    return job


def cancel(engine: Engine, pitr_op_id: str, user: str) -> None:
    pitr_op = _pitr_operation(engine, pitr_op_id)
    _check_may_change(engine, pitr_op, user)
    pending_job(engine, pitr_op_id)
    # The row is marked done: the scheduler skips a done row (Scheduler._run), also after
    # a restart; a concurrent firing or cancel loses the conditional UPDATE.
    if not engine.store.finish_job(job_id(pitr_op_id)):
        raise ConflictError("This cleanup already ran or was cancelled.", code="cleanup_done")
    engine.emit(
        pitr_op.id,
        EventKind.CLEANUP_CANCELLED,
        user,
        f"<@{user}> cancelled the scheduled deletion of `{pitr_op.params['source']}`; it"
        " stays until someone deletes it.",
    )
    _card(
        engine,
        pitr_op,
        engine.store.job(job_id(pitr_op_id)),
        "Cleanup cancelled",
        actor=user,
        cancelled="cancelled",
        cancelled_by=user,
    )


def set_skip_final_snapshot(engine: Engine, pitr_op_id: str, user: str, skip: bool) -> None:
    """Only an explicit click skips the final snapshot, and in a protected environment only
    an approver's: a final snapshot is always taken unless the approver explicitly waives
    it. The card then says so in red. Keeping it is anyone's who may change the cleanup."""
    pitr_op = _pitr_operation(engine, pitr_op_id)
    _check_may_change(engine, pitr_op, user)
    if skip:
        _check_may_waive(engine, pitr_op, user)
    job = pending_job(engine, pitr_op_id)
    changed = dataclasses.replace(
        job, payload=job.payload | {"skip_final_snapshot_by": user if skip else None}
    )
    engine.store.schedule_job(changed)
    title = "Cleanup will skip the final snapshot" if skip else "Cleanup will keep a final snapshot"
    _card(engine, pitr_op, changed, title, actor=user)


def cleanup_due(engine: Engine, payload: dict) -> None:
    """The scheduler's handler: starts the cleanup operation (checklist + approval)."""
    pitr_op = _pitr_operation(engine, payload["pitr_operation"])
    old = pitr_op.params["source"]
    try:
        params = cleanup_params(pitr_op, engine.clock(), payload.get("skip_final_snapshot_by"))
        cleanup = engine.start("pitr_cleanup", pitr_op.environment, pitr_op.requester, params)
    except UserError as error:
        engine.emit(
            pitr_op.id,
            EventKind.CLEANUP_NOT_STARTED,
            BOT_ACTOR,
            f"The scheduled deletion of `{old}` did not start: {error}",
        )
        return
    engine.emit(
        pitr_op.id,
        EventKind.CLEANUP_STARTED,
        BOT_ACTOR,
        f"The scheduled deletion of `{old}` is due: operation {cleanup.id} started for"
        f" <@{pitr_op.requester}>; it needs the checklist and an approval.",
        detail={"cleanup_operation": cleanup.id},
    )


def card_key(pitr_op_id: str) -> str:
    """The cleanup card is posted once and edited after (cancelled, snapshot skipped)."""
    return f"pitr-cleanup-card:{pitr_op_id}"


def card_data(
    pitr_op_id: str,
    old_instance: str,
    job: ScheduledJob | None,
    cancelled: str | None = None,
    cancelled_by: str | None = None,
) -> dict:
    """``cancelled``: why the deletion will not happen (the card then has no buttons);
    ``cancelled_by``: who cancelled it (a Slack user id: the card mentions them, while
    the card's text is escaped like any data)."""
    return {
        "operation": pitr_op_id,
        "old_instance": old_instance,
        "run_at": job.run_at if job else None,
        "skip_final_snapshot_by": job.payload.get("skip_final_snapshot_by") if job else None,
        "cancelled": cancelled,
        "cancelled_by": cancelled_by,
        "card_key": card_key(pitr_op_id),
    }


def _card(
    engine: Engine,
    pitr_op: Operation,
    job: ScheduledJob,
    title: str,
    actor: str = BOT_ACTOR,
    cancelled: str | None = None,
    cancelled_by: str | None = None,
) -> None:
    engine.emit(
        pitr_op.id,
        EventKind.CARD,
        actor,
        f"{title}: delete `{pitr_op.params['source']}`",
        detail={
            "card": CardKind.PITR_CLEANUP_SCHEDULED,
            "data": card_data(pitr_op.id, pitr_op.params["source"], job, cancelled, cancelled_by),
        },
    )


def _pitr_operation(engine: Engine, op_id: str) -> Operation:
    op = engine.store.operation(op_id)
    if op is None or op.runbook != "pitr":
        raise NotFound(f"There is no point-in-time recovery {op_id}.")
    return op


def _check_may_change(engine: Engine, pitr_op: Operation, user: str) -> None:
    env = engine.config.environment(pitr_op.environment)
    if user != pitr_op.requester and user not in engine.resolve_principals(env.approvers):
        raise PermissionDenied(
            "Only the requester of the recovery or an approver can change its cleanup.",
            f"Ask <@{pitr_op.requester}>.",
            people=(pitr_op.requester,),
        )


def _check_may_waive(engine: Engine, pitr_op: Operation, user: str) -> None:
    """Skipping the final snapshot throws away the last copy of the old instance: the
    two-person rule's second person decides it, never the recovery's requester alone."""
    env = engine.config.environment(pitr_op.environment)
    if not env.protected:
        return
    if user == pitr_op.requester or user not in engine.resolve_principals(env.approvers):
        raise PermissionDenied(
            f"Only an approver of {env.name} other than the recovery's requester can skip the"
            f" final snapshot of `{pitr_op.params['source']}`: it throws away the last copy of"
            " its data. The final snapshot stays.",
            f"Ask an approver ({', '.join(env.approvers)}) to skip it, if it must be skipped.",
        )
