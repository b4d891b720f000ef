"""deploy: pending migrations applied with Prisma's bookkeeping, P3005, P3009, P3018."""

import shutil

import pytest

from bot.errors import UserError
from bot.prisma.deploy import ALL_APPLIED, NOTHING_TO_APPLY, DeployEventKind, deploy
from bot.prisma.history import has_migrations_table
from bot.prisma.resolve import mark_rolled_back
from bot.prisma.status import StatusVerdict, migration_status
from bot.sql.diagnosis import Verdict, diagnose

from .conftest import LOCK_KEY, sha256

FIRST, SECOND, THIRD = "20250101000000_init", "20250102000000_add_bio", "20250103000000_index"
INIT_SQL = (
    '-- CreateTable\nCREATE TABLE "users" ("id" SERIAL NOT NULL, "note" TEXT DEFAULT \'100%\');\n'
)
BIO_SQL = 'ALTER TABLE "users" ADD COLUMN "bio" TEXT;\n'
INDEX_SQL = 'CREATE INDEX "users_bio_idx" ON "users"("bio");\n'


def relation_exists(conn, name: str) -> bool:
    return conn.execute("SELECT to_regclass(%s) IS NOT NULL", (name,)).fetchone()[0]


def test_deploy_on_a_fresh_database(conn, migrations, history):
    migrations.add(FIRST, INIT_SQL)
    migrations.add(SECOND, BIO_SQL)
    events = []

    result = deploy(conn, migrations.path, on_progress=events.append)

    assert result.applied == (FIRST, SECOND)
    assert result.message == ALL_APPLIED
    assert [(e.kind, e.migration, e.index, e.total) for e in events] == [
        (DeployEventKind.STARTED, FIRST, 1, 2),
        (DeployEventKind.SUCCEEDED, FIRST, 1, 2),
        (DeployEventKind.STARTED, SECOND, 1 + 1, 2),
        (DeployEventKind.SUCCEEDED, SECOND, 2, 2),
    ]
    rows = history.rows()
    assert [r["migration_name"] for r in rows] == [FIRST, SECOND]
    assert [r["checksum"] for r in rows] == [sha256(INIT_SQL), sha256(BIO_SQL)]
    assert all(r["finished_at"] and r["applied_steps_count"] == 1 for r in rows)
    assert all(r["logs"] is None and r["rolled_back_at"] is None for r in rows)
    assert all(r["finished_at"] >= r["started_at"] for r in rows)
    assert relation_exists(conn, "users")
    assert migration_status(conn, migrations.path).verdict == StatusVerdict.UP_TO_DATE


def test_deploy_applies_only_what_is_pending(conn, migrations):
    migrations.add(FIRST, INIT_SQL)
    deploy(conn, migrations.path)
    migrations.add(SECOND, BIO_SQL)

    assert deploy(conn, migrations.path).applied == (SECOND,)
    assert deploy(conn, migrations.path).message == NOTHING_TO_APPLY


def test_deploy_takes_a_url_too(pg_url, conn, migrations):
    migrations.add(FIRST, INIT_SQL)

    deploy(pg_url, migrations.path)

    assert relation_exists(conn, "users")


def test_prisma_style_url_with_schema_parameter(pg_url, conn, migrations):
    conn.execute('CREATE SCHEMA "app"')
    migrations.add(FIRST, INIT_SQL)

    deploy(f"{pg_url}?schema=app", migrations.path)

    assert relation_exists(conn, "app._prisma_migrations")
    assert relation_exists(conn, "app.users")
    assert not relation_exists(conn, "public.users")


def test_p3005_when_the_schema_has_tables_but_no_history(conn, migrations):
    conn.execute("CREATE TABLE legacy (id int)")
    migrations.add(FIRST, INIT_SQL)

    with pytest.raises(UserError) as caught:
        deploy(conn, migrations.path)

    assert caught.value.code == "P3005"
    assert caught.value.message.startswith("The database schema is not empty.")
    assert not has_migrations_table(conn)


def test_p3009_lists_failed_migrations_with_their_logs(conn, migrations, history):
    migrations.add(FIRST, INIT_SQL)
    migrations.add(SECOND, BIO_SQL)
    history.add(FIRST, INIT_SQL, state="failed", logs="  ERROR: relation exists\n")
    before = history.rows()

    with pytest.raises(UserError) as caught:
        deploy(conn, migrations.path)

    assert caught.value.code == "P3009"
    assert caught.value.message == (
        "migrate found failed migrations in the target database, new migrations will not be "
        "applied. Read more about how to resolve migration issues in a production database: "
        "https://pris.ly/d/migrate-resolve\n"
        f"The `{FIRST}` migration started at 2025-12-08 12:01:00 UTC failed with the "
        "following logs:\nERROR: relation exists\n"
    )
    assert history.rows() == before


def test_p3018_stops_at_the_failing_migration_and_records_the_error(conn, migrations, history):
    migrations.add(FIRST, INIT_SQL)
    migrations.add(
        SECOND,
        'ALTER TABLE "users" ADD COLUMN "bio" TEXT;\nALTER TABLE "nope" ADD COLUMN "x" INT;\n',
    )
    migrations.add(THIRD, INDEX_SQL)
    events = []

    with pytest.raises(UserError) as caught:
        deploy(conn, migrations.path, on_progress=events.append)

    assert caught.value.code == "P3018"
    assert f"Migration name: {SECOND}" in caught.value.message
    assert "Database error code: 42P01" in caught.value.message
    assert 'ERROR: relation "nope" does not exist' in caught.value.message
    assert [(e.kind, e.migration) for e in events][-2:] == [
        (DeployEventKind.STARTED, SECOND),
        (DeployEventKind.FAILED, SECOND),
    ]
    assert 'relation "nope" does not exist' in events[-1].error
    first, second = history.rows()
    assert second["finished_at"] is None and second["rolled_back_at"] is None
    assert second["applied_steps_count"] == 0
    assert 'relation "nope" does not exist' in second["logs"]
    # ONE simple query = one implicit transaction: the ADD COLUMN was rolled back with it.
    assert (
        conn.execute(
            "SELECT count(*) FROM information_schema.columns WHERE column_name = 'bio'"
        ).fetchone()[0]
        == 0
    )
    status = migration_status(conn, migrations.path)
    # Prisma's status checks "not yet applied" (THIRD) before failed rows.
    assert status.verdict == StatusVerdict.NOT_YET_APPLIED
    assert [r.migration_name for r in status.failed] == [SECOND]


def test_p3018_partial_when_the_script_has_its_own_transaction(conn, migrations, history):
    script = (
        'BEGIN;\nCREATE TABLE "Post" ("id" INTEGER);\nCOMMIT;\n'
        'CREATE TABLE "Comment" ("id" INTEGER);\nSELECT 1/0;\n'
    )
    migrations.add(FIRST, script)

    with pytest.raises(UserError) as caught:
        deploy(conn, migrations.path)

    assert "Database error code: 22012" in caught.value.message
    (row,) = history.rows()
    assert row["finished_at"] is None and "division by zero" in row["logs"]
    diagnosis = diagnose(conn, script, earlier_sql=[])
    # The SELECT leaves no trace, but the CREATE before it did not take effect.
    assert [s.verdict for s in diagnosis.statements] == [
        Verdict.APPLIED,
        Verdict.NOT_APPLIED,
        Verdict.NOT_APPLIED,
    ]


def test_failed_then_rolled_back_then_fixed_redeploys_with_a_second_row(conn, migrations, history):
    migrations.add(FIRST, 'CREATE TABLE "users" ("id" INT);\nALTER TABLE "nope" ADD "x" INT;\n')
    with pytest.raises(UserError):
        deploy(conn, migrations.path)
    mark_rolled_back(conn, FIRST)
    migrations.add(FIRST, 'CREATE TABLE "users" ("id" INT);\n')

    assert deploy(conn, migrations.path).applied == (FIRST,)

    old, new = history.rows()
    assert old["rolled_back_at"] is not None and old["finished_at"] is None
    assert new["finished_at"] is not None and new["applied_steps_count"] == 1
    assert new["checksum"] == sha256('CREATE TABLE "users" ("id" INT);\n')


def test_empty_migration(conn, migrations, history):
    migrations.add(FIRST, "-- This is an empty migration.")

    deploy(conn, migrations.path)

    assert history.rows()[0]["finished_at"] is not None


def test_unreadable_migration_stops_before_writing_its_row(conn, migrations, history):
    migrations.add(FIRST, INIT_SQL)
    (migrations.path / SECOND).mkdir()

    with pytest.raises(UserError) as caught:
        deploy(conn, migrations.path)

    assert "Failed to read migration script" in caught.value.message
    assert [r["migration_name"] for r in history.rows()] == [FIRST]


def test_deploy_waits_for_prismas_lock_and_times_out_naming_the_holder(
    conn, other_conn, migrations
):
    migrations.add(FIRST, INIT_SQL)
    other_conn.execute("SELECT pg_advisory_lock(%s)", (LOCK_KEY,))

    with pytest.raises(UserError) as caught:
        deploy(conn, migrations.path, lock_timeout=0.3)

    assert caught.value.code == "P1002"
    assert "prisma-migrate-elsewhere" in caught.value.hint
    assert not relation_exists(conn, "users")


def test_deploy_only_one_migration_refuses_when_another_is_pending_too(conn, migrations, history):
    migrations.add(FIRST, INIT_SQL)
    deploy(conn, migrations.path)
    migrations.add(SECOND, BIO_SQL)
    migrations.add(THIRD, INDEX_SQL)

    with pytest.raises(UserError, match=f"Pending migrations other than `{THIRD}`: `{SECOND}`"):
        deploy(conn, migrations.path, only=THIRD)
    assert [r["migration_name"] for r in history.rows()] == [FIRST]
    with pytest.raises(UserError, match="is not in the migrations directory"):
        deploy(conn, migrations.path, only="20250104000000_missing")

    shutil.rmtree(migrations.path / THIRD)
    assert deploy(conn, migrations.path, only=SECOND).applied == (SECOND,)
    with pytest.raises(UserError, match=f"`{SECOND}` is already applied"):
        deploy(conn, migrations.path, only=SECOND)


def test_deploy_with_another_script_runner_keeps_prismas_bookkeeping(conn, migrations, history):
    """A runner of its own (the reverse migration's statement-by-statement one) changes how
    the script runs, not what is recorded: a failure is still a failed row with P3018."""
    migrations.add(FIRST, INIT_SQL)
    migrations.add(SECOND, 'ALTER TABLE "users" ADD COLUMN "bio" TEXT;\nSELECT 1/0;\n')
    ran = []

    def statement_by_statement(conn, migration):
        with conn.transaction():
            for statement in migration.script.split(";\n"):
                if statement.strip():
                    ran.append(migration.name)
                    conn.execute(statement)

    with pytest.raises(UserError) as error:
        deploy(conn, migrations.path, run=statement_by_statement)

    assert error.value.code == "P3018"
    assert ran == [FIRST, SECOND, SECOND]
    first, second = history.rows()
    assert first["finished_at"] and first["applied_steps_count"] == 1
    assert second["finished_at"] is None and "division by zero" in second["logs"]
    assert second["applied_steps_count"] == 0
    columns = conn.execute(
        "SELECT column_name FROM information_schema.columns WHERE table_name = 'users'"
    ).fetchall()
    assert ("bio",) not in columns  # the transaction rolled the first statement back
