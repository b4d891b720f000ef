"""The state store: the truth about every operation (sqlite-utils on SQLite, WAL mode).

Memory is a cache. After a restart the engine and the scheduler rebuild what they were
doing from these tables. Every state change runs in one ``BEGIN IMMEDIATE`` transaction
so that two threads (or two processes) can never both win a race such as two Approve
clicks; the audit table is append-only, enforced by triggers.
"""

from __future__ import annotations

import json
import secrets
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import sqlite_utils

from bot.clock import iso, utcnow

# Operation states. "active" ones hold their environment's lock.
ACTIVE_STATES = ("running", "waiting_checklist", "waiting_approval")
FINAL_STATES = ("succeeded", "failed", "cancelled", "stopped")


def new_operation_id(now: datetime | None = None) -> str:
    """Short, typeable, sortable: op-20261126-7f3a2c."""
    now = now or utcnow()
    return f"op-{now:%Y%m%d}-{secrets.token_hex(3)}"


_SCHEMA = """
CREATE TABLE IF NOT EXISTS operations (
    id TEXT PRIMARY KEY,
    runbook TEXT NOT NULL,
    environment TEXT NOT NULL,
    status TEXT NOT NULL,
    requester TEXT NOT NULL,
    params TEXT NOT NULL DEFAULT '{}',
    summary TEXT NOT NULL DEFAULT '',
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    finished_at TEXT,
    result TEXT,
    -- 1 while the operation holds its environment; the partial unique index below
    -- makes "one active operation per environment" a database rule, not a hope.
    holds_environment INTEGER,
    incident_channel TEXT,
    status_ts TEXT,
    notify_channel TEXT,
    notify_ts TEXT
);
CREATE UNIQUE INDEX IF NOT EXISTS one_active_operation_per_environment
    ON operations(environment) WHERE holds_environment = 1;
CREATE TABLE IF NOT EXISTS steps (
    operation_id TEXT NOT NULL REFERENCES operations(id),
    position INTEGER NOT NULL,
    step_id TEXT NOT NULL,
    title TEXT NOT NULL,
    destructive INTEGER NOT NULL,
    idempotent INTEGER NOT NULL,
    status TEXT NOT NULL DEFAULT 'pending',
    started_at TEXT,
    finished_at TEXT,
    detail TEXT NOT NULL DEFAULT '',
    error TEXT,
    attempts INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (operation_id, step_id)
);
CREATE TABLE IF NOT EXISTS approvals (
    id TEXT PRIMARY KEY,
    operation_id TEXT NOT NULL REFERENCES operations(id),
    step_id TEXT NOT NULL,
    plan_text TEXT NOT NULL,
    plan_hash TEXT NOT NULL,
    requested_by TEXT NOT NULL,
    requested_at TEXT NOT NULL,
    expires_at TEXT NOT NULL,
    status TEXT NOT NULL,
    decided_by TEXT,
    decided_at TEXT,
    channel TEXT,
    message_ts TEXT
);
CREATE INDEX IF NOT EXISTS approvals_by_operation ON approvals(operation_id, step_id);
CREATE TABLE IF NOT EXISTS checklist_items (
    operation_id TEXT NOT NULL REFERENCES operations(id),
    checklist TEXT NOT NULL,
    item_id TEXT NOT NULL,
    position INTEGER NOT NULL,
    label TEXT NOT NULL,
    checked INTEGER NOT NULL DEFAULT 0,
    checked_by TEXT,
    checked_at TEXT,
    by_bot INTEGER NOT NULL DEFAULT 0,
    note TEXT,
    PRIMARY KEY (operation_id, checklist, item_id)
);
CREATE TABLE IF NOT EXISTS audit (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    operation_id TEXT,
    at TEXT NOT NULL,
    actor TEXT NOT NULL,
    event TEXT NOT NULL,
    step_id TEXT,
    message TEXT NOT NULL DEFAULT '',
    detail TEXT NOT NULL DEFAULT '{}'
);
CREATE INDEX IF NOT EXISTS audit_by_operation ON audit(operation_id, id);
CREATE TRIGGER IF NOT EXISTS audit_is_append_only_update BEFORE UPDATE ON audit
    BEGIN SELECT RAISE(ABORT, 'audit is append-only'); END;
CREATE TRIGGER IF NOT EXISTS audit_is_append_only_delete BEFORE DELETE ON audit
    BEGIN SELECT RAISE(ABORT, 'audit is append-only'); END;
CREATE TABLE IF NOT EXISTS scheduled_jobs (
    id TEXT PRIMARY KEY,
    operation_id TEXT,
    kind TEXT NOT NULL,
    run_at TEXT NOT NULL,
    payload TEXT NOT NULL DEFAULT '{}',
    done_at TEXT
);
CREATE TABLE IF NOT EXISTS decisions (
    id TEXT PRIMARY KEY,
    operation_id TEXT NOT NULL REFERENCES operations(id),
    step_id TEXT NOT NULL,
    prompt TEXT NOT NULL,
    choices TEXT NOT NULL,
    default_choice TEXT NOT NULL,
    status TEXT NOT NULL,
    asked_at TEXT NOT NULL,
    expires_at TEXT NOT NULL,
    choice TEXT,
    decided_by TEXT,
    decided_at TEXT,
    channel TEXT,
    message_ts TEXT
);
CREATE TABLE IF NOT EXISTS seen_events (
    event_id TEXT PRIMARY KEY,
    seen_at TEXT NOT NULL
);
"""


@dataclass
class Operation:
    id: str
    runbook: str
    environment: str
    status: str
    requester: str
    params: dict[str, Any]
    summary: str
    created_at: str
    updated_at: str
    finished_at: str | None
    result: str | None
    incident_channel: str | None
    status_ts: str | None
    notify_channel: str | None
    notify_ts: str | None

    @property
    def active(self) -> bool:
        return self.status in ACTIVE_STATES

    @classmethod
    def from_row(cls, row: dict) -> Operation:
        row = dict(row)
        row.pop("holds_environment", None)
        row["params"] = json.loads(row["params"] or "{}")
        return cls(**row)


class Store:
    def __init__(self, path: Path | str):
        self.path = Path(path)
        if str(path) != ":memory:":
            self.path.parent.mkdir(parents=True, exist_ok=True)
        # One connection shared by the app's threads, serialised by a lock; other
        # processes (the CLI, a restarted bot) coordinate through SQLite's own locking.
        conn = sqlite3.connect(str(path), check_same_thread=False, timeout=30)
        self.db = sqlite_utils.Database(conn)
        self._lock = threading.RLock()
        with self._lock:
            self.db.execute("PRAGMA journal_mode=WAL")
            self.db.execute("PRAGMA synchronous=NORMAL")
            self.db.execute("PRAGMA foreign_keys=ON")
            self.db.conn.executescript(_SCHEMA)

    def close(self) -> None:
        with self._lock:
            self.db.close()

    @contextmanager
    def transaction(self) -> Iterator[sqlite_utils.Database]:
        """One write transaction. BEGIN IMMEDIATE takes the write lock up front, so a
        read-then-write (check a status, then change it) cannot interleave with another."""
        with self._lock:
            if self.db.conn.in_transaction:
                with self.db.atomic():
                    yield self.db
                return
            self.db.conn.execute("BEGIN IMMEDIATE")
            try:
                yield self.db
            except BaseException:
                self.db.conn.execute("ROLLBACK")
                raise
            self.db.conn.execute("COMMIT")

    def query(self, sql: str, params: tuple | dict = ()) -> list[dict]:
        with self._lock:
            return list(self.db.query(sql, params))

    # --- operations ---------------------------------------------------------------

    def operation(self, op_id: str) -> Operation | None:
        rows = self.query("SELECT * FROM operations WHERE id = ?", (op_id,))
        return Operation.from_row(rows[0]) if rows else None

    def active_operation(self, environment: str) -> Operation | None:
        rows = self.query(
            "SELECT * FROM operations WHERE environment = ? AND holds_environment = 1",
            (environment,),
        )
        return Operation.from_row(rows[0]) if rows else None

    def operations(self, *, active: bool | None = None, limit: int = 20) -> list[Operation]:
        where = ""
        if active is True:
            where = "WHERE holds_environment = 1"
        elif active is False:
            where = "WHERE holds_environment IS NULL"
        rows = self.query(
            f"SELECT * FROM operations {where} ORDER BY created_at DESC, id DESC LIMIT ?",
            (limit,),
        )
        return [Operation.from_row(r) for r in rows]

    def update_operation(self, op_id: str, **fields: Any) -> None:
        fields["updated_at"] = iso(utcnow())
        if "params" in fields:
            fields["params"] = json.dumps(fields["params"], sort_keys=True)
        with self.transaction() as db:
            db["operations"].update(op_id, fields)

    # --- steps --------------------------------------------------------------------

    def steps(self, op_id: str) -> list[dict]:
        return self.query("SELECT * FROM steps WHERE operation_id = ? ORDER BY position", (op_id,))

    def step(self, op_id: str, step_id: str) -> dict | None:
        rows = self.query(
            "SELECT * FROM steps WHERE operation_id = ? AND step_id = ?", (op_id, step_id)
        )
        return rows[0] if rows else None

    # --- approvals ----------------------------------------------------------------

    def approval(self, approval_id: str) -> dict | None:
        rows = self.query("SELECT * FROM approvals WHERE id = ?", (approval_id,))
        return rows[0] if rows else None

    def approvals(self, op_id: str) -> list[dict]:
        return self.query(
            "SELECT * FROM approvals WHERE operation_id = ? ORDER BY requested_at", (op_id,)
        )

    def approvers_by_operation(self, op_ids: list[str]) -> dict[str, str | None]:
        """The person who approved each operation (its latest approval), for listings."""
        if not op_ids:
            return {}
        marks = ",".join("?" * len(op_ids))
        rows = self.query(
            f"SELECT operation_id, decided_by FROM approvals WHERE status = 'approved'"
            f" AND operation_id IN ({marks}) ORDER BY decided_at",
            tuple(op_ids),
        )
        return {r["operation_id"]: r["decided_by"] for r in rows}

    def decision(self, decision_id: str) -> dict | None:
        rows = self.query("SELECT * FROM decisions WHERE id = ?", (decision_id,))
        return rows[0] if rows else None

    # --- checklists ---------------------------------------------------------------

    def checklist(self, op_id: str, checklist: str) -> list[dict]:
        return self.query(
            "SELECT * FROM checklist_items WHERE operation_id = ? AND checklist = ?"
            " ORDER BY position",
            (op_id, checklist),
        )

    # --- audit --------------------------------------------------------------------

    def append_audit(
        self,
        op_id: str | None,
        actor: str,
        event: str,
        message: str = "",
        *,
        step_id: str | None = None,
        detail: dict | None = None,
        at: datetime | None = None,
    ) -> dict:
        row = {
            "operation_id": op_id,
            "at": iso(at or utcnow()),
            "actor": actor,
            "event": event,
            "step_id": step_id,
            "message": message,
            "detail": json.dumps(detail or {}, sort_keys=True, default=str),
        }
        with self.transaction() as db:
            db["audit"].insert(row)
            row["id"] = db["audit"].last_pk
        return row

    def audit(self, op_id: str | None = None) -> list[dict]:
        if op_id is None:
            return self.query("SELECT * FROM audit ORDER BY id")
        return self.query("SELECT * FROM audit WHERE operation_id = ? ORDER BY id", (op_id,))

    # --- scheduled jobs (the scheduler rebuilds from these at start-up) -------------

    def schedule_job(
        self,
        job_id: str,
        op_id: str | None,
        kind: str,
        run_at: datetime,
        payload: dict | None = None,
    ) -> None:
        with self.transaction() as db:
            db["scheduled_jobs"].upsert(
                {
                    "id": job_id,
                    "operation_id": op_id,
                    "kind": kind,
                    "run_at": iso(run_at),
                    "payload": json.dumps(payload or {}, sort_keys=True),
                    "done_at": None,
                },
                pk="id",
            )

    def pending_jobs(self) -> list[dict]:
        return self.query("SELECT * FROM scheduled_jobs WHERE done_at IS NULL ORDER BY run_at")

    def finish_job(self, job_id: str) -> bool:
        """Marks a job done; False when it already was (a second runner must do nothing)."""
        with self.transaction() as db:
            cur = db.execute(
                "UPDATE scheduled_jobs SET done_at = ? WHERE id = ? AND done_at IS NULL",
                (iso(utcnow()), job_id),
            )
            return cur.rowcount == 1

    # --- Events API deduplication ---------------------------------------------------

    def forget_seen_before(self, cutoff: datetime) -> None:
        """Event ids and request signatures only matter within Slack's retry and 5-minute
        signature windows; older ones are dropped."""
        with self.transaction() as db:
            db.execute("DELETE FROM seen_events WHERE seen_at < ?", (iso(cutoff),))

    def first_time_seen(self, event_id: str) -> bool:
        with self.transaction() as db:
            cur = db.execute(
                "INSERT OR IGNORE INTO seen_events (event_id, seen_at) VALUES (?, ?)",
                (event_id, iso(utcnow())),
            )
            return cur.rowcount == 1
