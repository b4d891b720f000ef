"""Leases: exactly one walker per operation across replicas.

A replica walks an operation only while it holds the operation's lease (owner, fencing
token, expiry), renewed by a heartbeat. A replica that dies stops renewing; once its lease
has expired another replica takes it, with a new token, and resumes the operation by the
restart rule (bot/engine/engine.py ``resume``). The token is checked in the same
transaction that claims a step and that records its result, so a replica that lost its
lease (paused, partitioned from the state database) can neither start a step nor record
one: a step's result is recorded once, by the lease's holder.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from bot.clock import iso
from bot.store.transactions import Connected, Tx


class LeaseLost(Exception):
    """The operation's lease was taken by another replica: this one must stop walking it."""


@dataclass(frozen=True)
class Lease:
    operation_id: str
    owner: str
    token: int
    # The owner whose lease had run out when this one was taken (a replica that died),
    # None when the lease was free or already this owner's (its previous process).
    taken_over_from: str | None = None


class LeaseStatements(Connected):
    """The statements on an operation's lease columns (part of ``Store``)."""

    def take_lease(self, op_id: str, owner: str, now: datetime, seconds: float) -> Lease | None:
        """The lease for ``owner`` until ``now + seconds``, with the next token: when nobody
        holds it, its holder's time ran out, or the holder is ``owner`` (a replica is one
        process: a lease under its name is its own, or its previous process's). None when
        another replica holds it or the operation has ended."""
        with self.transaction() as db:
            rows = db.query(
                "SELECT holds_environment, lease_owner, lease_token, lease_expires_at"
                f" FROM operations WHERE id = ?{self._db.for_update}",
                (op_id,),
            )
            if not rows or rows[0]["holds_environment"] != 1:
                return None
            row = rows[0]
            holder = row["lease_owner"]
            live = holder is not None and row["lease_expires_at"] > iso(now)
            if live and holder != owner:
                return None
            token = row["lease_token"] + 1
            db.execute(
                "UPDATE operations SET lease_owner = ?, lease_token = ?, lease_expires_at = ?"
                " WHERE id = ?",
                (owner, token, iso(now + timedelta(seconds=seconds)), op_id),
            )
        taken_over = holder if holder not in (None, owner) else None
        return Lease(op_id, owner, token, taken_over)

    def renew_lease(self, lease: Lease, now: datetime, seconds: float) -> bool:
        """The heartbeat; False when the lease is no longer this holder's."""
        return self._change(
            "UPDATE operations SET lease_expires_at = ? WHERE id = ? AND lease_token = ?"
            " AND lease_owner = ? AND holds_environment = 1",
            (iso(now + timedelta(seconds=seconds)), lease.operation_id, lease.token, lease.owner),
        )

    def release_lease(self, lease: Lease) -> None:
        """Frees the lease (the walker stopped at a gate or the operation ended); a lease
        already taken by another replica is left as it is."""
        self._change(
            "UPDATE operations SET lease_owner = NULL, lease_expires_at = NULL"
            " WHERE id = ? AND lease_token = ?",
            (lease.operation_id, lease.token),
        )

    def unwalked_operations(self, now: datetime) -> list[tuple[str, str | None]]:
        """Active operations nobody walks: (id, the owner whose lease ran out, or None)."""
        rows = self._query(
            "SELECT id, lease_owner FROM operations WHERE holds_environment = 1"
            " AND (lease_owner IS NULL OR lease_expires_at <= ?) ORDER BY created_at",
            (iso(now),),
        )
        return [(r["id"], r["lease_owner"]) for r in rows]

    def _fenced(self, db: Tx, op_id: str, lease: Lease | None, *, active: bool) -> bool:
        """Locks the operation's row; whether it is still under ``lease``'s token (when
        given) and, with ``active``, has not ended."""
        rows = db.query(
            f"SELECT holds_environment, lease_token FROM operations WHERE id = ?"
            f"{self._db.for_update}",
            (op_id,),
        )
        if not rows or (active and rows[0]["holds_environment"] != 1):
            return False
        return lease is None or rows[0]["lease_token"] == lease.token
