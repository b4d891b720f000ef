"""The sandbox's demo project: a small schema as Prisma migrations, one of which failed
mid-way (the runbook's scenario for option 1), applied to each environment's database.

"Failed mid-way" is reproduced for real: a COMMIT inside migration.sql commits what ran
before it (PostgreSQL's implicit transaction block of a simple-query string ends at the
COMMIT), so the statements before it stick and the one after fails, exactly the "partially
applied" state the runbook's `prisma migrate resolve` section starts from.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from pathlib import Path

import psycopg

from bot.errors import UserError
from bot.prisma.deploy import deploy

INIT = "20251201000000_init"
PROJECTS = "20251203100000_add_projects"
FAILED = "20251208120000_problematic_migration"

MIGRATIONS = {
    INIT: (
        'CREATE TABLE "User" (\n'
        '  "id" SERIAL PRIMARY KEY,\n'
        '  "email" TEXT NOT NULL UNIQUE,\n'
        '  "createdAt" TIMESTAMPTZ NOT NULL DEFAULT now()\n'
        ");\n"
    ),
    PROJECTS: (
        'CREATE TABLE "Project" (\n'
        '  "id" SERIAL PRIMARY KEY,\n'
        '  "title" TEXT NOT NULL,\n'
        '  "ownerId" INTEGER NOT NULL REFERENCES "User"("id")\n'
        ");\n"
    ),
    # The COMMIT makes the first two statements stick; "Invoice" does not exist, so the
    # last one fails: Prisma records the migration as failed (P3018), partly applied.
    FAILED: (
        'CREATE TABLE "Proposal" ("id" SERIAL PRIMARY KEY, "projectId" INTEGER NOT NULL,'
        ' "amount" INTEGER);\n'
        'ALTER TABLE "User" ADD COLUMN "bio" TEXT;\n'
        "COMMIT;\n"
        'ALTER TABLE "Invoice" ADD COLUMN "dueAt" TIMESTAMPTZ;\n'
    ),
}

SEED = (
    "INSERT INTO \"User\" (\"email\") SELECT 'user' || n || '@example.com'"
    " FROM generate_series(1, 25) AS n",
    'INSERT INTO "Project" ("title", "ownerId") SELECT \'Project \' || n, n'
    " FROM generate_series(1, 10) AS n",
)

# Production keeps working after the failed release: people sign up. A point-in-time
# restore to before the release loses them, which the PITR's verification shows.
LATER_SIGNUPS = (
    "INSERT INTO \"User\" (\"email\") SELECT 'late' || n || '@example.com'"
    " FROM generate_series(1, 3) AS n",
)


def write_migrations(root: Path) -> Path:
    """prisma/migrations under root, as `prisma migrate dev` lays it out."""
    directory = root / "prisma" / "migrations"
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "migration_lock.toml").write_text('provider = "postgresql"\n')
    for name, sql in MIGRATIONS.items():
        (directory / name).mkdir(exist_ok=True)
        (directory / name / "migration.sql").write_text(sql)
    return directory


def prepare_database(url: str, directory: Path, before_failed: Callable | None = None) -> None:
    """Deploy the migrations one by one like `prisma migrate deploy` would over three
    releases, seeding data in between; the last one fails mid-way on purpose.
    ``before_failed`` runs just before that last release (the sandbox copies the data)."""
    names = sorted(MIGRATIONS)
    with _only(directory, names[:2]) as first:
        deploy(url, first)
    with psycopg.connect(url, autocommit=True) as conn:
        for statement in SEED:
            conn.execute(statement)
    if before_failed is not None:
        before_failed()
    # P3018 ("a migration failed to apply") is the point: that is the runbook's incident.
    with contextlib.suppress(UserError):
        deploy(url, directory)


@contextlib.contextmanager
def _only(directory: Path, names: list[str]):
    """A copy of the migrations directory holding only ``names`` (an earlier release)."""
    import shutil
    import tempfile

    with tempfile.TemporaryDirectory(prefix="rollback-bot-release-") as tmp:
        release = Path(tmp) / "migrations"
        release.mkdir()
        shutil.copy(directory / "migration_lock.toml", release)
        for name in names:
            shutil.copytree(directory / name, release / name)
        yield release
