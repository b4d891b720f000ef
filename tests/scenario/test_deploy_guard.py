"""Through the rig, against real PostgreSQL and RDS served by moto: the deploy guard on
production. `/rollback deploy` is refused while a pending migration has no reviewed check
card (nothing applied, no snapshot); once both are reviewed it takes the manual snapshot
(tagged with the pending migrations), waits for it, and, approved, applies them. With
deploy windows, a deploy outside them is refused, and passes with an audited override."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from bot.slack.ids import Block
from bot.store.records import EventKind
from tests.scenario.test_backups import PRODUCTION_DB, make_instance, manual_snapshot_ids, tags_of
from tests.scenario.test_check import ADD, DROP, check_card, open_check_modal
from tests.scenario.test_check import project as project  # noqa: F401 - the fixture
from tests.scenario.test_drill import complete_before_checklist, confirm_deploy
from tests.scenario.test_revert import Database, approve

DAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")


def closed_window() -> str:
    """A one-hour window twelve hours from now: the deploy is outside it."""
    opens = datetime.now(UTC) + timedelta(hours=12)
    closes = opens + timedelta(hours=1)
    return f"{DAYS[opens.weekday()]} {opens:%H}:00-{closes:%H}:00"


@pytest.fixture
def make_bot(bot_factory, project, aws):  # noqa: F811 - project is the fixture
    make_instance(aws, PRODUCTION_DB, retention=30)

    def make(extra: str = ""):
        return bot_factory(
            production_extra=f'migrations_dir = "{project}"\n'
            f'rds_instance_id = "{PRODUCTION_DB}"\n{extra}'
        )

    return make


def review_every_card(bot) -> None:
    card = check_card(bot, "check --env production")
    buttons = [b["block_id"] for b in card["blocks"] if b["type"] == "actions"]
    for block_id in buttons:
        view = open_check_modal(bot, card, block_id)
        reviewed = len(bot.store.audit_of_kind(EventKind.CHECK_REVIEWED))
        bot.signer.submit_view(
            view.response["view"]["id"],
            user="U_ALICE",
            values={Block.CHECK_CONFIRMED: ["staging", "both_schemas"]},
        )
        bot.wait_until(
            lambda n=reviewed: len(bot.store.audit_of_kind(EventKind.CHECK_REVIEWED)) > n,
            timeout=30,
            what="the review recorded",
        )


def deploy(bot, command: str = "deploy --env production"):
    assert bot.signer.slash(command, user="U_ALICE").status == 200
    return confirm_deploy(bot, "production")


def failure_of(bot, op) -> str:
    bot.wait_status(op.id, "failed", timeout=30)
    return bot.store.step(op.id, "guard").error or ""


def test_deploy_refused_without_check_cards_then_snapshot_and_apply(make_bot, aws, pg_url):
    bot = make_bot()
    op = deploy(bot)
    error = failure_of(bot, op)
    assert "2 pending migrations have no reviewed check card" in error
    assert f"`{ADD}`" in error and f"`{DROP}`" in error
    assert manual_snapshot_ids(aws, PRODUCTION_DB) == []  # refused before any snapshot
    assert "nickname" not in Database(pg_url).columns("User")

    review_every_card(bot)
    op = deploy(bot)
    complete_before_checklist(bot, op.id)
    plan = approve(bot, op)
    assert ADD in plan and DROP in plan
    bot.wait_status(op.id, "succeeded", timeout=60)
    assert "nickname" in Database(pg_url).columns("User")
    (snapshot,) = manual_snapshot_ids(aws, PRODUCTION_DB)
    assert bot.store.operation(op.id).params["snapshot"] == snapshot
    # The approver saw the snapshot and who reviewed each card.
    assert f"snapshot before it: {snapshot}" in plan
    assert f"check card {ADD}: reviewed by U_ALICE (pass)" in plan
    assert f"check card {DROP}: reviewed by U_ALICE (blocked)" in plan
    assert tags_of(aws, snapshot)["rollback-bot:migration-1"] == ADD
    notes = [a.message for a in bot.store.audit(op.id)]
    assert any(f"took {snapshot}" in n for n in notes)
    assert any(f"{ADD}: reviewed by <@U_ALICE> (pass)" in n for n in notes)


def test_an_edited_file_needs_a_new_review(make_bot, aws, project):
    bot = make_bot()
    review_every_card(bot)
    (project / ADD / "migration.sql").write_text('ALTER TABLE "User" ADD COLUMN "nick" TEXT;\n')
    error = failure_of(bot, deploy(bot))
    assert "1 pending migration has no reviewed check card" in error and f"`{ADD}`" in error
    assert manual_snapshot_ids(aws, PRODUCTION_DB) == []


def test_outside_the_deploy_windows_only_with_an_audited_override(make_bot, aws, pg_url):
    window = closed_window()
    bot = make_bot(f'deploy_windows = ["{window}"]')
    review_every_card(bot)
    error = failure_of(bot, deploy(bot))
    assert f"outside production's deploy windows ({window}, UTC)" in error
    assert '--override-window "why now"' in error
    assert manual_snapshot_ids(aws, PRODUCTION_DB) == []

    op = deploy(bot, 'deploy --env production --override-window "hotfix for INC-42"')
    complete_before_checklist(bot, op.id)
    approve(bot, op)
    bot.wait_status(op.id, "succeeded", timeout=60)
    notes = [a.message for a in bot.store.audit(op.id)]
    assert any("deploying anyway on <@U_ALICE>'s override: hotfix for INC-42" in n for n in notes)
    assert "nickname" in Database(pg_url).columns("User")
