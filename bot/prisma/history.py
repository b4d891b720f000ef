"""The ``_prisma_migrations`` table: read it, create it, and write its rows as Prisma does.

Every statement here names the table through psycopg's sql.Identifier and passes values as
parameters; a migration name is never part of the SQL text.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum

import psycopg
from psycopg import sql

MIGRATIONS_TABLE = "_prisma_migrations"

# sql-schema-connector's PostgreSQL flavour, create_migrations_table (prisma-engines 6.x).
CREATE_MIGRATIONS_TABLE = """CREATE TABLE {table} (
    "id"                    VARCHAR(36) PRIMARY KEY NOT NULL,
    "checksum"              VARCHAR(64) NOT NULL,
    "finished_at"           TIMESTAMPTZ,
    "migration_name"        VARCHAR(255) NOT NULL,
    "logs"                  TEXT,
    "rolled_back_at"        TIMESTAMPTZ,
    "started_at"            TIMESTAMPTZ NOT NULL DEFAULT now(),
    "applied_steps_count"   INTEGER NOT NULL DEFAULT 0
);"""


class RecordState(StrEnum):
    APPLIED = "applied"  # finished_at set
    FAILED = "failed"  # finished_at NULL and rolled_back_at NULL
    ROLLED_BACK = "rolled_back"  # rolled_back_at set


@dataclass(frozen=True)
class MigrationRecord:
    """One row of ``_prisma_migrations``."""

    id: str
    checksum: str
    finished_at: datetime | None
    migration_name: str
    logs: str | None
    rolled_back_at: datetime | None
    started_at: datetime
    applied_steps_count: int

    @property
    def state(self) -> RecordState:
        if self.rolled_back_at is not None:
            return RecordState.ROLLED_BACK
        if self.finished_at is not None:
            return RecordState.APPLIED
        return RecordState.FAILED

    @property
    def failed(self) -> bool:
        # The definition every Prisma command uses (detect_failed_migrations & co).
        return self.finished_at is None and self.rolled_back_at is None


def now() -> datetime:
    """Prisma writes timestamps from the client's clock (chrono::Utc::now()), not now()."""
    return datetime.now(UTC)


def _table(conn: psycopg.Connection) -> sql.Composed:
    # Prisma creates and reads the table in the connection's schema (``?schema=``, else
    # public): current_schema() here, qualified so a search_path change cannot redirect it.
    schema = conn.execute("SELECT current_schema()").fetchone()[0] or "public"
    return sql.Identifier(schema, MIGRATIONS_TABLE)


def has_migrations_table(conn: psycopg.Connection) -> bool:
    row = conn.execute(
        "SELECT 1 FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
        " WHERE n.nspname = current_schema() AND c.relname = %s AND c.relkind IN ('r', 'p')",
        (MIGRATIONS_TABLE,),
    ).fetchone()
    return row is not None


def read_history(conn: psycopg.Connection) -> tuple[MigrationRecord, ...] | None:
    """Every row ordered by started_at, as Prisma lists them; None when there is no table."""
    if not has_migrations_table(conn):
        return None
    query = sql.SQL(
        "SELECT id, checksum, finished_at, migration_name, logs, rolled_back_at, started_at,"
        " applied_steps_count FROM {table} ORDER BY started_at ASC"
    ).format(table=_table(conn))
    return tuple(MigrationRecord(*row) for row in conn.execute(query).fetchall())


def schema_has_tables(conn: psycopg.Connection) -> bool:
    """Whether the connection's schema holds any table (Prisma's P3005 test before it
    creates its table in a database it does not manage yet)."""
    row = conn.execute(
        "SELECT 1 FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
        " WHERE n.nspname = current_schema() AND c.relkind IN ('r', 'p') LIMIT 1"
    ).fetchone()
    return row is not None


def create_migrations_table(conn: psycopg.Connection) -> None:
    conn.execute(sql.SQL(CREATE_MIGRATIONS_TABLE).format(table=_table(conn)))


def insert_started(conn: psycopg.Connection, name: str, checksum: str) -> str:
    """record_migration_started: id, checksum, started_at, migration_name; returns the id."""
    row_id = str(uuid.uuid4())
    conn.execute(
        sql.SQL(
            "INSERT INTO {table} (id, checksum, started_at, migration_name) VALUES (%s, %s, %s, %s)"
        ).format(table=_table(conn)),
        (row_id, checksum, now(), name),
    )
    return row_id


def insert_applied(conn: psycopg.Connection, name: str, checksum: str) -> str:
    """mark_migration_applied: logs '' and started_at = finished_at = one now()."""
    row_id, moment = str(uuid.uuid4()), now()
    conn.execute(
        sql.SQL(
            "INSERT INTO {table} (id, checksum, logs, started_at, finished_at, migration_name)"
            " VALUES (%s, %s, %s, %s, %s, %s)"
        ).format(table=_table(conn)),
        (row_id, checksum, "", moment, moment, name),
    )
    return row_id


def delete_rows(conn: psycopg.Connection, name: str) -> int:
    """Deletes every row of ``name`` (the runbook's option 4 history step; Prisma itself never
    deletes rows); returns how many."""
    query = sql.SQL("DELETE FROM {table} WHERE migration_name = %s").format(table=_table(conn))
    return conn.execute(query, (name,)).rowcount


def _update(conn: psycopg.Connection, assignment: str, row_id: str, *values: object) -> None:
    conn.execute(
        sql.SQL("UPDATE {table} SET " + assignment + " WHERE id = %s").format(table=_table(conn)),
        (*values, row_id),
    )


def set_rolled_back(conn: psycopg.Connection, row_id: str) -> None:
    _update(conn, "rolled_back_at = %s", row_id, now())


def add_applied_step(conn: psycopg.Connection, row_id: str) -> None:
    _update(conn, "applied_steps_count = applied_steps_count + 1", row_id)


def set_finished(conn: psycopg.Connection, row_id: str) -> None:
    _update(conn, "finished_at = %s", row_id, now())


def set_logs(conn: psycopg.Connection, row_id: str, logs: str) -> None:
    _update(conn, "logs = %s", row_id, logs)
