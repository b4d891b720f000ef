"""Prisma's user-facing errors, with Prisma's code and Prisma's own text.

Texts from prisma-engines ``libs/user-facing-errors/src/schema_engine.rs`` and
``common.rs`` (6.x); the hint is the bot's: what to do next, in the runbook's words.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

from bot.errors import ConflictError, NotFound, UserError

RESOLVE_DOCS = "https://pris.ly/d/migrate-resolve"
RESOLVE_HINT = "Read more about how to resolve migration issues in a production database: "


def p1002_lock_timeout(timeout_seconds: float, holder: str | None) -> UserError:
    timeout_ms = round(timeout_seconds * 1000)
    message = (
        "The database server was reached but timed out.\n\nPlease try again.\n\n"
        "Please make sure your database server is running at the configured address.\n\n"
        "Context: Timed out trying to acquire a postgres advisory lock "
        f"(SELECT pg_advisory_lock(72707369)). Timeout: {timeout_ms}ms. "
        "See https://pris.ly/d/migrate-advisory-locking for details."
    )
    who = f"Prisma's migration lock is held by {holder}." if holder else "Nobody holds it now."
    return ConflictError(
        message, f"{who} Wait for that migration command to finish, then try again.", code="P1002"
    )


def p3005_schema_not_empty() -> UserError:
    return ConflictError(
        "The database schema is not empty. Read more about how to baseline an existing "
        "production database: https://pris.ly/d/migrate-baseline",
        "Baseline it first: mark the migration that matches the current schema as applied.",
        code="P3005",
    )


def p3008_already_applied(name: str) -> UserError:
    return ConflictError(
        f"The migration `{name}` is already recorded as applied in the database.",
        "Nothing to resolve: check /rollback status.",
        code="P3008",
    )


def p3009_failed_migrations(failed: Sequence[tuple[str, datetime, str | None]]) -> UserError:
    """``failed``: (migration name, started_at, logs) of every failed row, in history order."""
    details = "".join(_failed_migration_line(*row) for row in failed)
    return ConflictError(
        "migrate found failed migrations in the target database, new migrations will not be "
        f"applied. {RESOLVE_HINT}{RESOLVE_DOCS}\n{details}",
        "Resolve the failed migration first (runbook option 1), then re-run migrations.",
        code="P3009",
    )


def _failed_migration_line(name: str, started_at: datetime, logs: str | None) -> str:
    # apply_migrations.rs::detect_failed_migrations: logs trimmed, omitted when empty.
    trimmed = (logs or "").strip()
    with_logs = f" with the following logs:\n{trimmed}" if trimmed else ""
    return f"The `{name}` migration started at {chrono_utc(started_at)} failed{with_logs}\n"


def chrono_utc(moment: datetime) -> str:
    """A timestamp as Rust's chrono prints a DateTime<Utc>: "2025-01-31 09:15:02.123456 UTC"
    (fraction only when non-zero, 3 or 6 digits as needed)."""
    moment = moment.astimezone(UTC)
    text = moment.strftime("%Y-%m-%d %H:%M:%S")
    if moment.microsecond % 1000 == 0 and moment.microsecond:
        text += f".{moment.microsecond // 1000:03d}"
    elif moment.microsecond:
        text += f".{moment.microsecond:06d}"
    return text + " UTC"


def p3011_never_applied(name: str) -> UserError:
    return NotFound(
        f"Migration `{name}` cannot be rolled back because it was never applied to the "
        "database. Hint: did you pass in the whole migration name? (example: "
        '"20201207184859_initial_migration")',
        "Check the name with /rollback status.",
        code="P3011",
    )


def p3012_not_failed(name: str) -> UserError:
    return ConflictError(
        f"Migration `{name}` cannot be rolled back because it is not in a failed state.",
        "It finished successfully: to undo it, create a reverse migration "
        "(runbook option 2, /rollback revert).",
        code="P3012",
    )


def p3017_not_found(name: str) -> UserError:
    return NotFound(
        f"The migration {name} could not be found. Please make sure that the migration exists, "
        "and that you included the whole name of the directory. (example: "
        '"20201207184859_initial_migration")',
        "Only a migration present in the migrations directory can be marked as applied.",
        code="P3017",
    )


def p3018_failed_to_apply(name: str, error_code: str, error: str) -> UserError:
    return UserError(p3018_message(name, error_code, error), P3018_HINT, code="P3018")


P3018_HINT = "Diagnose what it changed with /rollback status, then resolve it (runbook option 1)."


def p3018_message(name: str, error_code: str, error: str) -> str:
    return (
        "A migration failed to apply. New migrations cannot be applied before the error is "
        f"recovered from. {RESOLVE_HINT}{RESOLVE_DOCS}\n\nMigration name: {name}\n\n"
        f"Database error code: {error_code}\n\nDatabase error:\n{error}\n"
    )


def database_error(logs: str) -> str:
    """The database's own words in a failed migration's log (what follows "Database
    error:" in p3018_message: PostgreSQL's ERROR, DETAIL and HINT lines), else the log."""
    _, found, error = logs.partition("\n\nDatabase error:\n")
    return error.strip() if found else logs.strip()


def failed_migration_fact(message: str) -> str | None:
    """For a P3018 message, the line a person needs first: which migration failed and
    PostgreSQL's own error ("`x` failed: ERROR: relation "Invoice" does not exist"), not the
    preamble every P3018 starts with. None for any other message."""
    name = next(
        (
            line.removeprefix("Migration name: ")
            for line in message.splitlines()
            if line.startswith("Migration name: ")
        ),
        None,
    )
    if name is None or "\n\nDatabase error:\n" not in message:
        return None
    return f"`{name}` failed: {database_error(message.replace(P3018_HINT, ''))}"


def p3019_provider_switched(expected_provider: str) -> UserError:
    return ConflictError(
        "The datasource provider `postgresql` specified in your schema does not match the one "
        f"specified in the migration_lock.toml, `{expected_provider}`. Please remove your "
        "current migration directory and start a new migration history with prisma migrate "
        "dev. Read more: https://pris.ly/d/migrate-provider-switch",
        "This bot only runs PostgreSQL migrations: check the migrations directory configured "
        "for this environment.",
        code="P3019",
    )


def no_migrations_table() -> UserError:
    # Prisma answers with an internal "Invariant violation" here; the bot says what it means.
    return NotFound(
        "This database has no _prisma_migrations table: Prisma Migrate never ran on it, so "
        "there is no migration to roll back.",
        "Check that the environment points at the right database.",
    )


def unreadable_migration(name: str, path: str) -> UserError:
    return NotFound(
        f"Failed to read migration script at {path} (migration `{name}`).",
        "Restore the migration.sql file or delete the directory.",
    )
