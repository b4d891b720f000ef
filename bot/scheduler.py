"""APScheduler jobs rebuilt from the store (the store is the truth).

Jobs (approval expiry, after-checklist reminders) are rows in ``scheduled_jobs``. The
scheduler keeps an in-memory APScheduler job for each pending row: at start-up for all of
them (so a reminder survives a restart), and when an event says a new row was written.
A job that fires marks its row done first, atomically, so it runs once even if two
processes hold the same row.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable

from apscheduler.schedulers.background import BackgroundScheduler

from bot.clock import parse_iso
from bot.engine.model import Event
from bot.store import Store

log = logging.getLogger(__name__)

JobHandler = Callable[[str | None, dict], None]
_KINDS_THAT_SCHEDULE = {"approval_requested", "finished"}


class Scheduler:
    def __init__(self, store: Store, handlers: dict[str, JobHandler]):
        self.store = store
        self.handlers = handlers
        self._aps = BackgroundScheduler(timezone="UTC")

    def start(self) -> None:
        self._aps.start()
        self.sync()

    def shutdown(self) -> None:
        if self._aps.running:
            self._aps.shutdown(wait=False)

    def on_event(self, event: Event) -> None:
        if event.kind in _KINDS_THAT_SCHEDULE:
            self.sync()

    def sync(self) -> None:
        for row in self.store.pending_jobs():
            if self._aps.get_job(row["id"]) is None:
                self._aps.add_job(
                    self._run,
                    "date",
                    run_date=parse_iso(row["run_at"]),
                    id=row["id"],
                    args=[row["id"]],
                    # A job due while the bot was down runs as soon as it is back.
                    misfire_grace_time=None,
                    coalesce=True,
                )

    def run_due_now(self, job_id: str) -> None:
        """Runs a job immediately (tests and the CLI use it instead of waiting)."""
        if self._aps.get_job(job_id) is not None:
            self._aps.remove_job(job_id)
        self._run(job_id)

    def _run(self, job_id: str) -> None:
        rows = self.store.query("SELECT * FROM scheduled_jobs WHERE id = ?", (job_id,))
        if not rows or not self.store.finish_job(job_id):
            return
        row = rows[0]
        handler = self.handlers.get(row["kind"])
        if handler is None:
            log.error("no handler for scheduled job kind %s", row["kind"])
            return
        handler(row["operation_id"], json.loads(row["payload"] or "{}"))
