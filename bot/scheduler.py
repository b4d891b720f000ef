"""APScheduler jobs rebuilt from the store (the store is the truth).

Jobs (approval expiry, after-checklist reminders, PITR cleanups) are rows in
``scheduled_jobs``. The scheduler keeps an in-memory APScheduler job for each pending row:
at start-up for all of them (so a reminder survives a restart), when an event says a new
row was written, and every ``resync_seconds`` for rows another process wrote (a break-glass
terminal's PITR schedules its cleanup in the shared store; the running bot runs it).
A job that fires marks its row done first, atomically, so it runs once even if two
processes hold the same row.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from apscheduler.schedulers.background import BackgroundScheduler

from bot.clock import parse_iso
from bot.engine.model import Event
from bot.store import Store
from bot.store.records import EventKind, ScheduledJob

log = logging.getLogger(__name__)

JobHandler = Callable[[str | None, dict], None]
_KINDS_THAT_SCHEDULE = {
    EventKind.APPROVAL_REQUESTED,
    EventKind.APPROVAL_EXPIRED,
    EventKind.GATE_WAITING,
    EventKind.FINISHED,
}
_RESYNC = "resync-from-store"


class Scheduler:
    def __init__(
        self, store: Store, handlers: dict[str, JobHandler], *, resync_seconds: float = 60
    ):
        self.store = store
        self.handlers = handlers
        self.resync_seconds = resync_seconds
        self._aps = BackgroundScheduler(timezone="UTC")
        self._sync_lock = threading.Lock()

    def handle(self, kind: str, handler: JobHandler) -> None:
        """A front end's own kind of job (Slack's: archiving the channels the bot made)."""
        if kind in self.handlers:
            raise ValueError(f"jobs of kind {kind!r} already have a handler")
        self.handlers[kind] = handler

    def start(self) -> None:
        self._aps.start()
        self.sync()
        self._aps.add_job(
            self.sync, "interval", seconds=self.resync_seconds, id=_RESYNC, coalesce=True
        )

    def shutdown(self) -> None:
        if self._aps.running:
            self._aps.shutdown(wait=False)

    def status(self) -> dict:
        """For /readyz: approval expiry, reminders and cleanups only happen while it runs."""
        return {"ok": bool(self._aps.running)}

    def on_event(self, event: Event) -> None:
        if event.kind in _KINDS_THAT_SCHEDULE:
            self.sync()

    def sync(self) -> None:
        with self._sync_lock:  # engine threads and the resync job may sync at once
            for job in self.store.pending_jobs():
                self._add(job)

    def _add(self, job: ScheduledJob) -> None:
        if self._aps.get_job(job.id) is None:
            self._aps.add_job(
                self._run,
                "date",
                run_date=parse_iso(job.run_at),
                id=job.id,
                args=[job.id],
                # A job due while the bot was down runs as soon as it is back.
                misfire_grace_time=None,
                coalesce=True,
            )

    def run_due_now(self, job_id: str) -> None:
        """Runs a job immediately (tests use it instead of waiting)."""
        if self._aps.get_job(job_id) is not None:
            self._aps.remove_job(job_id)
        self._run(job_id)

    def _run(self, job_id: str) -> None:
        job = self.store.job(job_id)
        if job is None or not self.store.finish_job(job_id):
            return
        handler = self.handlers.get(job.kind)
        if handler is None:
            log.error("no handler for scheduled job kind %s", job.kind)
            return
        handler(job.operation_id, job.payload)
