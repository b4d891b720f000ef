"""The state schema, brought up to date at start-up by the numbered migrations in
bot/store/migrations/. A file written by an earlier release is copied aside first
(``<state_db>.schema-vN.bak``, SQLite's online backup), so an upgrade can be undone by
running the earlier release on that copy."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import psycopg

from bot.redaction import Secret
from bot.store import migrations
from bot.store.migrations import postgres_target
from bot.store.migrations.sqlite_target import SqliteTarget, schema_version


def upgrade(conn: sqlite3.Connection, path: Path | str = ":memory:") -> int:
    """Applies the pending migrations; returns the schema version the file is now at."""

    def backup_first(todo: list[migrations.Migration]) -> None:
        written = conn.execute(
            "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name != ?",
            (migrations.VERSION_TABLE,),
        ).fetchone()[0]
        if written and str(path) != ":memory:":
            copy = Path(f"{path}.schema-v{schema_version(conn)}.bak")
            with sqlite3.connect(copy) as target:
                conn.backup(target)
            target.close()

    migrations.migrate(SqliteTarget(conn, path), before=backup_first)
    return schema_version(conn)


def version_of(location: Path | Secret) -> int:
    """The schema version a state database is at, read without changing it (doctor's
    check): a SQLite file opened read-only, or a PostgreSQL URL on a connection of its own."""
    if isinstance(location, Secret):
        with psycopg.connect(location.reveal(), connect_timeout=5) as conn:
            return postgres_target.schema_version(conn)
    conn = sqlite3.connect(f"{Path(location).resolve().as_uri()}?mode=ro", uri=True)
    try:
        return schema_version(conn)
    finally:
        conn.close()
