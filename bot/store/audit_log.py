"""The audit log's statements (part of ``Store``): appended one at a time, each record linked
to the one before by the hash chain (bot/store/audit_chain.py); never changed (the tables'
triggers and, on PostgreSQL, the grants of docs/state-privileges.sql)."""

from __future__ import annotations

import json
from datetime import datetime

from bot.clock import iso, utcnow
from bot.redaction import scrub, scrub_payload
from bot.store import audit_chain
from bot.store.records import AuditRecord
from bot.store.transactions import Connected


class AuditStatements(Connected):
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
    ) -> AuditRecord:
        row = {
            "operation_id": op_id,
            "at": iso(at or utcnow()),
            "actor": actor,
            "event": str(event),
            "step_id": step_id,
            # The last line of defence: no secret in the append-only log that no one can edit.
            "message": scrub(message),
            "detail": json.dumps(scrub_payload(detail or {}), sort_keys=True, default=str),
        }
        with self.transaction() as db:
            # The chain links each record to the one before: appends are serialised (on
            # PostgreSQL across replicas too), so every record follows exactly one.
            if self._db.audit_lock:
                db.execute(self._db.audit_lock)
            last = db.query("SELECT chain FROM audit ORDER BY id DESC LIMIT 1")
            row["chain"] = audit_chain.link(last[0]["chain"] if last else audit_chain.GENESIS, row)
            row["id"] = db.insert("audit", row, returning="id")
        return AuditRecord.from_row(row)

    def audit(self, op_id: str | None = None) -> list[AuditRecord]:
        if op_id is None:
            rows = self._query("SELECT * FROM audit ORDER BY id")
        else:
            rows = self._query("SELECT * FROM audit WHERE operation_id = ? ORDER BY id", (op_id,))
        return [AuditRecord.from_row(r) for r in rows]

    def audit_of_kind(self, event: str) -> list[AuditRecord]:
        rows = self._query("SELECT * FROM audit WHERE event = ? ORDER BY id", (str(event),))
        return [AuditRecord.from_row(r) for r in rows]
