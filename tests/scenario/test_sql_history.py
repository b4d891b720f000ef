"""The runbook's "Update Prisma migration history" step, offered in the
/rollback sql modal as a choice (a migration from the list; mark rolled back or remove its
rows) and carried out with the option 1 history code inside Prisma's advisory lock."""

from __future__ import annotations

import pytest

from bot.slack.ids import Action, Block, Callback
from tests.scenario.test_resolve import BAD, GOOD, prisma  # noqa: F401 - the fixture
from tests.scenario.test_sql import complete_checklist_in


@pytest.fixture
def bot(bot_factory, prisma):  # noqa: F811 - the imported fixture
    return bot_factory(development_extra=f'migrations_dir = "{prisma.path}"')


def run_sql(bot, sql: str, migration: str, action: str):
    assert bot.signer.slash("sql --env development").status == 200
    opened = bot.slack.wait_for(
        "views.open", where=lambda c: c.args["view"]["callback_id"] == Callback.SQL
    )[-1]
    view_id = opened.response["view"]["id"]
    history = next(
        b for b in opened.args["view"]["blocks"] if b.get("block_id") == Block.SQL_HISTORY
    )
    assert BAD in [o["value"] for o in history["element"]["options"]]
    response = bot.signer.submit_view(
        view_id,
        user="U_ALICE",
        values={
            Block.SQL_TEXT: sql,
            Block.SQL_REASON: "INC-7",
            Block.SQL_HISTORY: migration,
            Block.SQL_HISTORY_ACTION: action,
        },
    )
    assert response.status == 200, response.body
    op = bot.wait_until(lambda: bot.store.active_operation("development"), what="op")
    complete_checklist_in(bot, view_id)
    channel = bot.wait_until(lambda: bot.store.operation(op.id).incident_channel)
    commit = f"{Action.DECIDE}_commit"
    bot.slack.wait_for("chat.postMessage", where=lambda c: commit in str(c.args.get("blocks")))
    bot.signer.block_action(commit, None, user="U_ALICE", channel=channel)
    bot.wait_status(op.id, "succeeded", "failed", timeout=30)
    return bot.store.operation(op.id)


def test_undo_by_hand_then_mark_the_failed_migration_rolled_back(bot, prisma):  # noqa: F811
    undo = 'DROP TABLE "Post";\nALTER TABLE "User" DROP COLUMN "bio";'
    op = run_sql(bot, undo, BAD, "rolled_back")
    assert op.status == "succeeded", op.result
    status = prisma.status()
    assert not status.failed and BAD in status.rolled_back
    assert "Post" not in prisma.tables()
    assert "marked" in op.params["history_updated"]


def test_remove_rows_makes_the_migration_pending_again(bot, prisma):  # noqa: F811
    op = run_sql(bot, 'ALTER TABLE "User" ADD COLUMN "note" TEXT;', GOOD, "remove")
    assert op.status == "succeeded", op.result
    assert GOOD in prisma.status().pending
    assert "removed 1 history row" in op.params["history_updated"]


def test_a_migration_without_an_action_is_a_field_error(bot, prisma):  # noqa: F811
    assert bot.signer.slash("sql --env development").status == 200
    opened = bot.slack.wait_for(
        "views.open", where=lambda c: c.args["view"]["callback_id"] == Callback.SQL
    )[-1]
    response = bot.signer.submit_view(
        opened.response["view"]["id"],
        user="U_ALICE",
        values={Block.SQL_TEXT: "SELECT 1;", Block.SQL_REASON: "x", Block.SQL_HISTORY: BAD},
    )
    body = response.json()
    assert body["response_action"] == "errors"
    assert Block.SQL_HISTORY_ACTION in body["errors"]
    assert bot.store.active_operation("development") is None
