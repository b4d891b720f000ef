"""Through the rig: /rollback status, resolve (both flags) and deploy against a real
PostgreSQL with a Prisma migrations directory, driven the way Slack drives the bot."""

from __future__ import annotations

import contextlib
import shutil
from datetime import UTC, datetime

import psycopg
import pytest

from bot.errors import UserError
from bot.prisma.deploy import deploy
from bot.prisma.resolve import mark_rolled_back
from bot.prisma.status import migration_status
from bot.slack.ids import Action
from tests.scenario.test_drill import (
    complete_before_checklist,
    confirm_deploy,
    deploy_confirmation,
)

GOOD = "20251201000000_init"
BAD = "20251208120000_problematic_migration"
INIT_SQL = 'CREATE TABLE "User" ("id" SERIAL PRIMARY KEY, "email" TEXT NOT NULL);\n'
# COMMIT inside one simple-query call commits what ran so far (PostgreSQL's implicit
# transaction rules): the runbook's "failed mid-way, partially applied" case.
BAD_SQL = (
    'CREATE TABLE "Post" ("id" SERIAL PRIMARY KEY, "title" TEXT);\n'
    'ALTER TABLE "User" ADD COLUMN "bio" TEXT;\n'
    "COMMIT;\n"
    'ALTER TABLE "Nope" ADD COLUMN "x" INTEGER;\n'
)
FIXED_SQL = 'CREATE TABLE "Post" ("id" SERIAL PRIMARY KEY, "title" TEXT);\n'
LATE = "20251210000000_unique_email"
UNIQUE_EMAIL_SQL = (
    'CREATE TABLE "Tag" ("id" SERIAL PRIMARY KEY);\n'
    "COMMIT;\n"
    'CREATE UNIQUE INDEX "User_email_key" ON "User"("email");\n'
)


@pytest.fixture
def prisma(tmp_path, pg_url, monkeypatch):
    directory = tmp_path / "prisma" / "migrations"
    directory.mkdir(parents=True)
    (directory / "migration_lock.toml").write_text('provider = "postgresql"\n')

    class Project:
        path = directory
        url = pg_url

        def add(self, name: str, sql: str) -> None:
            (directory / name).mkdir(exist_ok=True)
            (directory / name / "migration.sql").write_text(sql)

        def deploy(self) -> None:
            # Setting up a failed migration on purpose: P3018 is expected.
            with contextlib.suppress(UserError):
                deploy(pg_url, directory)

        def status(self):
            with psycopg.connect(pg_url, autocommit=True) as conn:
                return migration_status(conn, directory)

        def mark_rolled_back(self, name: str) -> None:
            """`prisma migrate resolve --rolled-back`, the file left as it is."""
            with psycopg.connect(pg_url, autocommit=True) as conn:
                mark_rolled_back(conn, name)

        def columns(self, table: str) -> list[str]:
            with psycopg.connect(pg_url) as conn:
                return [
                    r[0]
                    for r in conn.execute(
                        "SELECT column_name FROM information_schema.columns WHERE table_name = %s"
                        " ORDER BY ordinal_position",
                        (table,),
                    )
                ]

        def tables(self) -> set[str]:
            with psycopg.connect(pg_url) as conn:
                return {
                    r[0]
                    for r in conn.execute(
                        "SELECT tablename FROM pg_tables WHERE schemaname = 'public'"
                    )
                }

    project = Project()
    project.add(GOOD, INIT_SQL)
    project.add(BAD, BAD_SQL)
    project.deploy()
    monkeypatch.setenv("STAGING_DATABASE_URL", pg_url)
    monkeypatch.setenv("DEVELOPMENT_DATABASE_URL", pg_url)
    return project


@pytest.fixture
def bot(bot_factory, prisma):
    extra = f'migrations_dir = "{prisma.path}"'
    return bot_factory(staging_extra=extra, development_extra=extra)


def reply_text(bot) -> str:
    return bot.wait_until(lambda: bot.slack.responses(), what="a reply")[-1]["text"]


def modal_text(bot, call) -> str:
    return str(call.args["view"]["blocks"])


@pytest.mark.both_transports
def test_status_shows_the_failed_migration_its_diagnosis_and_next_step(bot):
    bot.signer.slash("status staging")
    response = bot.wait_until(lambda: bot.slack.responses(), what="status")[-1]
    text = str(response["blocks"])
    assert f"`{BAD}`" in text
    assert "2 of 3 statements took effect" in text
    assert "CREATE TABLE" in text and "ADD COLUMN" in text
    assert "Undo what took effect, then mark it rolled back" in text
    assert 'relation \\\\"Nope\\\\" does not exist' in text or "Nope" in text


def test_status_shows_who_holds_prismas_lock(bot, prisma):
    with psycopg.connect(
        prisma.url, autocommit=True, application_name="prisma-migrate-deploy-elsewhere"
    ) as other:
        other.execute("SELECT pg_advisory_lock(72707369)")
        bot.signer.slash("status --env staging")
        text = str(bot.wait_until(lambda: bot.slack.responses())[-1]["blocks"])
    assert "migration lock is held by" in text
    assert "prisma-migrate-deploy-elsewhere" in text


@pytest.mark.both_transports
def test_resolve_undoes_what_took_effect_marks_rolled_back_and_redeploys(bot, prisma):
    assert {"Post"} <= prisma.tables() and "bio" in prisma.columns("User")
    bot.signer.slash(f"resolve {BAD} --env staging")
    update = bot.slack.wait_for("views.update")[-1]
    shown = modal_text(bot, update)
    assert "2 of 3 statements took effect" in shown
    assert 'DROP TABLE IF EXISTS public."Post"' in shown or "DROP TABLE" in shown
    view_id = update.args["view_id"]
    assert bot.signer.submit_view(view_id, user="U_ALICE", values={}).status == 200

    op = bot.wait_until(lambda: bot.store.active_operation("staging"), what="operation")
    complete_before_checklist(bot, op.id)
    channel = bot.wait_until(lambda: bot.store.operation(op.id).incident_channel)
    approval = bot.slack.wait_for(
        "chat.postMessage", where=lambda c: "Approval needed" in str(c.args.get("text"))
    )
    plan = str(approval[-1].args["blocks"])
    assert "prisma migrate resolve --rolled-back" in plan and "DROP" in plan
    bot.signer.block_action(Action.APPROVE, None, user="U_BOB", channel=channel)
    bot.wait_status(op.id, "succeeded", timeout=30)

    # What took effect was undone; the history says rolled back, exactly once.
    assert "Post" not in prisma.tables() and "bio" not in prisma.columns("User")
    status = prisma.status()
    assert not status.failed and BAD in status.rolled_back and BAD in status.pending
    bot.slack.wait_for(
        "chat.postMessage", where=lambda c: "Re-run migrations" in str(c.args.get("blocks"))
    )
    # Issue 15, reproduction 6: the step nobody performed yet is a to-do for the requester,
    # not a green tick; the status headline says what the counts under it say.
    todo = bot.store.step(op.id, "next_steps")
    assert todo.status == "todo" and todo.detail.startswith(f"to do for <@U_ALICE>: fix `{BAD}")
    assert "left for a person: Fix the migration file" in bot.store.operation(op.id).result
    headlines = [m["text"] for m in bot.slack.messages(channel) if "Migrations on" in m["text"]]
    headlines += [
        r["text"]
        for m in bot.slack.messages(channel)
        for r in bot.slack.thread(channel, m["ts"])
        if "Migrations on" in r["text"]
    ]
    assert any("Migrations on staging: 1 pending" in h for h in headlines), headlines
    assert not any("up to date" in h for h in headlines), headlines

    # Step 4: fix the file; step 5: the Re-run migrations button deploys it.
    prisma.add(BAD, FIXED_SQL)
    assert bot.services.incident.wait_idle(op.id)
    bot.signer.block_action(Action.RERUN_MIGRATIONS, None, user="U_ALICE", channel=channel)
    shown = modal_text(bot, deploy_confirmation(bot))
    assert f"`{BAD}`" in shown and "applies 1 migration, in this order" in shown
    assert "same file that failed" not in shown  # the file was fixed
    deploy_op = confirm_deploy(bot, "staging")
    assert deploy_op.runbook == "deploy"
    complete_before_checklist(bot, deploy_op.id)
    deploy_channel = bot.wait_until(lambda: bot.store.operation(deploy_op.id).incident_channel)
    bot.slack.wait_for(
        "chat.postMessage",
        where=lambda c: (
            c.args["channel"] == deploy_channel and "Approval needed" in str(c.args.get("text"))
        ),
    )
    bot.signer.block_action(Action.APPROVE, None, user="U_BOB", channel=deploy_channel)
    bot.wait_status(deploy_op.id, "succeeded", timeout=30)
    status = prisma.status()
    assert not status.pending and not status.failed and "Post" in prisma.tables()
    # Prisma's rows: the old failed one rolled back, a new applied one.
    rows = status.rows_for(BAD)
    assert [r.state for r in rows] == ["rolled_back", "applied"]


def test_resolve_of_a_successful_migration_is_refused_with_p3012_and_points_to_revert(bot):
    bot.signer.slash(f"resolve {GOOD} --env staging")
    update = bot.slack.wait_for("views.update")[-1]
    shown = modal_text(bot, update)
    assert f"Migration `{GOOD}` cannot be rolled back because it is not in a failed state" in shown
    assert "/rollback revert" in shown
    assert bot.store.active_operation("staging") is None


def test_a_mistyped_migration_name_lists_the_closest(bot):
    bot.signer.slash("resolve 20251208120000_problematic_migratoin --env staging")
    shown = modal_text(bot, bot.slack.wait_for("views.update")[-1])
    assert BAD in shown
    assert bot.store.active_operation("staging") is None


@pytest.mark.parametrize("name", ['\'; DROP TABLE "User"; --', "../../etc/passwd"])
def test_hostile_names_are_refused_and_change_nothing(bot, prisma, name):
    before = prisma.tables()
    bot.signer.slash(f'resolve "{name}" --env staging')
    shown = modal_text(bot, bot.slack.wait_for("views.update")[-1])
    assert ":warning:" in shown
    assert prisma.tables() == before and bot.store.active_operation("staging") is None


def test_resolve_applied_of_an_applied_migration_is_p3008(bot):
    bot.signer.slash(f"resolve {GOOD} --applied --env staging")
    shown = modal_text(bot, bot.slack.wait_for("views.update")[-1])
    assert "P3008" in shown or "already recorded as applied" in shown


def test_resolve_applied_in_an_unprotected_environment_needs_no_approval(bot, prisma):
    bot.signer.slash(f"resolve {BAD} --applied --env development")
    update = bot.slack.wait_for("views.update")[-1]
    assert "recorded as applied" in modal_text(bot, update)
    # Partly applied: the explicit confirmation is part of the form.
    values = {"resolve_confirm_partial": ["confirmed"]}
    bot.signer.submit_view(update.args["view_id"], user="U_ALICE", values=values)
    op = bot.wait_until(lambda: bot.store.active_operation("development"), what="operation")
    complete_before_checklist(bot, op.id)
    bot.wait_status(op.id, "succeeded", timeout=30)
    rows = prisma.status().rows_for(BAD)
    assert [r.state for r in rows] == ["rolled_back", "applied"]
    assert rows[-1].logs == "" and rows[-1].applied_steps_count == 0
    assert not bot.store.approvals(op.id)


def test_status_warns_about_edited_and_missing_and_lists_pending(bot, prisma):
    with psycopg.connect(prisma.url, autocommit=True) as conn:
        conn.execute(
            "UPDATE _prisma_migrations SET rolled_back_at = now() WHERE migration_name = %s", (BAD,)
        )
    prisma.add(GOOD, INIT_SQL + "-- edited after it was applied\n")
    prisma.add("20251210000000_later", 'ALTER TABLE "User" ADD COLUMN "age" INTEGER;\n')
    (prisma.path / BAD / "migration.sql").unlink()
    (prisma.path / BAD).rmdir()
    with psycopg.connect(prisma.url, autocommit=True) as conn:
        conn.execute(
            "INSERT INTO _prisma_migrations (id, checksum, migration_name, finished_at,"
            " applied_steps_count) VALUES ('x1', 'abc', '20251205000000_gone', now(), 1)"
        )
    bot.signer.slash("status staging")
    text = str(bot.wait_until(lambda: bot.slack.responses(), what="status")[-1]["blocks"])
    assert f"`{GOOD}` was edited after it was applied" in text
    assert "`20251205000000_gone` is in the database history but not in the directory" in text
    assert "`20251210000000_later`" in text  # pending
    assert "*Rolled back*\\n1" in text


def test_deploy_with_a_failed_migration_is_refused_with_p3009(bot):
    """Refused in the confirmation, before an operation (and its checklist) starts."""
    bot.signer.slash("deploy --env development")
    view = deploy_confirmation(bot).args["view"]
    shown = modal_text(bot, deploy_confirmation(bot))
    assert f"`{BAD}` is failed on *development*" in shown and "(P3009)" in shown
    assert f"`/rollback resolve {BAD} --env development`" in shown
    assert "submit" not in view and bot.store.operations(limit=1) == []


def test_deploy_of_the_file_that_just_failed_warns_before_it_starts(bot, prisma):
    """Issue 19, item 3: after a resolve, re-running the same file started a whole
    operation (checklist, approval) for a checksum that had just failed, without a word."""
    prisma.mark_rolled_back(BAD)
    bot.signer.slash("deploy --env development")
    shown = modal_text(bot, deploy_confirmation(bot))
    assert f"`{BAD}` is the same file that failed" in shown
    assert 'ERROR: relation "Nope" does not exist' in shown
    assert "will fail the same way" in shown
    assert bot.store.operations(limit=1) == []


def test_resolve_backs_up_what_its_undo_drops_with_row_counts(bot, prisma):
    """Issue 15, reproduction 4: the undo dropped "Post" and "bio" with no row counts and no
    backup, while revert shows both for the same kind of drop."""
    with psycopg.connect(prisma.url, autocommit=True) as conn:
        conn.execute("""INSERT INTO "User" ("email", "bio") VALUES ('a@x', 'hi'), ('b@x', NULL)""")
        conn.execute("""INSERT INTO "Post" ("title") VALUES ('one'), ('two'), ('three')""")
    day = datetime.now(UTC).strftime("%Y%m%d")
    bot.signer.slash(f"resolve {BAD} --env staging")
    update = bot.slack.wait_for("views.update")[-1]
    shown = modal_text(bot, update)
    assert (
        f'drops table public."Post" (3 rows; copied first to public."Post_backup_{day}")' in shown
    )
    assert "1 non-null value in 2 rows" in shown and f'"User_bio_backup_{day}"' in shown
    assert bot.signer.submit_view(update.args["view_id"], user="U_ALICE", values={}).status == 200

    op = bot.wait_until(lambda: bot.store.active_operation("staging"), what="operation")
    complete_before_checklist(bot, op.id)
    channel = bot.wait_until(lambda: bot.store.operation(op.id).incident_channel)
    bot.slack.wait_for(
        "chat.postMessage", where=lambda c: "Approval needed" in str(c.args.get("text"))
    )
    plan = bot.store.approvals(op.id)[0].plan_text
    assert "backups first" in plan and f'CREATE TABLE "public"."Post_backup_{day}"' in plan
    bot.signer.block_action(Action.APPROVE, None, user="U_BOB", channel=channel)
    bot.wait_status(op.id, "succeeded", timeout=30)
    assert "Post" not in prisma.tables() and "bio" not in prisma.columns("User")
    with psycopg.connect(prisma.url) as conn:
        posts = conn.execute(f'SELECT title FROM "Post_backup_{day}" ORDER BY 1').fetchall()
        bios = conn.execute(f'SELECT bio FROM "User_bio_backup_{day}" ORDER BY 1').fetchall()
    assert [r[0] for r in posts] == ["one", "three", "two"]
    assert [r[0] for r in bios] == ["hi", None]


def test_resolve_applied_on_a_partly_applied_migration_shows_what_never_ran(bot, prisma):
    bot.signer.slash(f"resolve {BAD} --applied --env staging")
    update = bot.slack.wait_for("views.update")[-1]
    shown = modal_text(bot, update)
    assert "These statements did not take effect" in shown
    assert 'ALTER TABLE public."Nope"' in shown or '"Nope"' in shown
    block = next(
        b for b in update.args["view"]["blocks"] if b.get("block_id") == "resolve_confirm_partial"
    )
    assert block["type"] == "input" and not block.get("optional")
    values = {"resolve_confirm_partial": ["confirmed"]}
    assert (
        bot.signer.submit_view(update.args["view_id"], user="U_ALICE", values=values).status == 200
    )
    op = bot.wait_until(lambda: bot.store.active_operation("staging"), what="operation")
    assert op.params["not_applied"] and "not applied" in op.params["not_applied"][0]
    complete_before_checklist(bot, op.id)
    bot.wait_until(lambda: bot.store.approvals(op.id), what="approval")
    plan = bot.store.approvals(op.id)[0].plan_text
    assert "WARNING: recorded as applied although these statements did not take effect" in plan


def test_a_submission_without_the_confirmation_is_refused_when_a_statement_never_ran(bot, prisma):
    """The form asks for the "record it as applied anyway" box only when statements did
    not take effect as it opens; the server plans again at submission and refuses one
    without the box when, by then, statements did not take effect (issue 15,
    reproduction 4). Slack's client cannot skip a required box: a deploy that failed
    while the form was open is how a submission without it reaches the bot."""
    prisma.mark_rolled_back(BAD)
    shutil.rmtree(prisma.path / BAD)
    with psycopg.connect(prisma.url, autocommit=True) as conn:
        conn.execute("""INSERT INTO "User" ("email") VALUES ('a@x'), ('a@x')""")
    prisma.add(LATE, UNIQUE_EMAIL_SQL)  # pending: recording it as applied is Prisma's baseline
    bot.signer.slash(f"resolve {LATE} --applied --env staging")
    update = bot.slack.wait_for("views.update")[-1]
    assert "recorded as applied" in modal_text(bot, update)
    assert "did not take effect" not in modal_text(bot, update)
    assert not any(
        b.get("block_id") == "resolve_confirm_partial" for b in update.args["view"]["blocks"]
    )

    # A deploy elsewhere tries it while the form is open: "Tag" is created, the unique
    # index fails on the duplicate emails.
    prisma.deploy()
    assert prisma.status().rows_for(LATE)[-1].state == "failed"
    opened = len(bot.slack.calls_to("views.open"))
    assert bot.signer.submit_view(update.args["view_id"], user="U_ALICE", values={}).status == 200
    error = bot.slack.wait_for("views.open", count=opened + 1)[-1]
    text = modal_text(bot, error)
    assert f"`{LATE}` has statements that did not take effect" in text
    assert "needs the explicit confirmation in the form. Nothing was started." in text
    assert bot.store.active_operation("staging") is None
    assert not bot.store.operations(limit=5)
    assert [r.state for r in prisma.status().rows_for(LATE)] == ["failed"]
