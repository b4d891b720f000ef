"""Through the rig: /rollback revert, runbook option 2, against real PostgreSQL
databases (staging and production) sharing one Prisma migrations directory, driven the way
Slack drives the bot: review modal, staging first, checklist, approval, apply, verify."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime

import psycopg
import pytest

from bot.errors import UserError
from bot.prisma.deploy import deploy
from bot.prisma.status import migration_status
from bot.slack.ids import Action, Block, Callback
from tests.scenario.test_drill import complete_before_checklist

INIT = "20251201000000_init"
ADD = "20251208120000_add_bio"
INIT_SQL = (
    'CREATE TABLE "User" ("id" TEXT NOT NULL, "email" TEXT NOT NULL,'
    ' CONSTRAINT "User_pkey" PRIMARY KEY ("id"));\n'
    """INSERT INTO "User" VALUES ('u1', 'a@x'), ('u2', 'b@x'), ('u3', 'c@x');\n"""
)
ADD_SQL = (
    '-- AlterTable\nALTER TABLE "User" ADD COLUMN "bio" TEXT;\n\n'
    '-- CreateIndex\nCREATE INDEX "User_bio_idx" ON "User"("bio");\n'
)
WRITES = """UPDATE "User" SET "bio" = 'hello' WHERE "id" IN ('u1', 'u2');"""


class Database:
    def __init__(self, url: str):
        self.url = url

    def query(self, sql: str, params: tuple = ()) -> list[tuple]:
        with psycopg.connect(self.url, autocommit=True) as conn:
            cursor = conn.execute(sql, params)
            return cursor.fetchall() if cursor.description else []

    def columns(self, table: str) -> list[str]:
        rows = self.query(
            "SELECT column_name FROM information_schema.columns WHERE table_name = %s"
            " ORDER BY ordinal_position",
            (table,),
        )
        return [r[0] for r in rows]

    def history(self, name_part: str) -> list[tuple]:
        return self.query(
            "SELECT migration_name, checksum, finished_at, logs, rolled_back_at,"
            " applied_steps_count FROM _prisma_migrations WHERE migration_name LIKE %s",
            (f"%{name_part}",),
        )


@pytest.fixture
def prisma(tmp_path, pg_url, pg_server, monkeypatch):
    directory = tmp_path / "prisma" / "migrations"
    directory.mkdir(parents=True)
    (directory / "migration_lock.toml").write_text('provider = "postgresql"\n')

    class Project:
        path = directory
        staging = Database(pg_url)
        production = Database(pg_server.create_database())

        def add(self, name: str, sql: str) -> None:
            (directory / name).mkdir(exist_ok=True)
            (directory / name / "migration.sql").write_text(sql)

        def deploy(self) -> None:
            for db in (self.staging, self.production):
                deploy(db.url, directory)
                db.query(WRITES)

        def status(self, db: Database):
            with psycopg.connect(db.url, autocommit=True) as conn:
                return migration_status(conn, directory)

    project = Project()
    project.add(INIT, INIT_SQL)
    project.add(ADD, ADD_SQL)
    project.deploy()
    monkeypatch.setenv("STAGING_DATABASE_URL", project.staging.url)
    monkeypatch.setenv("PRODUCTION_DATABASE_URL", project.production.url)
    return project


@pytest.fixture
def bot(bot_factory, prisma):
    extra = f'migrations_dir = "{prisma.path}"'
    return bot_factory(staging_extra=extra, production_extra=extra)


def review(bot, command: str) -> dict:
    """Runs the slash command; returns the call that filled the revert modal."""
    before = len(bot.slack.calls_to("views.update"))
    assert bot.signer.slash(command).status == 200
    bot.wait_until(lambda: len(bot.slack.calls_to("views.update")) > before, what="modal")
    return bot.slack.calls_to("views.update")[-1]


def shown(call) -> str:
    """Every text of the modal, as a person reads it."""
    found: list[str] = []

    def walk(node) -> None:
        if isinstance(node, dict):
            for key, value in node.items():
                if key in ("text", "initial_value") and isinstance(value, str):
                    found.append(value)
                else:
                    walk(value)
        elif isinstance(node, list):
            for item in node:
                walk(item)

    walk(call.args["view"]["blocks"])
    return "\n".join(found)


def approve(bot, op, approver="U_BOB"):
    channel = bot.wait_until(lambda: bot.store.operation(op.id).incident_channel)
    approval = bot.slack.wait_for(
        "chat.postMessage",
        where=lambda c: (
            c.args.get("channel") == channel and "Approval needed" in str(c.args.get("text"))
        ),
    )[-1]
    bot.signer.block_action(Action.APPROVE, None, user=approver, channel=channel)
    return str(approval.args["blocks"])


def checklist_modals(bot) -> list:
    return [
        c
        for c in bot.slack.calls_to("views.open")
        if c.args["view"]["callback_id"] == Callback.CHECKLIST
    ]


def run_revert(bot, env: str, values: dict | None = None):
    update = review(bot, f"revert {ADD} --env {env}")
    assert update.args["view"]["callback_id"] == Callback.REVERT
    opened = len(checklist_modals(bot))
    response = bot.signer.submit_view(update.args["view_id"], user="U_ALICE", values=values or {})
    assert response.status == 200
    op = bot.wait_until(lambda: bot.store.active_operation(env), what="operation")
    bot.wait_until(lambda: len(checklist_modals(bot)) > opened, what="the checklist modal")
    assert op.runbook == "revert"
    complete_before_checklist(bot, op.id)
    return update, op


def today() -> str:
    return datetime.now(UTC).strftime("%Y%m%d")


def test_staging_first_then_production_with_review_backups_and_approval(bot, prisma):
    # Production first is refused: the runbook tests a rollback in staging first.
    refused = shown(review(bot, f"revert {ADD} --env production"))
    assert "has not been applied successfully on staging yet" in refused
    assert f"/rollback revert {ADD} --env staging" in refused
    assert bot.store.active_operation("production") is None
    assert not list(prisma.path.glob("*_revert_*"))

    # Staging: the review modal shows the SQL (editable), the classes, impact and lint.
    update, op = run_revert(bot, "staging")
    modal = shown(update)
    assert "data-losing" in modal and "reversible" in modal
    assert (
        'drops column public."User".bio (2 non-null values in 3 rows; copied first to'
        f' public."User_bio_backup_{today()}")' in modal
    )
    assert "ban-drop-column" in modal  # squawk's finding
    sql_input = next(b for b in update.args["view"]["blocks"] if b.get("block_id") == "revert_sql")
    sql = sql_input["element"]["initial_value"]
    assert sql.splitlines()[1:3] == ["SET lock_timeout = '5s';", "SET statement_timeout = '60s';"]
    assert 'DROP INDEX IF EXISTS "public"."User_bio_idx"' in sql

    plan = approve(bot, op)
    assert "REVERSE MIGRATION on environment staging" in plan and "[data_losing]" in plan
    bot.wait_status(op.id, "succeeded", timeout=30)

    # The new migration directory, recorded exactly as deploy records a migration.
    (written,) = prisma.path.glob(f"*_revert_{ADD}")
    assert written.name.endswith(f"_revert_{ADD}") and len(written.name.split("_")[0]) == 14
    file_sql = (written / "migration.sql").read_text()
    assert file_sql == sql
    ((name, checksum, finished, logs, rolled_back, steps),) = prisma.staging.history("_revert_%")
    assert name == written.name and finished is not None and rolled_back is None
    assert checksum == hashlib.sha256(file_sql.encode()).hexdigest()
    assert logs is None and steps == 1
    assert "bio" not in prisma.staging.columns("User")
    backup = f"User_bio_backup_{today()}"
    assert sorted(prisma.staging.query(f'SELECT * FROM "{backup}"')) == [
        ("u1", "hello"),
        ("u2", "hello"),
        ("u3", None),
    ]
    status = prisma.status(prisma.staging)
    assert not status.pending and not status.failed
    # The verify step asserted it; the thread says it too.
    bot.wait_until(
        lambda: any("0 of 2 statements took effect" in a.message for a in bot.store.audit(op.id)),
        what="the diagnosis after the revert",
    )

    # Production: the tested SQL, read-only; the bot ticks "Test in staging" itself.
    update, op = run_revert(bot, "production")
    assert "Tested on staging" in shown(update)
    assert not any(b.get("block_id") == "revert_sql" for b in update.args["view"]["blocks"])
    items = {i.item_id: i for i in bot.store.checklist(op.id, "before")}
    assert items["staging"].by_bot and written.name in items["staging"].note
    plan = approve(bot, op, approver="U_DAVE")
    assert f"tested: applied on staging as {written.name}" in plan
    bot.wait_status(op.id, "succeeded", timeout=30)
    ((name, checksum_prod, *_),) = prisma.production.history("_revert_%")
    assert (name, checksum_prod) == (written.name, checksum)
    assert "bio" not in prisma.production.columns("User")
    assert len(prisma.production.query(f'SELECT * FROM "{backup}"')) == 3

    # Reverting again is refused: it was already reverted.
    again = shown(review(bot, f"revert {ADD} --env staging"))
    assert f"was already reverted by `{written.name}`" in again


@pytest.mark.parametrize(
    ("edited", "message"),
    [
        ('ALTER TABLE "User" DROP COLUMN "bio" oops;', "The SQL does not parse"),
        ('BEGIN;\nALTER TABLE "User" DROP COLUMN "bio";\nCOMMIT;', "no BEGIN/COMMIT"),
        ("SET lock_timeout = '1s';", "reverses nothing"),
    ],
)
def test_bad_edited_sql_is_a_field_error_and_changes_nothing(bot, prisma, edited, message):
    update = review(bot, f"revert {ADD} --env staging")
    response = bot.signer.submit_view(
        update.args["view_id"], user="U_ALICE", values={Block.REVERT_SQL: edited}
    )

    body = response.json()
    assert body["response_action"] == "errors"
    assert message in body["errors"][Block.REVERT_SQL]
    assert bot.store.active_operation("staging") is None
    assert not list(prisma.path.glob("*_revert_*"))
    assert "bio" in prisma.staging.columns("User")


def test_edited_sql_runs_as_edited_and_is_marked(bot, prisma):
    edited = (
        "SET lock_timeout = '5s';\n"
        'DROP INDEX IF EXISTS "User_bio_idx";\n'
        'ALTER TABLE "User" DROP COLUMN "bio";\n'
    )
    _, op = run_revert(bot, "staging", {Block.REVERT_SQL: edited})
    plan = approve(bot, op)
    assert "SQL edited in review: yes" in plan
    bot.wait_status(op.id, "succeeded", timeout=30)
    (written,) = prisma.path.glob(f"*_revert_{ADD}")
    assert (written / "migration.sql").read_text() == edited
    assert "bio" not in prisma.staging.columns("User")


def test_a_never_applied_migration_is_refused(bot, prisma):
    prisma.add("20251210000000_pending", 'ALTER TABLE "User" ADD COLUMN "age" INTEGER;\n')

    text = shown(review(bot, "revert 20251210000000_pending --env staging"))

    assert "cannot be reverted because it was never applied to the database" in text
    assert bot.store.active_operation("staging") is None
    assert not list(prisma.path.glob("*_revert_*"))


def test_an_irreversible_migration_is_refused_with_the_reason_and_option_3(bot, prisma):
    name = "20251210000000_drop_email"
    prisma.add(name, 'ALTER TABLE "User" DROP COLUMN "email";\n')
    deploy(prisma.staging.url, prisma.path)

    text = shown(review(bot, f"revert {name} --env staging"))

    assert "cannot be reversed by a migration" in text
    assert "dropping a column destroyed its values" in text
    assert "/rollback pitr" in text and "option 3" in text
    assert bot.store.active_operation("staging") is None
    assert not list(prisma.path.glob("*_revert_*"))


def test_a_migration_with_later_ones_applied_is_refused_naming_them(bot, prisma):
    # The later migration indexes the column the reverse of ADD would drop: a reverse of
    # ADD alone, made for the schema as ADD left it, would not know about it.
    later = "20251210000000_index_bio_email"
    prisma.add(later, 'CREATE INDEX "User_bio_email_idx" ON "User"("bio", "email");\n')
    deploy(prisma.staging.url, prisma.path)

    text = shown(review(bot, f"revert {ADD} --env staging"))

    assert f"`{ADD}` is not the last migration applied to staging" in text
    assert f"`{later}` was applied after it" in text
    assert f"/rollback revert {later}" in text and "/rollback pitr" in text
    assert bot.store.active_operation("staging") is None
    assert not list(prisma.path.glob("*_revert_*"))
    # The later one is the last: its own reverse is offered.
    update = review(bot, f"revert {later} --env staging")
    assert update.args["view"]["callback_id"] == Callback.REVERT


def test_later_migrations_leave_out_pairs_a_later_revert_undid():
    from types import SimpleNamespace

    from bot.runbooks.revert.plan import later_migrations

    b, c, d = "20251210000000_b", "20251211000000_c", "20251212000000_d"
    revert_c = f"20251213000000_revert_{c}"
    names = (INIT, ADD, b, c, d, revert_c)
    status = SimpleNamespace(applied=names, directory=SimpleNamespace(names=names))

    assert later_migrations(status, ADD) == [b, d]
    # A revert applied after d changed the schema after d too, even though c came first.
    assert later_migrations(status, d) == [revert_c]
    assert later_migrations(status, revert_c) == []
    # Applied out of directory order (an older-stamped migration deployed last) still counts.
    late = SimpleNamespace(applied=(INIT, b, ADD), directory=SimpleNamespace(names=(INIT, ADD, b)))
    assert later_migrations(late, ADD) == [b]
    assert later_migrations(late, b) == [ADD]


def test_a_failed_migration_refuses_the_revert_before_review_checklist_or_approval(bot, prisma):
    """Issue 15, reproduction 2: the revert went through the modal, the checklist and an
    approval, then failed with "migrate found failed migrations" and left its file behind."""
    failed = "20251210000000_add_project"
    prisma.add(failed, 'CREATE TABLE "Project" ("id" TEXT);\nSELECT 1/0;\n')
    with pytest.raises(UserError):
        deploy(prisma.staging.url, prisma.path)
    assert [r.migration_name for r in prisma.status(prisma.staging).failed] == [failed]

    call = review(bot, f"revert {ADD} --env staging")
    text = shown(call)
    assert f"staging has a failed migration (`{failed}`)" in text
    assert f"/rollback resolve {failed} --env staging" in text
    assert not any(b.get("block_id") == Block.REVERT_SQL for b in call.args["view"]["blocks"])
    assert bot.store.active_operation("staging") is None and not checklist_modals(bot)
    assert not list(prisma.path.glob("*_revert_*"))
    assert "bio" in prisma.staging.columns("User")


def test_a_pending_migration_refuses_the_revert_before_review_checklist_or_approval(bot, prisma):
    """Prisma's deploy applies every pending migration, in name order: the reverse would
    go out together with a migration nobody reviewed here. Refused before the review
    modal offers anything, with what to do instead."""
    pending = "20251210000000_add_age"
    prisma.add(pending, 'ALTER TABLE "User" ADD COLUMN "age" INTEGER;\n')

    call = review(bot, f"revert {ADD} --env staging")
    text = shown(call)
    assert f"staging has pending migrations (`{pending}`)" in text
    assert "Prisma would apply them together with the reverse. Nothing was started." in text
    assert "/rollback deploy --env staging" in text
    assert not any(b.get("block_id") == Block.REVERT_SQL for b in call.args["view"]["blocks"])
    assert bot.store.active_operation("staging") is None and not checklist_modals(bot)
    assert not list(prisma.path.glob("*_revert_*"))
    assert "bio" in prisma.staging.columns("User") and "age" not in prisma.staging.columns("User")


def test_a_revert_that_fails_writes_no_file_and_names_the_failed_statement(bot, prisma):
    edited = 'ALTER TABLE "User" DROP COLUMN "bio";\n\nUPDATE "User" SET "email" = "nope";\n'
    _, op = run_revert(bot, "staging", {Block.REVERT_SQL: edited})
    approve(bot, op)
    bot.wait_status(op.id, "failed", timeout=30)

    error = bot.store.step(op.id, "apply").error
    assert 'Failed statement: line 3: UPDATE "User" SET "email" = "nope"' in error
    assert "Nothing of it took effect" in error
    # One script, one transaction, as Prisma runs it: the first statement is undone too.
    assert "bio" in prisma.staging.columns("User")
    # Recorded as Prisma records a failed migration (its logs), and no file anywhere.
    ((name, _, finished, logs, _, steps),) = prisma.staging.history("_revert_%")
    assert finished is None and steps == 0 and '"nope" does not exist' in logs
    assert not list(prisma.path.glob("*_revert_*"))
    assert bot.store.step(op.id, "write_migration").status == "pending"


def test_the_written_file_is_named_with_the_git_command_to_commit_it(bot, prisma):
    _, op = run_revert(bot, "staging")
    approve(bot, op)
    bot.wait_status(op.id, "succeeded", timeout=30)
    (written,) = prisma.path.glob(f"*_revert_{ADD}")
    line = next(a.message for a in bot.store.audit(op.id) if "written" in a.message)
    assert str(written / "migration.sql") in line
    assert f"git -C {prisma.path} add {written.name}/migration.sql" in line
    # Applied before it was written: the apply step ended before the file step began.
    apply, write = bot.store.step(op.id, "apply"), bot.store.step(op.id, "write_migration")
    assert apply.finished_at <= write.started_at
