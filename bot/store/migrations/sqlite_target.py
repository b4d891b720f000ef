"""The SQLite state file as a migration target (bot/store/migrations/__init__.py).

Each migration runs inside ``BEGIN IMMEDIATE`` (SQLite's DDL is transactional), so a
migration either happened, with its ``schema_version`` row, or did not; and a second
process starting at the same moment waits for the write lock, then sees the version.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from bot.store.migrations import VERSION_TABLE, Migration, versions

_VERSION_DDL = f"""CREATE TABLE IF NOT EXISTS {VERSION_TABLE} (
    version INTEGER PRIMARY KEY,
    name TEXT NOT NULL,
    applied_at TEXT NOT NULL
)"""


class SqliteTarget:
    dialect = "sqlite"

    def __init__(self, conn: sqlite3.Connection, path: Path | str):
        self.conn = conn
        self.description = str(path)

    @contextmanager
    def write_transaction(self) -> Iterator[sqlite3.Connection]:
        self.conn.execute("BEGIN IMMEDIATE")
        try:
            yield self.conn
        except BaseException:
            self.conn.execute("ROLLBACK")
            raise
        self.conn.execute("COMMIT")

    def applied_versions(self, conn: sqlite3.Connection) -> set[int]:
        conn.execute(_VERSION_DDL)
        return versions(conn.execute(f"SELECT version FROM {VERSION_TABLE}"))

    def record(self, conn: sqlite3.Connection, migration: Migration, applied_at: str) -> None:
        conn.execute(
            f"INSERT INTO {VERSION_TABLE} (version, name, applied_at) VALUES (?, ?, ?)",
            (migration.version, migration.name, applied_at),
        )


def run_script(conn: sqlite3.Connection, script: str) -> None:
    """Runs a script statement by statement inside the caller's transaction
    (``executescript`` would COMMIT first). A statement ends where SQLite says it is
    complete, so a trigger's ``BEGIN ... END;`` stays whole."""
    statement = ""
    for line in script.splitlines(keepends=True):
        statement += line
        if sqlite3.complete_statement(statement):
            conn.execute(statement)
            statement = ""
    if statement.strip():
        raise ValueError(f"incomplete statement at the end of a migration: {statement!r}")


def columns(conn: sqlite3.Connection, table: str) -> set[str]:
    return {row[1] for row in conn.execute(f"PRAGMA table_info({table})")}


def schema_version(conn: sqlite3.Connection) -> int:
    """The highest applied version (0 for a file written before versioning, or empty)."""
    exists = conn.execute(
        "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", (VERSION_TABLE,)
    ).fetchone()
    if not exists:
        return 0
    return conn.execute(f"SELECT COALESCE(MAX(version), 0) FROM {VERSION_TABLE}").fetchone()[0]
