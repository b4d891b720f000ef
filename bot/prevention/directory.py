"""Which migrations a check reviews, and what runs before each.

With a database: the pending migrations (what `prisma migrate deploy` would apply, from
Prisma's status), each reviewed on the schema the applied ones and the pending ones before
it leave. Without one (CI without a database): the migrations named, each after every
migration before it in the directory.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import psycopg

from bot.errors import NotFound, UserError
from bot.prevention.review import MigrationReview, review_migration
from bot.prisma.migrations_dir import MigrationsDirectory, read_migrations_dir
from bot.prisma.status import migration_status


def review_directory(
    path: Path,
    *,
    conn: psycopg.Connection | None = None,
    names: Sequence[str] = (),
    statement_timeout: str = "60s",
    run_lint: bool = True,
) -> tuple[MigrationReview, ...]:
    """Reviews of ``names`` (default: every pending migration; needs ``conn``)."""
    directory = read_migrations_dir(path)
    if not directory.migrations:
        raise UserError(
            f"No migrations in {path}.",
            "Point --migrations-dir at Prisma's migrations directory (prisma/migrations).",
            code="no_migrations",
        )
    applied: set[str] | None = None
    if conn is not None:
        status = migration_status(conn, path)
        applied = set(status.applied)
        wanted = list(names) or list(status.pending)
    elif names:
        wanted = list(names)
    else:
        raise UserError(
            "Without a database the check cannot tell which migrations are pending.",
            "Name them with --migration NAME, or give --database-url-env VAR.",
            code="no_pending_source",
        )
    for name in wanted:
        if directory.get(name) is None:
            raise NotFound(
                f"There is no migration `{name}` in {path}.",
                "Check the name (the migration's directory name).",
            )
    return tuple(
        _review(
            directory,
            name,
            _earlier(directory, name, applied, wanted),
            conn,
            statement_timeout,
            run_lint,
        )
        for name in sorted(wanted, key=directory.names.index)
    )


def _earlier(
    directory: MigrationsDirectory, name: str, applied: set[str] | None, deploying: list[str]
) -> list[str]:
    """Scripts that will have run before ``name``: applied ones and those deployed with
    it, in directory order (every earlier one when nothing says what is applied)."""
    before = directory.names[: directory.names.index(name)]
    scripts = []
    for earlier in before:
        local = directory.get(earlier)
        if local.sql is None:
            continue
        if applied is None or earlier in applied or earlier in deploying:
            scripts.append(local.script)
    return scripts


def _review(directory, name, earlier, conn, statement_timeout, run_lint) -> MigrationReview:
    local = directory.get(name)
    if local.sql is None:
        return MigrationReview(name, None, error="its migration.sql is missing or unreadable")
    return review_migration(
        name,
        local.script,
        checksum=local.checksum,
        earlier_sql=earlier,
        conn=conn,
        statement_timeout=statement_timeout,
        run_lint=run_lint,
    )
