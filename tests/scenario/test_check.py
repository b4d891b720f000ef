"""Through the rig: /rollback check on production (a real PostgreSQL with a Prisma history
and rows), the check card answering the Migration Safety Checklist, the modal with the
questions only a person can answer, and the review recorded (audit) and posted."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from bot.prisma.deploy import deploy
from bot.runbooks.check import reviews_of
from bot.slack.ids import Action, Block, Callback
from bot.store.records import EventKind
from tests.scenario.test_revert import Database, shown

INIT = "20260101000000_init"
ADD = "20260102000000_add_nickname"
DROP = "20260103000000_drop_bio"


@pytest.fixture
def project(tmp_path, pg_url, monkeypatch):
    directory = tmp_path / "prisma" / "migrations"
    directory.mkdir(parents=True)
    (directory / "migration_lock.toml").write_text('provider = "postgresql"\n')

    def add(name: str, sql: str) -> None:
        (directory / name).mkdir()
        (directory / name / "migration.sql").write_text(sql)

    add(
        INIT,
        'CREATE TABLE "User" ("id" TEXT NOT NULL, "bio" TEXT,'
        ' CONSTRAINT "User_pkey" PRIMARY KEY ("id"));\n',
    )
    deploy(pg_url, directory)
    Database(pg_url).query("""INSERT INTO "User" VALUES ('u1', 'hi'), ('u2', NULL)""")
    add(ADD, 'ALTER TABLE "User" ADD COLUMN "nickname" TEXT;\n')
    add(DROP, 'ALTER TABLE "User" DROP COLUMN "bio";\n')
    monkeypatch.setenv("PRODUCTION_DATABASE_URL", pg_url)
    return directory


@pytest.fixture
def bot(bot_factory, project):
    return bot_factory(production_extra=f'migrations_dir = "{project}"')


def text_of(blocks) -> str:
    """Every text of the blocks, as a person reads them."""
    return shown(SimpleNamespace(args={"view": {"blocks": blocks}}))


def check_card(bot, command: str) -> dict:
    before = len(bot.slack.ephemerals(user="U_ALICE"))
    assert bot.signer.slash(command, user="U_ALICE").status == 200
    bot.wait_until(
        lambda: len(bot.slack.ephemerals(user="U_ALICE")) > before, timeout=30, what="the card"
    )
    return bot.slack.ephemerals(user="U_ALICE")[-1]


def open_check_modal(bot, card: dict, block_id: str = "b"):
    """Clicks "Answer the checklist" (the card's button in ``block_id``); the modal's call."""
    opened = len(bot.slack.calls_to("views.open"))
    bot.signer.block_action(
        Action.CHECK_REVIEW, None, user="U_ALICE", message=card, ephemeral=True, block_id=block_id
    )
    bot.wait_until(lambda: len(bot.slack.calls_to("views.open")) > opened, what="the modal")
    call = bot.slack.calls_to("views.open")[-1]
    assert call.args["view"]["callback_id"] == Callback.CHECK
    return call


def test_check_card_answers_the_checklist_and_records_the_reviewer(bot, project):
    card = check_card(bot, "check --env production")
    shown = text_of(card["blocks"])
    # The runbook's five questions, word for word, answered for each pending migration.
    for question in (
        "Is this change backward compatible?",
        "Can the application work with both old and new schema?",
        "Is there a data migration needed?",
        "What's the rollback plan?",
        "Is this change reversible?",
    ):
        assert shown.count(f"*{question}*") == 2, question
    assert f"`{ADD}` on *production*: passes" in shown
    assert f"`{DROP}` on *production*: destroys data or cannot be undone: not acknowledged" in shown
    assert 'DROP COLUMN "User".bio destroys 1 non-null value' in shown  # counted live
    # The lock, with the table's size (not analysed yet: no row estimate).
    assert 'ACCESS EXCLUSIVE on public."User" (rows not estimated yet, ' in shown
    assert "ban-drop-column" in shown  # squawk
    assert 'ALTER TABLE "public"."User" DROP COLUMN IF EXISTS "nickname";' in shown
    # "Can the application work with both old and new schema?": additive, or the
    # expand/contract way for what is not.
    assert "• Yes: every change is additive" in shown
    assert (
        "• Contract in two releases: first deploy code that no longer reads or writes it" in shown
    )

    # The person's questions: the modal opens from the card's button.
    block_id = next(b["block_id"] for b in card["blocks"] if b["type"] == "actions")
    opened = open_check_modal(bot, card, block_id)
    view = opened.args["view"]
    assert "Always test in staging first" in text_of(view["blocks"])
    response = bot.signer.submit_view(
        opened.response["view"]["id"],
        user="U_ALICE",
        values={
            Block.CHECK_CONFIRMED: ["staging", "both_schemas", "rollback_sql"],
            Block.CHECK_NOTE: "ships behind the nickname flag",
        },
    )
    assert response.status == 200

    # Recorded: who, which file (checksum), the bot's verdict and the person's answers.
    posted = bot.slack.wait_for(
        "chat.postMessage", where=lambda c: "reviewed by <@U_ALICE>" in str(c.args.get("text"))
    )[-1]
    (record,) = bot.store.audit_of_kind(EventKind.CHECK_REVIEWED)
    assert record.actor == "U_ALICE" and record.operation_id is None
    assert record.detail["migration"] == ADD and record.detail["verdict"] == "pass"
    assert record.detail["confirmed"] == ["staging", "both_schemas", "rollback_sql"]
    assert record.detail["unconfirmed"] == ["feature_flags", "low_traffic"]
    assert record.detail["note"] == "ships behind the nickname flag"
    reviewed = reviews_of(bot.store, "production")
    assert list(reviewed) == [(ADD, record.detail["checksum"])]
    message = text_of(posted.args["blocks"])
    assert ":warning: not confirmed: Use feature flags" in message
    assert "ships behind the nickname flag" in message


def test_a_file_edited_after_its_card_is_not_recorded(bot, project):
    card = check_card(bot, f"check {ADD} --env production")
    opened = open_check_modal(bot, card)
    (project / ADD / "migration.sql").write_text('ALTER TABLE "User" ADD COLUMN "nick" TEXT;\n')
    bot.signer.submit_view(opened.response["view"]["id"], user="U_ALICE", values={})
    told = bot.slack.wait_for(
        "chat.postEphemeral", where=lambda c: "changed since its check card" in c.args["text"]
    )
    assert told
    assert bot.store.audit_of_kind(EventKind.CHECK_REVIEWED) == []


def test_only_a_requester_records_a_review(bot):
    card = check_card(bot, f"check {ADD} --env production")
    opened = open_check_modal(bot, card)
    bot.signer.submit_view(opened.response["view"]["id"], user="U_DAVE", values={})
    bot.slack.wait_for(
        "chat.postEphemeral",
        where=lambda c: "not allowed to start a check review on production" in c.args["text"],
    )
    assert bot.store.audit_of_kind(EventKind.CHECK_REVIEWED) == []


def test_a_migration_that_is_not_pending_is_refused(bot):
    card = check_card(bot, f"check {INIT} --env production")
    assert "is not pending on production" in text_of(card["blocks"])
    card = check_card(bot, "check 20990101000000_nope --env production")
    assert "There is no migration named" in text_of(card["blocks"])


def test_check_pending_reviews_every_pending_migration_and_refuses_a_name_with_it(bot):
    card = check_card(bot, "check --pending --env production")
    shown = text_of(card["blocks"])
    assert f"`{ADD}` on *production*: passes" in shown
    assert f"`{DROP}` on *production*: destroys data or cannot be undone" in shown
    assert f"`{INIT}`" not in shown  # applied: not pending
    assert len([b for b in card["blocks"] if b["type"] == "actions"]) == 2

    card = check_card(bot, f"check {ADD} --pending --env production")
    shown = text_of(card["blocks"])
    assert f"`{ADD}` and --pending both say what to check" in shown
    assert not [b for b in card["blocks"] if b["type"] == "actions"]  # no card
