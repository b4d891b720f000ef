"""0002: the audit log's hash chain (bot/store/audit_chain.py): a ``chain`` column, filled
in for the records already there, in order."""

from __future__ import annotations

import sqlite3

import psycopg

from bot.store import audit_chain
from bot.store.migrations.sqlite_target import columns, run_script

_UPDATE_TRIGGER = """CREATE TRIGGER audit_is_append_only_update BEFORE UPDATE ON audit
    BEGIN SELECT RAISE(ABORT, 'audit is append-only'); END;"""


def sqlite(conn: sqlite3.Connection) -> None:
    if "chain" not in columns(conn, "audit"):
        conn.execute("ALTER TABLE audit ADD COLUMN chain TEXT")
    # The append-only trigger is lifted for the fill inside this migration's transaction
    # only: it is back before anything else can write.
    conn.execute("DROP TRIGGER IF EXISTS audit_is_append_only_update")
    previous = audit_chain.GENESIS
    names = ("id", *audit_chain.CHAINED)
    for values in conn.execute(f"SELECT {', '.join(names)} FROM audit ORDER BY id").fetchall():
        row = dict(zip(names, values, strict=True))
        previous = audit_chain.link(previous, row)
        conn.execute("UPDATE audit SET chain = ? WHERE id = ?", (previous, row["id"]))
    run_script(conn, _UPDATE_TRIGGER)


def postgres(conn: psycopg.Connection) -> None:
    conn.execute("ALTER TABLE audit ADD COLUMN IF NOT EXISTS chain TEXT")
    rows = conn.execute(f"SELECT id, {', '.join(audit_chain.CHAINED)} FROM audit ORDER BY id")
    names = ("id", *audit_chain.CHAINED)
    previous, links = audit_chain.GENESIS, []
    for values in rows.fetchall():
        row = dict(zip(names, values, strict=True))
        previous = audit_chain.link(previous, row)
        links.append((previous, row["id"]))
    if links:
        # As on SQLite: the append-only trigger is lifted inside this transaction only.
        conn.execute("ALTER TABLE audit DISABLE TRIGGER audit_is_append_only_row")
        conn.cursor().executemany("UPDATE audit SET chain = %s WHERE id = %s", links)
        conn.execute("ALTER TABLE audit ENABLE TRIGGER audit_is_append_only_row")
