"""The composition root: the core every front end is built on.

``build_core`` builds the store, the engine with every runbook, the scheduler and every
engine subscriber that is not a front end (the scheduler's own, PITR's cleanup scheduling).
The Slack app (bot/app.py) and the break-glass terminal (bot/terminal.py) both call it and
add only their own output side, so an operation behaves the same whichever front end
started it: a point-in-time recovery run from a terminal schedules its cleanup too.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from bot import logs
from bot.clock import utcnow
from bot.engine.engine import Engine, MembersOf
from bot.runbooks import RUNBOOKS, retention_schedule
from bot.runbooks.pitr import cleanup_schedule
from bot.scheduler import Scheduler
from bot.settings import Config
from bot.store import Store
from bot.store.records import JobKind

# Event ids and request signatures only matter within Slack's retry and 5-minute signature
# windows (the store keeps them in seen_events); a day is plenty.
SEEN_EVENTS_KEPT = timedelta(days=1)


@dataclass
class Core:
    config: Config
    store: Store
    engine: Engine
    scheduler: Scheduler

    def start(self) -> None:
        """For the long-running bot: rebuilds what was in flight from the store, jobs first,
        then operations, and keeps resuming operations another replica stopped walking. (A
        terminal invocation does not: it walks only the operations it starts.)"""
        self.store.forget_seen_before(utcnow() - SEEN_EVENTS_KEPT)
        retention_schedule.schedule_next(self.store, self.config, self.engine.clock())
        self.scheduler.start()
        self.engine.recover()

    def stop(self, flush: Callable[[], None] = lambda: None) -> None:
        """Stops jobs, lets a running step finish, lets the front end send what it holds
        (``flush``), then closes the store."""
        self.scheduler.shutdown()
        self.engine.shutdown()
        flush()
        self.store.close()


def build_core(
    config: Config,
    *,
    members_of: MembersOf,
    clock: Callable[[], datetime] = utcnow,
    replica: str | None = None,
) -> Core:
    """``members_of(handle)``: the members of a user group (Slack's directory, or the
    terminal's [break_glass] groups); ``replica``: this process's name as the owner of
    operations' leases (default: bot/engine/leases.py replica_name)."""
    logs.scrub_every_record()  # whichever front end, and whoever configured logging
    store = Store(config.state_db)
    engine = Engine(store, config, RUNBOOKS, members_of=members_of, clock=clock, replica=replica)
    scheduler = Scheduler(
        store,
        {
            JobKind.APPROVAL_EXPIRY: lambda op_id, payload: engine.expire_approval(
                payload["approval_id"]
            ),
            JobKind.AFTER_CHECKLIST_REMINDER: lambda op_id, p: engine.remind_after_checklist(op_id),
            JobKind.PITR_CLEANUP_DUE: lambda op_id, payload: cleanup_schedule.cleanup_due(
                engine, payload
            ),
            # A later check (reminder) is picked up at once, not at the next resync.
            JobKind.IDLE_TIMEOUT: lambda op_id, p: engine.check_idle(op_id) and scheduler.sync(),
            JobKind.APPROVAL_REMINDER: lambda op_id, payload: (
                engine.remind_approval(payload["approval_id"]) and scheduler.sync()
            ),
        },
    )
    scheduler.handlers[JobKind.RETENTION_REVIEW_DUE] = retention_schedule.review_due(
        engine, scheduler.sync
    )
    engine.subscribe(scheduler.on_event)
    engine.subscribe(cleanup_schedule.after_switch(engine, scheduler.sync))
    engine.subscribe(retention_schedule.cancel_when_expired(engine))
    return Core(config, store, engine, scheduler)
