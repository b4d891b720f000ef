"""``prisma migrate deploy``: apply the pending migrations as Prisma does.

Order and writes from prisma-engines apply_migrations.rs: lock, create the history table
(P3005 if the schema already has tables), refuse on failed rows (P3009), then for each
pending migration: insert its row, run the whole file as ONE simple-query call, then count
the step and set finished_at; on error store the error as logs and stop (P3018).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

import psycopg

from bot.errors import ConflictError, NotFound
from bot.prisma.advisory_lock import DEFAULT_LOCK_TIMEOUT, prisma_advisory_lock
from bot.prisma.connection import ConnOrUrl, autocommit_connection
from bot.prisma.error_codes import (
    p3005_schema_not_empty,
    p3009_failed_migrations,
    p3018_failed_to_apply,
    p3018_message,
    unreadable_migration,
)
from bot.prisma.history import (
    MigrationRecord,
    add_applied_step,
    create_migrations_table,
    insert_started,
    read_history,
    schema_has_tables,
    set_finished,
    set_logs,
)
from bot.prisma.migrations_dir import LocalMigration, MigrationsDirectory, read_migrations_dir

NOTHING_TO_APPLY = "No pending migrations to apply."
ALL_APPLIED = "All migrations have been successfully applied."


class DeployEventKind(StrEnum):
    STARTED = "started"
    SUCCEEDED = "succeeded"
    FAILED = "failed"


@dataclass(frozen=True)
class DeployEvent:
    """Progress of one migration, for the engine to stream to Slack."""

    kind: DeployEventKind
    migration: str
    index: int  # 1-based position among the migrations this deploy applies
    total: int
    error: str | None = None  # the database error, on FAILED


@dataclass(frozen=True)
class DeployResult:
    applied: tuple[str, ...]
    message: str  # what the CLI ends with


# Called synchronously; it should not raise (an exception stops the deploy where it is).
ProgressCallback = Callable[[DeployEvent], None]
# Runs one migration's script on the deploy's connection; a psycopg.Error is Prisma's P3018.
ScriptRunner = Callable[[psycopg.Connection, "LocalMigration"], None]


def deploy(
    conn_or_url: ConnOrUrl,
    migrations_dir: Path | str,
    *,
    on_progress: ProgressCallback | None = None,
    lock_timeout: float = DEFAULT_LOCK_TIMEOUT,
    only: str | None = None,
    run: ScriptRunner | None = None,
) -> DeployResult:
    """Apply every pending migration in name order, exactly as `prisma migrate deploy`.

    Raises P3019 (lock file), P1002 (lock wait), P3005, P3009, or P3018 after recording the
    failed migration; ``on_progress`` gets STARTED, then SUCCEEDED or FAILED, per migration.

    ``only`` names the one migration this deploy is for (a reverse migration): when another
    is pending too, Prisma would apply it as well, so nothing is applied (ConflictError).
    ``run`` runs a migration's script in place of ``run_script`` (the reverse migration's
    statements one by one inside one transaction, so each is reported); the bookkeeping
    around it is Prisma's either way.
    """
    directory = read_migrations_dir(migrations_dir)
    directory.check_provider()
    report = on_progress or _ignore
    with autocommit_connection(conn_or_url) as conn, prisma_advisory_lock(conn, lock_timeout):
        history = _initialized_history(conn)
        _refuse_failed(history)
        pending = _pending(directory, history)
        if only is not None:
            _refuse_others(directory, pending, only)
        for index, migration in enumerate(pending, start=1):
            _apply(conn, migration, index, len(pending), report, run or _run_whole_script)
    names = tuple(m.name for m in pending)
    return DeployResult(names, ALL_APPLIED if names else NOTHING_TO_APPLY)


def _refuse_others(directory: MigrationsDirectory, pending: list[LocalMigration], name: str):
    if directory.get(name) is None:
        raise NotFound(f"`{name}/migration.sql` is not in the migrations directory.")
    others = [m.name for m in pending if m.name != name]
    if others:
        raise ConflictError(
            f"Pending migrations other than `{name}`: "
            + ", ".join(f"`{n}`" for n in others)
            + ". Prisma would apply them too, in name order; nothing was applied.",
            "Deploy or remove them first (`/rollback deploy`), then try again.",
        )
    if not pending:
        raise ConflictError(f"`{name}` is already applied; nothing was applied.")


def _ignore(event: DeployEvent) -> None:
    return None


def _initialized_history(conn: psycopg.Connection) -> tuple[MigrationRecord, ...]:
    # SqlMigrationConnector::initialize: a schema that already has tables but no history
    # must be baselined first (P3005).
    history = read_history(conn)
    if history is not None:
        return history
    if schema_has_tables(conn):
        raise p3005_schema_not_empty()
    create_migrations_table(conn)
    return ()


def _refuse_failed(history: tuple[MigrationRecord, ...]) -> None:
    failed = [(r.migration_name, r.started_at, r.logs) for r in history if r.failed]
    if failed:
        raise p3009_failed_migrations(failed)


def _pending(
    directory: MigrationsDirectory, history: tuple[MigrationRecord, ...]
) -> list[LocalMigration]:
    live = {r.migration_name for r in history if r.rolled_back_at is None}
    return [m for m in directory.migrations if m.name not in live]


def _apply(
    conn: psycopg.Connection,
    migration: LocalMigration,
    index: int,
    total: int,
    report: ProgressCallback,
    run: ScriptRunner,
) -> None:
    if migration.sql is None:
        raise unreadable_migration(migration.name, str(migration.path / "migration.sql"))
    # Reported before the row exists: a callback that raises then leaves nothing behind.
    report(DeployEvent(DeployEventKind.STARTED, migration.name, index, total))
    row_id = insert_started(conn, migration.name, migration.checksum)
    try:
        run(conn, migration)
    except psycopg.Error as exc:
        code, error = _database_error(exc)
        set_logs(conn, row_id, p3018_message(migration.name, code, error))
        report(DeployEvent(DeployEventKind.FAILED, migration.name, index, total, error))
        raise p3018_failed_to_apply(migration.name, code, error) from exc
    add_applied_step(conn, row_id)
    set_finished(conn, row_id)
    report(DeployEvent(DeployEventKind.SUCCEEDED, migration.name, index, total))


def _run_whole_script(conn: psycopg.Connection, migration: LocalMigration) -> None:
    run_script(conn, migration.script)


def run_script(conn: psycopg.Connection, script: str) -> None:
    """Run a whole script as ONE simple-query message, like Prisma's apply_script.

    psycopg sends a query without parameters through PQsendQuery (the simple protocol), and
    PostgreSQL runs a multi-statement simple query as one implicit transaction unless the
    script has its own BEGIN/COMMIT (PostgreSQL docs, "Multiple Statements in a Simple
    Query"). Nothing in the script is interpreted by psycopg (no placeholders).
    """
    try:
        conn.execute(script, prepare=False)
    finally:
        # A failed script that opened its own transaction leaves it aborted; end it so the
        # bookkeeping writes can run, as Prisma's next statement would.
        if conn.info.transaction_status == psycopg.pq.TransactionStatus.INERROR:
            conn.execute("ROLLBACK")


def _database_error(exc: psycopg.Error) -> tuple[str, str]:
    """The SQLSTATE and the server's message, laid out like psql prints it."""
    diag = exc.diag
    lines = [f"{diag.severity or 'ERROR'}: {diag.message_primary or str(exc).strip()}"]
    lines += [f"DETAIL: {diag.message_detail}"] if diag.message_detail else []
    lines += [f"HINT: {diag.message_hint}"] if diag.message_hint else []
    return exc.sqlstate or "", "\n".join(lines)
