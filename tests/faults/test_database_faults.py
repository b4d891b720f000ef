"""Database faults give clear messages and leave nothing half-applied: the
database down at the start, a read-only target, a lock held elsewhere, and the database
connection killed in the middle of an operation."""

from __future__ import annotations

import threading

import psycopg
import pytest

from tests.faults.test_bad_input import database_state
from tests.rig.bot_server import free_port
from tests.scenario.test_drill import complete_before_checklist, confirm_deploy
from tests.scenario.test_resolve import BAD, prisma  # noqa: F401 - the fixture


@pytest.fixture
def bot(bot_factory, prisma):  # noqa: F811 - the imported fixture
    return bot_factory(
        staging_extra=f'migrations_dir = "{prisma.path}"',
        development_extra=f'migrations_dir = "{prisma.path}"',
    )


def reply(bot) -> str:
    return str(bot.wait_until(lambda: bot.slack.responses(), what="a reply")[-1])


def test_database_down_at_start_is_a_clear_message_without_the_password(
    bot, monkeypatch, pg_server
):
    dead = f"postgresql://postgres:{pg_server.password}@127.0.0.1:{free_port()}/nowhere"
    monkeypatch.setenv("STAGING_DATABASE_URL", dead)
    bot.signer.slash("status staging")
    text = reply(bot)
    assert "Cannot connect to the staging database: connection to server at" in text
    assert "failed: Connection refused" in text
    assert "Check that the database is up" in text
    assert pg_server.password not in text


def test_resolve_on_a_read_only_database_changes_nothing(bot, prisma):  # noqa: F811
    with psycopg.connect(prisma.url, autocommit=True) as conn:
        dbname = conn.info.dbname
        conn.execute(f'ALTER DATABASE "{dbname}" SET default_transaction_read_only = on')
    before = database_state(prisma.url)
    bot.signer.slash(f"resolve {BAD} --env development")
    update = bot.slack.wait_for("views.update")[-1]
    bot.signer.submit_view(update.args["view_id"], user="U_ALICE", values={})
    op = bot.wait_until(lambda: bot.store.active_operation("development"), what="op")
    complete_before_checklist(bot, op.id)
    bot.wait_status(op.id, "failed", timeout=30)
    error = bot.store.step(op.id, "mark").error
    assert "read-only" in error
    assert database_state(prisma.url) == before  # the undo was rolled back with it


def test_prismas_lock_held_elsewhere_times_out_naming_the_holder(bot, prisma):  # noqa: F811
    before = database_state(prisma.url)
    with psycopg.connect(
        prisma.url, autocommit=True, application_name="someone-elses-deploy"
    ) as other:
        other.execute("SELECT pg_advisory_lock(72707369)")
        bot.signer.slash(f"resolve {BAD} --env development")
        update = bot.slack.wait_for("views.update")[-1]
        bot.signer.submit_view(update.args["view_id"], user="U_ALICE", values={})
        op = bot.wait_until(lambda: bot.store.active_operation("development"), what="op")
        complete_before_checklist(bot, op.id)
        bot.wait_status(op.id, "failed", timeout=40)
    error = bot.store.step(op.id, "mark").error
    assert "someone-elses-deploy" in error
    assert database_state(prisma.url) == before


def test_connection_killed_during_a_deploy_leaves_prismas_history_consistent(bot, prisma):  # noqa: F811
    # A migration that takes a while, so the connection can be killed while it runs.
    with psycopg.connect(prisma.url, autocommit=True) as conn:
        conn.execute(
            "UPDATE _prisma_migrations SET rolled_back_at = now() WHERE finished_at IS NULL"
        )
        conn.execute('DROP TABLE IF EXISTS "Post"; ALTER TABLE "User" DROP COLUMN "bio"')
    prisma.add(
        BAD, 'CREATE TABLE "Slow" (id int); SELECT pg_sleep(5); CREATE TABLE "After" (id int);\n'
    )
    bot.signer.slash("deploy --env development")
    op = confirm_deploy(bot, "development")
    complete_before_checklist(bot, op.id)

    def kill_when_sleeping():
        with psycopg.connect(prisma.url, autocommit=True) as conn:
            bot.wait_until(
                lambda: conn.execute(
                    "SELECT pid FROM pg_stat_activity WHERE query LIKE '%pg_sleep(5)%'"
                    " AND pid <> pg_backend_pid()"
                ).fetchone(),
                what="the migration running",
            )
            conn.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE"
                " query LIKE '%pg_sleep(5)%' AND pid <> pg_backend_pid()"
            )

    killer = threading.Thread(target=kill_when_sleeping)
    killer.start()
    killer.join(30)
    bot.wait_status(op.id, "failed", timeout=30)
    assert bot.store.step(op.id, "apply_pending").error
    tables = prisma.tables()
    # One implicit transaction: none of the migration's statements stuck.
    assert "Slow" not in tables and "After" not in tables
