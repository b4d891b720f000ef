"""Run the undo of a partly applied migration: one transaction, inside Prisma's lock.

Runbook option 1 assumes "the database is in a known state". When a failed migration left
some statements applied, the bot first undoes exactly those (the reverse plan of the
diagnosis), so that "mark it rolled back, fix the file, re-run migrations" starts from the
schema the previous migration left.
"""

from __future__ import annotations

import psycopg

from bot.errors import ConflictError
from bot.prisma.advisory_lock import DEFAULT_LOCK_TIMEOUT, prisma_advisory_lock
from bot.prisma.connection import autocommit_connection
from bot.sql.reverse import ReversePlan

# DDL waits for an ACCESS EXCLUSIVE lock behind every open query on the table; bounded so a
# busy production table makes the undo fail fast instead of blocking everyone behind it.
DEFAULT_DDL_LOCK_TIMEOUT = 5.0


def run_undo(
    conn: psycopg.Connection,
    plan: ReversePlan,
    *,
    lock_timeout: float = DEFAULT_LOCK_TIMEOUT,
    ddl_lock_timeout: float = DEFAULT_DDL_LOCK_TIMEOUT,
) -> tuple[str, ...]:
    """Run every statement of ``plan`` in ONE transaction (all or nothing) while holding
    Prisma's advisory lock, so no ``prisma migrate deploy`` runs in between. Returns the
    statements run. An incomplete plan is refused: half an undo is not a known state."""
    if not plan.complete:
        reasons = "; ".join(f"{s.undoes.description}: {s.note}" for s in plan.irreversible)
        raise ConflictError(
            f"This migration cannot be undone statement by statement: {reasons}.",
            "Use point-in-time recovery (runbook option 3).",
        )
    with (
        autocommit_connection(conn) as conn,
        prisma_advisory_lock(conn, lock_timeout),
    ):
        try:
            _run_in_one_transaction(conn, plan.statements, ddl_lock_timeout)
        except psycopg.Error as exc:
            raise ConflictError(
                f"The undo failed and was rolled back, nothing changed: {exc}".strip(),
                "Check what the error names (a busy table, a dependent object), then try again.",
            ) from exc
    return plan.statements


def _run_in_one_transaction(
    conn: psycopg.Connection, statements: tuple[str, ...], ddl_lock_timeout: float
) -> None:
    with conn.transaction():
        timeout = f"{round(ddl_lock_timeout * 1000)}ms"
        # is_local: the setting ends with this transaction (PostgreSQL docs, set_config).
        conn.execute("SELECT set_config('lock_timeout', %s, true)", (timeout,))
        for statement in statements:
            conn.execute(statement)
