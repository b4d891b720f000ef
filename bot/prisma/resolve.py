"""``prisma migrate resolve``: mark a failed migration rolled back, or mark one applied.

The checks, their order and the rows written follow prisma-engines'
mark_migration_rolled_back.rs and mark_migration_applied.rs; every write happens inside
Prisma's advisory lock.
"""

from __future__ import annotations

from pathlib import Path

import psycopg

from bot.prisma.advisory_lock import DEFAULT_LOCK_TIMEOUT, prisma_advisory_lock
from bot.prisma.connection import autocommit_connection
from bot.prisma.error_codes import (
    no_migrations_table,
    p3008_already_applied,
    p3011_never_applied,
    p3012_not_failed,
    p3017_not_found,
)
from bot.prisma.history import (
    MigrationRecord,
    create_migrations_table,
    delete_rows,
    insert_applied,
    read_history,
    set_rolled_back,
)
from bot.prisma.migrations_dir import read_migrations_dir


def mark_rolled_back(
    conn: psycopg.Connection, name: str, *, lock_timeout: float = DEFAULT_LOCK_TIMEOUT
) -> tuple[MigrationRecord, ...]:
    """``resolve --rolled-back NAME``: set rolled_back_at on NAME's failed rows, nothing else.

    Returns the rows it marked; none (and no error) when they were already rolled back.
    P3011 when NAME has no row, P3012 when every row of NAME finished.
    """
    with autocommit_connection(conn) as conn, prisma_advisory_lock(conn, lock_timeout):
        history = read_history(conn)
        if history is None:
            raise no_migrations_table()
        rows = [r for r in history if r.migration_name == name]
        if not rows:
            raise p3011_never_applied(name)
        if all(r.finished_at is not None for r in rows):
            raise p3012_not_failed(name)
        failed = [r for r in rows if r.failed]
        for row in failed:
            set_rolled_back(conn, row.id)
        return _reread(conn, [r.id for r in failed])


def remove_from_history(
    conn: psycopg.Connection, name: str, *, lock_timeout: float = DEFAULT_LOCK_TIMEOUT
) -> int:
    """The runbook's option 4 step "Update Prisma migration history": DELETE NAME's rows.

    Prisma itself never deletes rows; the runbook does, after undoing a migration by hand.
    The migration is then pending again: the next deploy re-runs it unless its directory is
    removed too. Inside Prisma's lock, by parameter; P3011 when NAME has no row.
    """
    with autocommit_connection(conn) as conn, prisma_advisory_lock(conn, lock_timeout):
        history = read_history(conn)
        if history is None:
            raise no_migrations_table()
        if not any(r.migration_name == name for r in history):
            raise p3011_never_applied(name)
        return delete_rows(conn, name)


def mark_applied(
    conn: psycopg.Connection,
    name: str,
    migrations_dir: Path | str,
    *,
    lock_timeout: float = DEFAULT_LOCK_TIMEOUT,
) -> MigrationRecord:
    """``resolve --applied NAME``: roll back NAME's failed rows, then insert a finished row
    (uuid4 id, checksum of the current file, logs '', started_at = finished_at,
    applied_steps_count 0). Returns the inserted row.

    P3019 on a lock file for another provider, P3017 when NAME is not a directory with a
    migration.sql, P3008 when NAME has a finished row. Creates the history table if missing
    (Prisma's baseline_initialize: this is how an existing database gets baselined).
    """
    directory = read_migrations_dir(migrations_dir)
    directory.check_provider()
    with autocommit_connection(conn) as conn, prisma_advisory_lock(conn, lock_timeout):
        migration = directory.get(name)
        if migration is None or migration.sql is None:
            raise p3017_not_found(name)
        history = read_history(conn)
        if history is None:
            create_migrations_table(conn)
            history = ()
        rows = [r for r in history if r.migration_name == name]
        if any(r.finished_at is not None for r in rows):
            raise p3008_already_applied(name)
        for row in rows:
            if row.failed:
                set_rolled_back(conn, row.id)
        (inserted,) = _reread(conn, [insert_applied(conn, name, migration.checksum)])
        return inserted


def _reread(conn: psycopg.Connection, ids: list[str]) -> tuple[MigrationRecord, ...]:
    history = read_history(conn) or ()
    return tuple(r for r in history if r.id in ids)
