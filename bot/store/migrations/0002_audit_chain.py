"""0002: the audit log's hash chain (bot/store/audit_chain.py): a ``chain`` column, filled
in for the records already there, in order."""

from __future__ import annotations

import sqlite3

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
