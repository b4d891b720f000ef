"""Who holds an environment: its active operation, and the takeover that makes an approver
that operation's requester, only while it still holds the environment and nobody took it
first (part of ``Store``; bot/engine/custody.py decides who may)."""

from __future__ import annotations

from bot.clock import iso, utcnow
from bot.store.records import Operation
from bot.store.transactions import Connected


class HolderStatements(Connected):
    def active_operation(self, environment: str) -> Operation | None:
        rows = self._query(
            "SELECT * FROM operations WHERE environment = ? AND holds_environment = 1",
            (environment,),
        )
        return Operation.from_row(rows[0]) if rows else None

    def take_over(self, op_id: str, previous: str, user: str) -> bool:
        """The operation's requester becomes ``user``; False when it ended or changed hands
        meanwhile."""
        return self._change(
            "UPDATE operations SET requester = ?, updated_at = ? WHERE id = ?"
            " AND requester = ? AND holds_environment = 1",
            (user, iso(utcnow()), op_id, previous),
        )
