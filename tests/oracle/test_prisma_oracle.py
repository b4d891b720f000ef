"""The bot's reading and writing of Prisma's history, checked against the
real Prisma CLI (6.19.3, WebAssembly schema engine; see tests/oracle/prisma_cli.py)."""

from __future__ import annotations

import time

import psycopg
import pytest

from bot.errors import UserError
from bot.prisma.advisory_lock import PRISMA_LOCK_KEY, prisma_advisory_lock
from bot.prisma.deploy import deploy
from bot.prisma.recommendation import NextStep, recommendation
from bot.prisma.resolve import mark_applied, mark_rolled_back
from bot.prisma.status import StatusVerdict, migration_status
from bot.prisma.undo import run_undo
from bot.sql.diagnosis import Verdict, diagnose
from tests.oracle import prisma_cli
from tests.oracle.parity import dump_schema, history_rows
from tests.rig.postgres import database_name
from tests.unit.sql.catalog_snapshot import catalog_snapshot_of

pytestmark = [pytest.mark.oracle, pytest.mark.timeout(900)]

INIT = "20251201090000_init"
BAD = "20251208120000_problematic_migration"

INIT_SQL = """-- CreateTable
CREATE TABLE "users" (
    "id" SERIAL NOT NULL,
    "email" TEXT NOT NULL,
    "status" TEXT NOT NULL DEFAULT 'new',

    CONSTRAINT "users_pkey" PRIMARY KEY ("id")
);

-- CreateIndex
CREATE UNIQUE INDEX "users_email_key" ON "users"("email");
"""

# Fails at its 3rd statement: "Team" does not exist. Through the driver adapter's own
# transport Prisma runs the statements one by one, so the first two stay applied: the
# runbook's "failed mid-way". Sent whole, as the native engine sends it, nothing stays.
BAD_SQL = """-- AlterTable
ALTER TABLE "users" ADD COLUMN "bio" TEXT,
ADD COLUMN "teamId" INTEGER,
ALTER COLUMN "status" SET DEFAULT 'active';

-- CreateIndex
CREATE UNIQUE INDEX "users_bio_key" ON "users"("bio");

-- AddForeignKey
ALTER TABLE "users" ADD CONSTRAINT "users_teamId_fkey" FOREIGN KEY ("teamId")
    REFERENCES "Team"("id") ON DELETE SET NULL ON UPDATE CASCADE;

-- CreateTable
CREATE TABLE "Audit" (
    "id" SERIAL NOT NULL,
    CONSTRAINT "Audit_pkey" PRIMARY KEY ("id")
);
"""

TEAM_SQL = """-- CreateTable
CREATE TABLE "Team" (
    "id" SERIAL NOT NULL,
    CONSTRAINT "Team_pkey" PRIMARY KEY ("id")
);

"""
FIXED_SQL = BAD_SQL.replace("-- AddForeignKey", TEAM_SQL + "-- AddForeignKey")

APPLIED_PART = [
    'ADD COLUMN users.bio, ADD COLUMN users."teamId", '
    "ALTER COLUMN users.status SET DEFAULT 'active'",
    "CREATE UNIQUE INDEX users_bio_key ON users",
]
NOT_APPLIED_PART = [
    'ADD CONSTRAINT "users_teamId_fkey" FOREIGN KEY ON users',
    'CREATE TABLE "Audit"',
]
UP_TO_DATE = "Database schema is up to date!"


def descriptions(statements) -> list[str]:
    return [s.description for s in statements]


def test_bot_recovers_what_prisma_left_failed_midway(prisma_split, conn):
    """The splitting transport: statements applied one by one until the failing one."""
    prisma = prisma_split
    prisma.write_migration(INIT, INIT_SQL)
    assert prisma.deploy().returncode == 0
    schema_before_bad = catalog_snapshot_of(conn)

    # 1. Real Prisma applies the bad migration and fails mid-way.
    prisma.write_migration(BAD, BAD_SQL)
    failed = prisma.deploy()
    assert failed.returncode != 0
    assert 'relation "Team" does not exist' in failed.output or "Team" in failed.output

    # 2. The bot's status agrees with Prisma's, word for word.
    status = migration_status(conn, prisma.migrations_dir)
    real_status = prisma.status()
    assert status.verdict == StatusVerdict.FAILED
    assert [r.migration_name for r in status.failed] == [BAD]
    assert real_status.returncode == status.exit_code == 1
    assert status.message in real_status.output

    # 3. The diagnosis names exactly the statements that took effect.
    diagnosis = diagnose(conn, status.local(BAD).script, earlier_sql=[INIT_SQL])
    assert descriptions(diagnosis.applied) == APPLIED_PART
    assert descriptions(diagnosis.not_applied) == NOT_APPLIED_PART
    assert diagnosis.unknown == ()
    assert diagnosis.summary.startswith("2 of 4 statements took effect: ")

    # 4. Undo exactly those, from the bot's reverse SQL, in one transaction.
    advice = recommendation(status, diagnosis)
    assert advice.step == NextStep.UNDO_THEN_RESOLVE
    run_undo(conn, advice.undo)
    assert catalog_snapshot_of(conn) == schema_before_bad
    assert diagnose(conn, BAD_SQL, earlier_sql=[INIT_SQL]).applied == ()

    # 5. resolve --rolled-back, then real Prisma's status accepts the history.
    mark_rolled_back(conn, BAD)
    real_status = prisma.status()
    assert real_status.returncode == 0, real_status.output
    assert UP_TO_DATE in real_status.output
    status = migration_status(conn, prisma.migrations_dir)
    assert (status.verdict, status.message, status.pending) == (
        StatusVerdict.UP_TO_DATE,
        UP_TO_DATE,
        (BAD,),
    )

    # 6. Fix the file; real Prisma deploys it again, as a second row.
    prisma.write_migration(BAD, FIXED_SQL)
    redeployed = prisma.deploy()
    assert redeployed.returncode == 0, redeployed.output
    assert "All migrations have been successfully applied." in redeployed.output
    status = migration_status(conn, prisma.migrations_dir)
    assert [r.state for r in status.rows_for(BAD)] == ["rolled_back", "applied"]
    assert status.applied == (INIT, BAD)
    fixed = diagnose(conn, FIXED_SQL, earlier_sql=[INIT_SQL])
    assert all(s.verdict == Verdict.APPLIED for s in fixed.statements)
    assert prisma.status().returncode == 0


def test_sent_whole_a_failed_migration_leaves_nothing_and_the_bot_says_so(prisma, conn):
    """The native engine's transport: one simple query, one implicit transaction."""
    prisma.write_migration(INIT, INIT_SQL)
    assert prisma.deploy().returncode == 0
    schema_before_bad = catalog_snapshot_of(conn)
    prisma.write_migration(BAD, BAD_SQL)

    failed = prisma.deploy()

    assert failed.returncode != 0 and "Team" in failed.output
    assert catalog_snapshot_of(conn) == schema_before_bad
    status = migration_status(conn, prisma.migrations_dir)
    diagnosis = diagnose(conn, BAD_SQL, earlier_sql=[INIT_SQL])
    assert [s.verdict for s in diagnosis.statements] == [Verdict.NOT_APPLIED] * 4
    advice = recommendation(status, diagnosis)
    assert advice.step == NextStep.RESOLVE_ROLLED_BACK
    mark_rolled_back(conn, BAD)
    prisma.write_migration(BAD, FIXED_SQL)
    assert prisma.deploy().returncode == 0


# A DO body and a semicolon inside a comment: the adapter's splitting transport cannot send
# this (it cuts the script at every ";"), Prisma's native engine and the bot send it whole.
PROCEDURAL = "20251209090000_procedural"
PROCEDURAL_SQL = """-- Backfill; then add the column
ALTER TABLE "users" ADD COLUMN "score" INTEGER;

DO $$
BEGIN
  UPDATE "users" SET "score" = 0;
  IF NOT EXISTS (SELECT 1 FROM pg_indexes WHERE indexname = 'users_score_idx') THEN
    CREATE INDEX "users_score_idx" ON "users"("score");
  END IF;
END $$;
"""


def test_whole_script_transport_deploys_what_splitting_cannot(
    tmp_path, prisma_node_modules, pg_server, conn
):
    urls = [pg_server.create_database() for _ in range(3)]
    try:
        projects = {
            transport: prisma_cli.PrismaProject(
                tmp_path / transport, prisma_node_modules, url, transport=transport
            )
            for transport, url in zip(
                (prisma_cli.WHOLE_SCRIPT, prisma_cli.SPLIT_SCRIPT), urls, strict=False
            )
        }
        for project in projects.values():
            project.write_migration(INIT, INIT_SQL)
            project.write_migration(PROCEDURAL, PROCEDURAL_SQL)

        whole = projects[prisma_cli.WHOLE_SCRIPT].deploy()
        split = projects[prisma_cli.SPLIT_SCRIPT].deploy()
        deploy(urls[2], projects[prisma_cli.WHOLE_SCRIPT].migrations_dir)

        assert whole.returncode == 0, whole.output
        assert split.returncode != 0  # cut inside the comment or the DO body
        assert dump_schema(pg_server, urls[0]) == dump_schema(pg_server, urls[2])
        assert history_rows(urls[0]) == history_rows(urls[2])
    finally:
        for url in urls:
            pg_server.drop_database(database_name(url))


def test_bot_deploy_on_a_fresh_database_is_up_to_date_for_prisma(prisma, pg_url):
    prisma.write_migration(INIT, INIT_SQL)
    prisma.write_migration(BAD, FIXED_SQL)
    events = []

    result = deploy(pg_url, prisma.migrations_dir, on_progress=events.append)

    assert result.applied == (INIT, BAD)
    assert [e.kind for e in events] == ["started", "succeeded"] * 2
    real_status = prisma.status()
    assert real_status.returncode == 0, real_status.output
    assert UP_TO_DATE in real_status.output
    assert "No pending migrations to apply." in prisma.deploy().output


def test_bot_failed_deploy_and_rolled_back_resolve_are_read_by_prisma(prisma, conn):
    prisma.write_migration(INIT, INIT_SQL)
    prisma.write_migration(BAD, BAD_SQL)
    with pytest.raises(UserError) as caught:
        deploy(conn, prisma.migrations_dir)
    assert caught.value.code == "P3018"

    real_status = prisma.status()
    assert real_status.returncode == 1
    assert f"Following migration have failed:\n{BAD}" in real_status.output
    assert migration_status(conn, prisma.migrations_dir).message in real_status.output
    blocked = prisma.deploy()
    assert blocked.returncode != 0
    assert "P3009" in blocked.output and BAD in blocked.output

    mark_rolled_back(conn, BAD)
    prisma.write_migration(BAD, FIXED_SQL)
    assert deploy(conn, prisma.migrations_dir).applied == (BAD,)

    real_status = prisma.status()
    assert real_status.returncode == 0, real_status.output
    assert UP_TO_DATE in real_status.output


def test_bot_resolve_applied_is_read_by_prisma(prisma, conn):
    prisma.write_migration(INIT, INIT_SQL)
    prisma.write_migration(BAD, BAD_SQL)
    assert prisma.deploy().returncode != 0  # real Prisma leaves BAD failed

    inserted = mark_applied(conn, BAD, prisma.migrations_dir)  # the hotfix path

    assert inserted.applied_steps_count == 0 and inserted.logs == ""
    real_status = prisma.status()
    assert real_status.returncode == 0, real_status.output
    assert "No pending migrations to apply." in prisma.deploy().output


def test_prisma_waits_for_the_lock_the_bot_holds(prisma, conn, pg_url):
    prisma.write_migration(INIT, INIT_SQL)

    with psycopg.connect(pg_url, autocommit=True) as observer:
        with prisma_advisory_lock(conn):
            process = prisma.start("migrate", "deploy")
            try:
                waiting = _wait_for_lock_waiter(observer)
                assert waiting, "prisma migrate deploy never waited for pg_advisory_lock"
                assert _table_exists(observer, "users") is False
            except BaseException:
                process.kill()
                raise
        stdout, stderr = process.communicate(timeout=120)

        assert process.returncode == 0, stdout + stderr
        assert _table_exists(observer, "users") is True


def _wait_for_lock_waiter(observer: psycopg.Connection, seconds: float = 60) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        row = observer.execute(
            "SELECT 1 FROM pg_locks WHERE locktype = 'advisory' AND objid = %s AND NOT granted",
            (PRISMA_LOCK_KEY,),
        ).fetchone()
        if row:
            return True
        time.sleep(0.1)
    return False


def _table_exists(conn: psycopg.Connection, name: str) -> bool:
    return conn.execute("SELECT to_regclass(%s) IS NOT NULL", (name,)).fetchone()[0]
