"""The PostgreSQL state database as a migration target (bot/store/migrations/__init__.py).

Each migration runs in one transaction (PostgreSQL's DDL is transactional) holding an
advisory lock, so replicas starting at the same moment migrate one after the other and the
later ones find the versions recorded. A database already at the latest version needs no
privilege beyond reading ``schema_version``: the replicas' own role creates nothing
(docs/state-privileges.sql).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import psycopg

from bot.store.migrations import VERSION_TABLE, Migration, versions

# Any fixed number: "roll".
_MIGRATION_LOCK = 0x726F6C6C

_VERSION_DDL = f"""CREATE TABLE IF NOT EXISTS {VERSION_TABLE} (
    version INTEGER PRIMARY KEY,
    name TEXT NOT NULL,
    applied_at TEXT NOT NULL
)"""


class PostgresTarget:
    dialect = "postgres"

    def __init__(self, conn: psycopg.Connection, description: str):
        self.conn = conn
        self.description = description  # the URL with its password masked

    @contextmanager
    def write_transaction(self) -> Iterator[psycopg.Connection]:
        with self.conn.transaction():
            self.conn.execute("SELECT pg_advisory_xact_lock(%s)", (_MIGRATION_LOCK,))
            yield self.conn

    def applied_versions(self, conn: psycopg.Connection) -> set[int]:
        if conn.execute("SELECT to_regclass(%s)", (VERSION_TABLE,)).fetchone()[0] is None:
            conn.execute(_VERSION_DDL)
        return versions(iter(conn.execute(f"SELECT version FROM {VERSION_TABLE}").fetchall()))

    def record(self, conn: psycopg.Connection, migration: Migration, applied_at: str) -> None:
        conn.execute(
            f"INSERT INTO {VERSION_TABLE} (version, name, applied_at) VALUES (%s, %s, %s)",
            (migration.version, migration.name, applied_at),
        )


def schema_version(conn: psycopg.Connection) -> int:
    """The highest applied version (0 for a database never migrated), read without creating
    anything: doctor reads it with the replicas' own role."""
    if conn.execute("SELECT to_regclass(%s)", (VERSION_TABLE,)).fetchone()[0] is None:
        return 0
    return conn.execute(f"SELECT COALESCE(MAX(version), 0) FROM {VERSION_TABLE}").fetchone()[0]
