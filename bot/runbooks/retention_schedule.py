"""When the backup retention review runs: every day at ``[backups] retention_review`` (UTC)
on every protected environment, and on demand (`/rollback backups --retention`).

The schedule is a row in ``scheduled_jobs`` per day (``retention-review:YYYY-MM-DD``), run
by bot/scheduler.py like PITR's cleanup: it survives restarts, runs once across replicas,
and a review due while the bot was down runs when it is back. Each run writes the next
day's row first. A review that finds something past retention starts the operation
(retention.py) with rollback-bot as its requester, so any approver may approve it; one that
finds nothing, or cannot start (another operation holds the environment), is audited
(``retention_reviewed``) and tried again the next day. A scheduled review nobody approves
in time is cancelled (nothing was deleted): it must not hold a production environment an
incident may need.

Only protected environments: deleting a backup is destructive, and only a protected
environment has the second person who approves it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime

from bot.clock import iso, parse_iso
from bot.engine.engine import Engine
from bot.engine.model import BOT_ACTOR, Event
from bot.errors import UserError
from bot.prevention.windows import next_daily
from bot.runbooks.retention import Reviewed, review_environment, review_params
from bot.settings import Config, Environment
from bot.store import Store
from bot.store.records import EventKind, JobKind, Operation, ScheduledJob

log = logging.getLogger(__name__)
SCHEDULED = "scheduled"


def job_id(moment: datetime) -> str:
    return f"retention-review:{moment.date().isoformat()}"


def schedule_next(store: Store, config: Config, now: datetime) -> ScheduledJob | None:
    """Writes the next review's row unless it is there (pending or already run); None when
    the review is off."""
    if config.backups_retention_review is None:
        return None
    run_at = next_daily(config.backups_retention_review, now)
    job = ScheduledJob(
        id=job_id(run_at),
        operation_id=None,
        kind=JobKind.RETENTION_REVIEW_DUE,
        run_at=iso(run_at),
        payload={"run_at": iso(run_at)},
    )
    if store.job(job.id) is None:
        store.schedule_job(job)
    return job


def reviewed_environments(config: Config) -> list[Environment]:
    return [e for e in config.environments.values() if e.protected]


def review_due(engine: Engine, sync: Callable[[], None]) -> Callable[[str | None, dict], None]:
    """The scheduler's handler: tomorrow's row first, then each protected environment."""

    def run(_op_id: str | None, payload: dict) -> None:
        # The day after this run's own, also when it runs early (run_due_now) or late.
        due = parse_iso(payload["run_at"]) if payload.get("run_at") else engine.clock()
        schedule_next(engine.store, engine.config, max(engine.clock(), due))
        sync()
        for env in reviewed_environments(engine.config):
            try:
                start_review(engine, env, BOT_ACTOR)
            # The scheduler's thread reviews every environment: one that fails (AWS down,
            # a busy environment, a bug) must not cost the others their review. Audited.
            except Exception as error:  # noqa: BLE001
                log.warning("retention review on %s did not run: %s", env.name, error)
                _audit(engine, env, f"The retention review did not run: {error}")

    return run


def start_review(
    engine: Engine, env: Environment, requester: str
) -> tuple[Operation | None, list[Reviewed]]:
    """Lists ``env``'s manual snapshots; starts the operation when some are past retention
    (None when none are: nothing to approve). ``requester`` BOT_ACTOR: the schedule."""
    if not env.protected:
        raise UserError(
            f"The retention review deletes backups only with a second person's approval, and"
            f" {env.name} is not protected (it has no approvers).",
            "Delete its snapshots in the RDS console, or make the environment protected.",
            code="not_protected",
        )
    if requester != BOT_ACTOR:
        engine.check_requester(env, requester, "a backup retention review")
    now = engine.clock()
    reviewed = review_environment(env, now)
    proposed = [r for r in reviewed if r.delete]
    trigger = SCHEDULED if requester == BOT_ACTOR else requester
    if not proposed:
        _audit(
            engine,
            env,
            f"Retention review: no manual snapshot past retention ({len(reviewed)} kept).",
            actor=requester,
        )
        return None, reviewed
    params = review_params(reviewed, trigger, now)
    op = engine.start("backup_retention", env.name, requester, params)
    return op, reviewed


def _audit(engine: Engine, env: Environment, message: str, actor: str = BOT_ACTOR) -> None:
    engine.store.append_audit(
        None,
        actor,
        EventKind.RETENTION_REVIEWED,
        f"{env.name}: {message}",
        detail={"environment": env.name},
        at=engine.clock(),
    )


def cancel_when_expired(engine: Engine) -> Callable[[Event], None]:
    """An engine listener: a scheduled review whose approval expired is cancelled (nobody
    can ask again for the bot, and it holds its environment)."""

    def on_event(event: Event) -> None:
        if event.kind != EventKind.APPROVAL_EXPIRED:
            return
        op = engine.store.operation(event.operation_id)
        if op is not None and op.runbook == "backup_retention" and op.requester == BOT_ACTOR:
            engine.cancel(op.id, BOT_ACTOR)

    return on_event
