"""Jobs live in the store; a new scheduler (after a restart) rebuilds them and runs each once."""

from __future__ import annotations

import time
from datetime import timedelta

import pytest

from bot.clock import iso, utcnow
from bot.scheduler import Scheduler
from bot.store import Store
from bot.store.records import ScheduledJob
from tests.rig.state_store import state_db_for


def job(job_id, op_id, kind, due_in: timedelta, payload=None) -> ScheduledJob:
    return ScheduledJob(job_id, op_id, kind, iso(utcnow() + due_in), payload or {})


def test_jobs_survive_a_restart_and_run_once(tmp_path):
    store = Store(state_db_for(tmp_path))
    store.schedule_job(
        job("reminder:op-1", None, "after_checklist_reminder", timedelta(hours=1), {"x": 1})
    )
    store.close()

    ran = []
    store = Store(state_db_for(tmp_path))  # "after the restart"
    scheduler = Scheduler(store, {"after_checklist_reminder": lambda op, p: ran.append(p)})
    scheduler.start()
    try:
        assert scheduler._aps.get_job("reminder:op-1") is not None
        scheduler.run_due_now("reminder:op-1")
        scheduler.run_due_now("reminder:op-1")
        assert ran == [{"x": 1}]
        assert store.pending_jobs() == []
    finally:
        scheduler.shutdown()


def test_a_job_due_while_the_bot_was_down_runs_at_start(tmp_path):
    store = Store(state_db_for(tmp_path))
    store.schedule_job(job("expiry:a", None, "approval_expiry", -timedelta(minutes=5)))
    ran = []
    scheduler = Scheduler(store, {"approval_expiry": lambda op, p: ran.append(op)})
    scheduler.start()
    try:
        deadline = time.monotonic() + 5
        while not ran and time.monotonic() < deadline:
            time.sleep(0.05)
        assert ran == [None]
    finally:
        scheduler.shutdown()


def test_a_job_another_process_wrote_is_picked_up_while_running(tmp_path):
    """A break-glass terminal writes a job row (a PITR's cleanup) into the shared store; the
    running bot's scheduler finds it on its next resync and runs it."""
    store = Store(state_db_for(tmp_path))
    ran = []
    scheduler = Scheduler(
        store, {"pitr_cleanup_due": lambda op, p: ran.append(p)}, resync_seconds=0.2
    )
    scheduler.start()
    terminal = Store(state_db_for(tmp_path))
    try:
        terminal.schedule_job(
            job(
                "pitr-cleanup:op-1",
                "op-1",
                "pitr_cleanup_due",
                timedelta(0),
                {"pitr_operation": "op-1"},
            )
        )
        deadline = time.monotonic() + 10
        while not ran and time.monotonic() < deadline:
            time.sleep(0.05)
        assert ran == [{"pitr_operation": "op-1"}]
    finally:
        scheduler.shutdown()
        terminal.close()
        store.close()


def test_a_front_end_adds_its_own_kind_of_job_once(tmp_path):
    store = Store(state_db_for(tmp_path))
    store.schedule_job(job("archive:C1", None, "archive_channel", timedelta(hours=1), {"c": 1}))
    ran = []
    scheduler = Scheduler(store, {"after_checklist_reminder": lambda op, p: None})
    scheduler.handle("archive_channel", lambda op, p: ran.append(p))
    with pytest.raises(ValueError, match="already have a handler"):
        scheduler.handle("archive_channel", lambda op, p: None)
    scheduler.start()
    try:
        scheduler.run_due_now("archive:C1")
        assert ran == [{"c": 1}]
    finally:
        scheduler.shutdown()
        store.close()
