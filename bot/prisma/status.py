"""``migration_status``: the migration history compared with the migrations directory.

Prisma's own verdict and exit code are reproduced (schema-engine
diagnose_migration_history.rs + the CLI's MigrateStatus), and the bot adds what Prisma
computes but does not print and a person doing a rollback needs: edited migrations,
migrations missing from the directory, and who holds the migration lock.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from functools import cached_property
from pathlib import Path

import psycopg

from bot.prisma.advisory_lock import LockHolder, lock_holder
from bot.prisma.history import MigrationRecord, RecordState, read_history
from bot.prisma.migrations_dir import (
    LocalMigration,
    MigrationsDirectory,
    checksum_matches,
    read_migrations_dir,
)


class StatusVerdict(StrEnum):
    UP_TO_DATE = "up_to_date"
    NOT_YET_APPLIED = "not_yet_applied"
    HISTORIES_DIVERGE = "histories_diverge"
    NOT_MANAGED = "not_managed"
    FAILED = "failed"


@dataclass(frozen=True)
class MigrationStatus:
    directory: MigrationsDirectory
    records: tuple[MigrationRecord, ...]  # every row, ordered by started_at
    has_migrations_table: bool
    applied: tuple[str, ...]  # names with a finished row that is not rolled back
    failed: tuple[MigrationRecord, ...]  # rows neither finished nor rolled back
    rolled_back: tuple[str, ...]  # names whose every row is rolled back
    pending: tuple[str, ...]  # what deploy would apply: no row that is not rolled back
    edited: tuple[str, ...]  # checksum differs from the name's first row (Prisma's rule)
    missing: tuple[str, ...]  # names in the history with no directory
    unreadable: tuple[str, ...]  # directories without a readable migration.sql
    verdict: StatusVerdict  # what `prisma migrate status` concludes
    message: str  # what `prisma migrate status` prints for it (without colours)
    lock_holder: LockHolder | None

    @property
    def exit_code(self) -> int:
        """`prisma migrate status` exits 1 for every verdict but "up to date"."""
        return 0 if self.verdict == StatusVerdict.UP_TO_DATE else 1

    @cached_property
    def _rows_by_name(self) -> dict[str, list[MigrationRecord]]:
        return _by_name(self.records)

    def rows_for(self, name: str) -> tuple[MigrationRecord, ...]:
        return tuple(self._rows_by_name.get(name, ()))

    def local(self, name: str) -> LocalMigration | None:
        return self.directory.get(name)

    @property
    def known_names(self) -> tuple[str, ...]:
        """Every migration name in the directory or the history, directory order first."""
        names = dict.fromkeys(self.directory.names)
        names.update(dict.fromkeys(r.migration_name for r in self.records))
        return tuple(names)

    @property
    def warnings(self) -> tuple[str, ...]:
        """What Prisma's status does not print but a rollback needs to know."""
        return (
            *(f"`{n}` was edited after it was applied (checksum differs)." for n in self.edited),
            *(f"`{n}` is in the database history but not in the directory." for n in self.missing),
            *(f"`{n}` has no readable migration.sql." for n in self.unreadable),
        )


def migration_status(conn: psycopg.Connection, migrations_dir: Path | str) -> MigrationStatus:
    """Read-only. Raises P3019 when migration_lock.toml names another provider."""
    directory = read_migrations_dir(migrations_dir)
    directory.check_provider()
    history = read_history(conn)
    records = history or ()
    by_name = _by_name(records)
    not_in_database = tuple(m.name for m in directory.migrations if m.name not in by_name)
    missing = tuple(
        dict.fromkeys(r.migration_name for r in records if not directory.get(r.migration_name))
    )
    failed = tuple(r for r in records if r.failed)
    verdict, message = prisma_verdict(
        directory, history is not None, not_in_database, missing, failed
    )
    return MigrationStatus(
        directory=directory,
        records=records,
        has_migrations_table=history is not None,
        applied=_names(records, lambda r: r.state == RecordState.APPLIED),
        failed=failed,
        rolled_back=_rolled_back(by_name),
        pending=_pending(directory, records),
        edited=_edited(directory, by_name),
        missing=missing,
        unreadable=tuple(m.name for m in directory.migrations if m.sql is None),
        verdict=verdict,
        message=message,
        lock_holder=lock_holder(conn),
    )


def _by_name(records: tuple[MigrationRecord, ...]) -> dict[str, list[MigrationRecord]]:
    """Rows grouped by migration name, each group in started_at order (one pass: scanning
    the history once per name made 5,000 migrations take seconds)."""
    groups: dict[str, list[MigrationRecord]] = {}
    for record in records:
        groups.setdefault(record.migration_name, []).append(record)
    return groups


def _names(records: tuple[MigrationRecord, ...], keep) -> tuple[str, ...]:
    return tuple(dict.fromkeys(r.migration_name for r in records if keep(r)))


def _rolled_back(by_name: dict[str, list[MigrationRecord]]) -> tuple[str, ...]:
    return tuple(
        n for n, rows in by_name.items() if all(r.state == RecordState.ROLLED_BACK for r in rows)
    )


def _pending(
    directory: MigrationsDirectory, records: tuple[MigrationRecord, ...]
) -> tuple[str, ...]:
    # apply_migrations.rs: unapplied = no row of that name whose rolled_back_at is NULL.
    live = {r.migration_name for r in records if r.rolled_back_at is None}
    return tuple(m.name for m in directory.migrations if m.name not in live)


def _edited(
    directory: MigrationsDirectory, by_name: dict[str, list[MigrationRecord]]
) -> tuple[str, ...]:
    # diagnose_migration_history.rs compares with the FIRST row of that name by started_at,
    # even when it is a rolled-back attempt; CRLF/LF variants match (checksum.rs).
    edited = []
    for migration in directory.migrations:
        rows = by_name.get(migration.name)
        if (
            rows
            and migration.sql is not None
            and not checksum_matches(migration.sql, rows[0].checksum)
        ):
            edited.append(migration.name)
    return tuple(edited)


def prisma_verdict(
    directory: MigrationsDirectory,
    has_table: bool,
    not_in_database: tuple[str, ...],
    missing: tuple[str, ...],
    failed: tuple[MigrationRecord, ...],
) -> tuple[StatusVerdict, str]:
    """The CLI's checks, in its order: not yet applied, diverged, not managed, failed."""
    if not_in_database and not missing:
        return StatusVerdict.NOT_YET_APPLIED, _not_yet_applied_message(not_in_database)
    if not_in_database and missing:
        last_common = _last_common(directory, not_in_database[0])
        return StatusVerdict.HISTORIES_DIVERGE, _diverge_message(
            last_common, not_in_database, missing
        )
    if not has_table:
        return StatusVerdict.NOT_MANAGED, NOT_MANAGED_MESSAGE
    if failed:
        return StatusVerdict.FAILED, _failed_message(
            tuple(dict.fromkeys(r.migration_name for r in failed))
        )
    return StatusVerdict.UP_TO_DATE, "Database schema is up to date!"


def _plural(names: tuple[str, ...]) -> str:
    return "s" if len(names) > 1 else ""


def _last_common(directory: MigrationsDirectory, first_unapplied: str) -> str | None:
    index = directory.names.index(first_unapplied)
    return directory.names[index - 1] if index > 0 else None


def _not_yet_applied_message(names: tuple[str, ...]) -> str:
    return (
        f"Following migration{_plural(names)} have not yet been applied:\n"
        + "\n".join(names)
        + "\n\nTo apply migrations in development run prisma migrate dev.\n"
        "To apply migrations in production run prisma migrate deploy."
    )


def _diverge_message(
    last_common: str | None, unapplied: tuple[str, ...], missing: tuple[str, ...]
) -> str:
    return (
        "Your local migration history and the migrations table from your database are "
        f"different:\n\nThe last common migration is: {last_common}\n\n"
        f"The migration{_plural(unapplied)} have not yet been applied:\n"
        + "\n".join(unapplied)
        + f"\n\nThe migration{_plural(missing)} from the database are not found locally in "
        "prisma/migrations:\n" + "\n".join(missing)
    )


NOT_MANAGED_MESSAGE = (
    "The current database is not managed by Prisma Migrate.\n        \n"
    "Read more about how to baseline an existing production database:\n"
    "https://pris.ly/d/migrate-baseline"
)


def _failed_message(names: tuple[str, ...]) -> str:
    # Two console.error calls in the CLI, hence the blank line after "prisma migrate dev.".
    return (
        f"Following migration{_plural(names)} have failed:\n"
        + "\n".join(names)
        + "\n\nDuring development if the failed migration(s) have not been deployed to a "
        "production database you can then fix the migration(s) and run prisma migrate dev.\n\n"
        "The failed migration(s) can be marked as rolled back or applied:\n      \n"
        "- If you rolled back the migration(s) manually:\n"
        f'prisma migrate resolve --rolled-back "{names[0]}"\n\n'
        "- If you fixed the database manually (hotfix):\n"
        f'prisma migrate resolve --applied "{names[0]}"\n\n'
        "Read more about how to resolve migration issues in a production database:\n"
        "https://pris.ly/d/migrate-resolve"
    )
