"""The state store: every statement on the state tables, written once for both databases
(SQLite, the embedded default; PostgreSQL for more than one replica: bot/store/transactions.py).

Every state change runs in one write transaction so that two threads (or two processes, or
two replicas) can never both win a race such as two Approve clicks: the "check then change"
is a conditional UPDATE whose row count says who won, or a read of rows locked for the
change (``for_update``). Rows come back typed (bot/store/records.py).
"""

from __future__ import annotations

import json
import secrets
from dataclasses import asdict
from datetime import datetime
from enum import StrEnum
from typing import Any

from bot.clock import iso, utcnow
from bot.store.audit_log import AuditStatements
from bot.store.holders import HolderStatements
from bot.store.leases import Lease, LeaseLost, LeaseStatements
from bot.store.records import (
    Approval,
    ApprovalStatus,
    ChecklistEntry,
    Decision,
    DecisionStatus,
    Operation,
    OperationStatus,
    ScheduledJob,
    StepRecord,
    StepStatus,
)
from bot.store.slack_rows import SlackRows
from bot.store.transactions import Refused


def new_operation_id(now: datetime | None = None) -> str:
    """Short, typeable, sortable: op-20261126-7f3a2c."""
    now = now or utcnow()
    return f"op-{now:%Y%m%d}-{secrets.token_hex(3)}"


def _json(value: Any) -> str:
    return json.dumps(value, sort_keys=True, default=str)


def _row(record) -> dict:
    """A record as the columns it is stored in (JSON text for data, enums as their text)."""
    values = {k: str(v) if isinstance(v, StrEnum) else v for k, v in asdict(record).items()}
    for name in record._json:
        values[name] = _json(values[name])
    return values


# The newest operations (``Store.operations``: history, App Home), all, active or ended: read
# through the index operations_by_time (migration 0005), never by sorting every operation.
OPERATIONS_LISTING = {
    active: f"SELECT * FROM operations {where} ORDER BY created_at DESC, id DESC LIMIT ?"
    for active, where in (
        (None, ""),
        (True, "WHERE holds_environment = 1"),
        (False, "WHERE holds_environment IS NULL"),
    )
}


class Store(AuditStatements, LeaseStatements, HolderStatements, SlackRows):
    """Every statement on the state tables. ``location``: a SQLite file, or a PostgreSQL
    URL (``postgresql://...``, best as a Secret: it may hold a password)."""

    # --- operations ---------------------------------------------------------------

    def create_operation(
        self, op: Operation, steps: list[StepRecord], checklists: list[ChecklistEntry]
    ) -> bool:
        """Persists a new operation holding its environment, with its steps and checklist
        items; False when another operation holds the environment (nothing is written)."""
        row = _row(op) | {"holds_environment": 1}
        try:
            with self.transaction() as db:
                db.insert("operations", row)
                db.insert_all("steps", (_row(s) for s in steps))
                db.insert_all("checklist_items", (_row(c) for c in checklists))
        except Refused:
            return False
        return True

    def operation(self, op_id: str) -> Operation | None:
        rows = self._query("SELECT * FROM operations WHERE id = ?", (op_id,))
        return Operation.from_row(rows[0]) if rows else None

    def operations(self, *, active: bool | None = None, limit: int = 20) -> list[Operation]:
        rows = self._query(OPERATIONS_LISTING[active], (limit,))
        return [Operation.from_row(r) for r in rows]

    def set_status(self, op_id: str, status: OperationStatus) -> bool:
        """Moves an active operation between running and waiting; False (nothing changed)
        once it has ended: a walker that read it just before a cancel must not revive it."""
        return self._change(
            "UPDATE operations SET status = ?, updated_at = ? WHERE id = ?"
            " AND holds_environment = 1",
            (status, iso(utcnow()), op_id),
        )

    def set_incident_thread(self, op_id: str, channel: str, status_ts: str) -> None:
        """Where the operation's live status message (and its thread) is."""
        self._update_operation(op_id, incident_channel=channel, status_ts=status_ts)

    def set_notice(self, op_id: str, channel: str, ts: str) -> None:
        """Where the operation was announced (the notify channel)."""
        self._update_operation(op_id, notify_channel=channel, notify_ts=ts)

    def request_cancel(self, op_id: str, user: str) -> None:
        self._update_operation(op_id, cancel_requested_by=user)

    def _update_operation(self, op_id: str, **columns: Any) -> None:
        with self.transaction() as db:
            db.update("operations", op_id, columns | {"updated_at": iso(utcnow())})

    def merge_params(self, op_id: str, values: dict[str, Any]) -> dict[str, Any]:
        """Adds ``values`` to the operation's params (read and written under the lock)."""
        with self.transaction() as db:
            rows = db.query(
                f"SELECT params FROM operations WHERE id = ?{self._db.for_update}", (op_id,)
            )
            params = json.loads(rows[0]["params"] or "{}") | values
            db.update("operations", op_id, {"params": _json(params)})
        return params

    def finish_operation(
        self,
        op_id: str,
        status: OperationStatus,
        result: str,
        at: datetime,
        then_schedule: ScheduledJob | None = None,
        only_while: OperationStatus | None = None,
    ) -> bool:
        """Ends the operation and frees its environment, scheduling ``then_schedule`` in
        the same transaction; False when it had already ended (or left ``only_while``)."""
        with self.transaction() as db:
            changed = db.execute(
                "UPDATE operations SET status = ?, result = ?, finished_at = ?, updated_at = ?,"
                " holds_environment = NULL WHERE id = ? AND holds_environment = 1"
                " AND status = coalesce(?, status)",
                (status, result, iso(at), iso(at), op_id, only_while),
            )
            if changed and then_schedule is not None:
                db.insert("scheduled_jobs", _row(then_schedule))
        return bool(changed)

    def approvers_by_operation(self, op_ids: list[str]) -> dict[str, list[str]]:
        """Everyone who approved a step of each operation, in the order they approved, for
        listings (a PITR has two approvals or more, often by two people)."""
        if not op_ids:
            return {}
        marks = ",".join("?" * len(op_ids))
        rows = self._query(
            f"SELECT operation_id, decided_by FROM approvals WHERE status = 'approved'"
            f" AND operation_id IN ({marks}) ORDER BY decided_at",
            tuple(op_ids),
        )
        found: dict[str, list[str]] = {}
        for r in rows:
            people = found.setdefault(r["operation_id"], [])
            if r["decided_by"] not in people:
                people.append(r["decided_by"])
        return found

    # --- steps --------------------------------------------------------------------

    def steps(self, op_id: str) -> list[StepRecord]:
        rows = self._query("SELECT * FROM steps WHERE operation_id = ? ORDER BY position", (op_id,))
        return [StepRecord.from_row(r) for r in rows]

    def step(self, op_id: str, step_id: str) -> StepRecord | None:
        rows = self._query(
            "SELECT * FROM steps WHERE operation_id = ? AND step_id = ?", (op_id, step_id)
        )
        return StepRecord.from_row(rows[0]) if rows else None

    def claim_step(
        self, op_id: str, step_id: str, at: datetime, lease: Lease | None = None
    ) -> bool:
        """pending -> running (one walker wins), and the operation is running again. Never
        for an operation that has ended (cancelled between the walker's read and now), nor
        under a ``lease`` another replica has taken since."""
        with self.transaction() as db:
            # The operation's row first, locked: a cancel ending it waits for this claim,
            # or this claim sees it ended.
            if not self._fenced(db, op_id, lease, active=True):
                return False
            claimed = db.execute(
                "UPDATE steps SET status = 'running', started_at = ?, attempts = attempts + 1"
                " WHERE operation_id = ? AND step_id = ? AND status = 'pending'",
                (iso(at), op_id, step_id),
            )
            if claimed:
                db.update(
                    "operations",
                    op_id,
                    {"status": str(OperationStatus.RUNNING), "updated_at": iso(at)},
                )
        return bool(claimed)

    def end_step(
        self,
        op_id: str,
        step_id: str,
        status: StepStatus,
        at: datetime,
        detail: str = "",
        error: str | None = None,
        lease: Lease | None = None,
    ) -> None:
        """Records a step's result; under a ``lease``, only while it is still the
        operation's (else LeaseLost, nothing recorded: the replica that took it decides)."""
        with self.transaction() as db:
            if lease is not None and not self._fenced(db, op_id, lease, active=False):
                raise LeaseLost(f"{op_id}: lease {lease.token} of {lease.owner} was taken")
            db.execute(
                "UPDATE steps SET status = ?, finished_at = ?, detail = ?, error = ?"
                " WHERE operation_id = ? AND step_id = ?",
                (status, iso(at), detail, error, op_id, step_id),
            )

    def set_step_detail(self, op_id: str, step_id: str, detail: str) -> None:
        self._change(
            "UPDATE steps SET detail = ? WHERE operation_id = ? AND step_id = ?",
            (detail, op_id, step_id),
        )

    def rerun_step(self, op_id: str, step_id: str, lease: Lease | None = None) -> None:
        """A step goes back to pending: a crash left it running (it is safe to repeat), or
        it undid itself because its plan changed (it needs a new approval; under the
        walker's ``lease``, fenced as ``end_step`` is)."""
        with self.transaction() as db:
            if lease is not None and not self._fenced(db, op_id, lease, active=False):
                raise LeaseLost(f"{op_id}: lease {lease.token} of {lease.owner} was taken")
            db.execute(
                "UPDATE steps SET status = 'pending' WHERE operation_id = ? AND step_id = ?",
                (op_id, step_id),
            )

    # --- checklists ---------------------------------------------------------------

    def checklist(self, op_id: str, checklist: str) -> list[ChecklistEntry]:
        rows = self._query(
            "SELECT * FROM checklist_items WHERE operation_id = ? AND checklist = ?"
            " ORDER BY position",
            (op_id, checklist),
        )
        return [ChecklistEntry.from_row(r) for r in rows]

    def tick(
        self, op_id: str, checklist: str, ticked: set[str], user: str, at: datetime
    ) -> list[tuple[str, bool]]:
        """Makes the person-ticked items exactly ``ticked`` (bot-ticked ones stay); returns
        (label, now ticked) for each item that changed. Read under the write lock, so a
        double-submitted modal changes each item once."""
        changes = []
        with self.transaction() as db:
            rows = db.query(
                "SELECT * FROM checklist_items WHERE operation_id = ? AND checklist = ?"
                f" ORDER BY position{self._db.for_update}",
                (op_id, checklist),
            )
            for item in map(ChecklistEntry.from_row, rows):
                want = item.item_id in ticked
                if item.by_bot or item.checked == want:
                    continue
                db.execute(
                    "UPDATE checklist_items SET checked = ?, checked_by = ?, checked_at = ?"
                    " WHERE operation_id = ? AND checklist = ? AND item_id = ?",
                    (int(want), user if want else None, iso(at) if want else None)
                    + (op_id, checklist, item.item_id),
                )
                changes.append((item.label, want))
        return changes

    def tick_by_bot(
        self, op_id: str, checklist: str, item_id: str, by: str, note: str, at: datetime
    ) -> bool:
        """Ticks an item the bot verified itself; False when the bot already had."""
        return self._change(
            "UPDATE checklist_items SET checked = 1, by_bot = 1, checked_by = ?,"
            " checked_at = ?, note = ? WHERE operation_id = ? AND checklist = ?"
            " AND item_id = ? AND by_bot = 0",
            (by, iso(at), note, op_id, checklist, item_id),
        )

    def happens_once(self, key: str, at: datetime) -> bool:
        """True the first time ``key`` is marked, ever (say "checklist complete" once)."""
        return self._change(
            "INSERT INTO once_markers (key, at) VALUES (?, ?) ON CONFLICT DO NOTHING",
            (key, iso(at)),
        )

    # --- approvals ----------------------------------------------------------------

    def approval(self, approval_id: str) -> Approval | None:
        rows = self._query("SELECT * FROM approvals WHERE id = ?", (approval_id,))
        return Approval.from_row(rows[0]) if rows else None

    def approvals(self, op_id: str) -> list[Approval]:
        rows = self._query(
            "SELECT * FROM approvals WHERE operation_id = ? ORDER BY requested_at", (op_id,)
        )
        return [Approval.from_row(r) for r in rows]

    def add_approval(self, approval: Approval, expiry: ScheduledJob) -> None:
        """The request, the operation waiting for it and its expiry job: one transaction."""
        with self.transaction() as db:
            db.insert("approvals", _row(approval))
            db.execute(
                "UPDATE operations SET status = ?, updated_at = ? WHERE id = ?"
                " AND holds_environment = 1",
                (OperationStatus.WAITING_APPROVAL, approval.requested_at, approval.operation_id),
            )
            db.insert("scheduled_jobs", _row(expiry))

    def decide_approval(
        self, approval_id: str, status: ApprovalStatus, user: str, at: datetime
    ) -> bool:
        """pending -> approved/denied; False when a concurrent click decided first, or the
        operation ended or is no longer at the approval's step (decided with the finish and
        the step claim, in their order)."""
        return self._change(
            "UPDATE approvals SET status = ?, decided_by = ?, decided_at = ?"
            " WHERE id = ? AND status = 'pending'"
            " AND EXISTS (SELECT 1 FROM operations o WHERE o.id = approvals.operation_id"
            " AND o.holds_environment = 1)"
            " AND EXISTS (SELECT 1 FROM steps s WHERE s.operation_id = approvals.operation_id"
            " AND s.step_id = approvals.step_id AND s.status = 'pending')",
            (status, user, iso(at), approval_id),
        )

    def supersede_approval(self, approval_id: str) -> bool:
        return self._change(
            "UPDATE approvals SET status = 'superseded' WHERE id = ? AND status = 'pending'",
            (approval_id,),
        )

    def expire_approval(self, approval_id: str, at: datetime) -> bool:
        return self._change(
            "UPDATE approvals SET status = 'expired', decided_at = ? WHERE id = ?"
            " AND status = 'pending'",
            (iso(at), approval_id),
        )

    def set_approval_message(self, approval_id: str, channel: str, ts: str) -> None:
        with self.transaction() as db:
            db.update("approvals", approval_id, {"channel": channel, "message_ts": ts})

    # --- decisions ----------------------------------------------------------------

    def decision(self, decision_id: str) -> Decision | None:
        rows = self._query("SELECT * FROM decisions WHERE id = ?", (decision_id,))
        return Decision.from_row(rows[0]) if rows else None

    def decisions(self, op_id: str, status: DecisionStatus | None = None) -> list[Decision]:
        rows = self._query(
            "SELECT * FROM decisions WHERE operation_id = ? AND status = coalesce(?, status)"
            " ORDER BY asked_at",
            (op_id, status),
        )
        return [Decision.from_row(r) for r in rows]

    def add_decision(self, decision: Decision) -> None:
        with self.transaction() as db:
            db.insert("decisions", _row(decision))

    def answer_decision(self, decision_id: str, choice: str, user: str, at: datetime) -> bool:
        """pending -> decided; False when it was already decided or expired."""
        return self._change(
            "UPDATE decisions SET status = 'decided', choice = ?, decided_by = ?,"
            " decided_at = ? WHERE id = ? AND status = 'pending'",
            (choice, user, iso(at), decision_id),
        )

    def expire_decision(self, decision_id: str, default: str, at: datetime) -> bool:
        """pending -> expired with the safe default; False when someone answered first."""
        return self._change(
            "UPDATE decisions SET status = 'expired', choice = ?, decided_at = ?"
            " WHERE id = ? AND status = 'pending'",
            (default, iso(at), decision_id),
        )

    def set_decision_message(self, decision_id: str, channel: str, ts: str) -> None:
        with self.transaction() as db:
            db.update("decisions", decision_id, {"channel": channel, "message_ts": ts})

    # --- scheduled jobs (the scheduler rebuilds from these at start-up) -------------

    def schedule_job(self, job: ScheduledJob) -> None:
        """Adds the job, or replaces a pending one with the same id (new time, payload)."""
        row = _row(job)
        updates = ", ".join(f"{name} = excluded.{name}" for name in row if name != "id")
        with self.transaction() as db:
            db.execute(
                f"INSERT INTO scheduled_jobs ({', '.join(row)})"
                f" VALUES ({', '.join('?' * len(row))}) ON CONFLICT (id) DO UPDATE SET {updates}",
                row.values(),
            )

    def job(self, job_id: str) -> ScheduledJob | None:
        rows = self._query("SELECT * FROM scheduled_jobs WHERE id = ?", (job_id,))
        return ScheduledJob.from_row(rows[0]) if rows else None

    def pending_jobs(self) -> list[ScheduledJob]:
        rows = self._query("SELECT * FROM scheduled_jobs WHERE done_at IS NULL ORDER BY run_at")
        return [ScheduledJob.from_row(r) for r in rows]

    def finish_job(self, job_id: str) -> bool:
        """Marks a job done; False when it already was (a second runner must do nothing)."""
        return self._change(
            "UPDATE scheduled_jobs SET done_at = ? WHERE id = ? AND done_at IS NULL",
            (iso(utcnow()), job_id),
        )

    def set_card_message(self, key: str, channel: str, ts: str) -> None:  # a card edited later
        sql = "INSERT INTO card_messages (key, channel, ts) VALUES (?, ?, ?) ON CONFLICT (key)"
        self._change(
            sql + " DO UPDATE SET channel = excluded.channel, ts = excluded.ts", (key, channel, ts)
        )

    def card_message(self, key: str) -> tuple[str, str] | None:
        rows = self._query("SELECT channel, ts FROM card_messages WHERE key = ?", (key,))
        return (rows[0]["channel"], rows[0]["ts"]) if rows else None

    # --- Events API deduplication ---------------------------------------------------

    def forget_seen_before(self, cutoff: datetime) -> None:
        """Event ids and request signatures only matter within Slack's retry and 5-minute
        signature windows; older ones are dropped."""
        self._change("DELETE FROM seen_events WHERE seen_at < ?", (iso(cutoff),))

    def first_time_seen(self, event_id: str) -> bool:
        return self._change(
            "INSERT INTO seen_events (event_id, seen_at) VALUES (?, ?) ON CONFLICT DO NOTHING",
            (event_id, iso(utcnow())),
        )

    # --- counts (Prometheus /metrics, read at each scrape) ----------------------------

    def operation_counts(self) -> list[tuple[str, str, int]]:
        """(runbook, status, operations) for every pair that has any."""
        rows = self._query(
            "SELECT runbook, status, count(*) AS n FROM operations GROUP BY runbook, status"
        )
        return [(r["runbook"], r["status"], r["n"]) for r in rows]

    def pending_approval_count(self) -> int:
        rows = self._query("SELECT count(*) AS n FROM approvals WHERE status = 'pending'")
        return rows[0]["n"]
