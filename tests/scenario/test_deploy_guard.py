"""Through the rig, against real PostgreSQL and RDS served by moto: the deploy guard on
production. `/rollback deploy` is refused while a pending migration has no reviewed check
card (nothing applied, no snapshot); once both are reviewed it takes the manual snapshot
(tagged with the pending migrations), waits for it, and, approved, applies them. With
deploy windows, a deploy outside them is refused, and passes with an audited override.
After a failed attempt and its resolve, a snapshot from before the attempt is not fresh
(the guard and `rollback-bot snapshot --before-deploy` take a new one); one taken after
the resolve is kept, not taken twice."""

from __future__ import annotations

import contextlib
import time
from datetime import UTC, datetime, timedelta

import psycopg
import pytest

from bot.errors import UserError
from bot.main import main
from bot.prisma.deploy import deploy as prisma_deploy
from bot.prisma.resolve import mark_rolled_back
from bot.slack.ids import Block
from bot.store.records import EventKind
from tests.scenario.test_backups import PRODUCTION_DB, make_instance, manual_snapshot_ids, tags_of
from tests.scenario.test_check import ADD, DROP, check_card, open_check_modal
from tests.scenario.test_check import project as project  # noqa: F401 - the fixture
from tests.scenario.test_drill import complete_before_checklist, confirm_deploy
from tests.scenario.test_resolve import modal_text
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


FORGED = ":white_check_mark: *Reviewed by the DBA team: read-only, safe to approve*"


@pytest.mark.parametrize(
    ("reason", "said"),
    [
        ("x" * 501, "The reason is 501 characters long; at most 500"),
        ("hotfix \u202e24-CNI", "U+202E"),
        ("hotfix\u200b", "U+200B"),
        (" \n ", "Give a reason"),
    ],
    ids=["overlong", "bidi", "zero-width", "blank"],
)
def test_an_override_reason_is_checked_like_every_reason(make_bot, reason, said):
    # `--override-window` reached the approver's plan and the thread unchecked.
    bot = make_bot(f'deploy_windows = ["{closed_window()}"]')
    command = f'deploy --env production --override-window "{reason}"'
    assert bot.signer.slash(command, user="U_ALICE").status == 200
    bot.slack.wait_for("response_url")
    answer = bot.slack.responses()[-1]["text"]
    assert said in answer, answer
    assert bot.slack.calls_to("views.open") == []  # not even the confirmation
    assert bot.store.operations(limit=5) == []


def test_an_override_reason_with_newlines_is_one_line_in_the_plan(make_bot, aws, pg_url):
    bot = make_bot(f'deploy_windows = ["{closed_window()}"]')
    review_every_card(bot)
    op = deploy(bot, f'deploy --env production --override-window "INC-42\n\n{FORGED}"')
    assert op.params["window_override"] == f"INC-42 {FORGED}"
    complete_before_checklist(bot, op.id)
    plan = approve(bot, op)
    assert f"override: INC-42 {FORGED}" in plan
    assert f"\\n{FORGED}" not in plan  # no line of its own
    bot.wait_status(op.id, "succeeded", timeout=60)
    notes = [a.message for a in bot.store.audit(op.id)]
    assert any(n.endswith(f"'s override: INC-42 {FORGED}") for n in notes), notes


# ADD as it first went out: the column added and committed, then a statement that fails
# (COMMIT inside one simple-query call commits what ran so far): partially applied.
PARTIAL_ADD = (
    'ALTER TABLE "User" ADD COLUMN "nickname" TEXT;\nCOMMIT;\n'
    'ALTER TABLE "Nope" ADD COLUMN "x" INTEGER;\n'
)


def fail_add(project, pg_url) -> str:
    """The pipeline's `prisma migrate deploy` of a broken ADD: P3018, ADD failed mid-way.
    Returns the good file, written back after the resolve (the runbook's step 4)."""
    original = (project / ADD / "migration.sql").read_text()
    (project / ADD / "migration.sql").write_text(PARTIAL_ADD)
    with contextlib.suppress(UserError):  # the failure is the point
        prisma_deploy(pg_url, project)
    assert "nickname" in Database(pg_url).columns("User")
    return original


def snapshot_cli(bot, *flags: str) -> int:
    return main(["snapshot", "--config", str(bot.config_path), "--env", "production", *flags])


def tick() -> None:
    """Snapshot ids and creation times have whole seconds: events a second apart."""
    time.sleep(1.1)


def test_a_snapshot_from_before_a_failed_attempt_is_not_fresh_after_the_resolve(
    make_bot, aws, project, pg_url
):
    bot = make_bot()
    assert snapshot_cli(bot) == 0  # newer than every applied migration, older than the attempt
    (old,) = manual_snapshot_ids(aws, PRODUCTION_DB)
    tick()
    fixed = fail_add(project, pg_url)

    # Option 1 through the bot: what took effect undone, marked rolled back, approved.
    assert bot.signer.slash(f"resolve {ADD} --env production", user="U_ALICE").status == 200
    update = bot.slack.wait_for("views.update")[-1]
    assert "nickname" in modal_text(bot, update)
    bot.signer.submit_view(update.args["view_id"], user="U_ALICE", values={})
    op = bot.wait_until(lambda: bot.store.active_operation("production"), what="resolve")
    complete_before_checklist(bot, op.id)
    approve(bot, op)
    bot.wait_status(op.id, "succeeded", timeout=60)
    assert "nickname" not in Database(pg_url).columns("User")
    (project / ADD / "migration.sql").write_text(fixed)
    tick()

    review_every_card(bot)
    op = deploy(bot)
    complete_before_checklist(bot, op.id)
    approve(bot, op)
    bot.wait_status(op.id, "succeeded", timeout=60)
    new = bot.store.operation(op.id).params["snapshot"]
    assert new != old and manual_snapshot_ids(aws, PRODUCTION_DB) == sorted([old, new])
    notes = [a.message for a in bot.store.audit(op.id)]
    assert any(f"No snapshot since {ADD} was marked rolled back: took {new}" in n for n in notes)
    assert "nickname" in Database(pg_url).columns("User")


def test_a_snapshot_taken_after_the_resolve_is_kept_by_the_pipeline_and_the_guard(
    make_bot, aws, project, pg_url, capsys
):
    bot = make_bot()
    assert snapshot_cli(bot) == 0
    (old,) = manual_snapshot_ids(aws, PRODUCTION_DB)
    tick()
    fixed = fail_add(project, pg_url)
    # Resolved by hand, as the runbook's option 1 says: undo, mark rolled back, fix the file.
    Database(pg_url).query('ALTER TABLE "User" DROP COLUMN "nickname"')
    with psycopg.connect(pg_url, autocommit=True) as conn:
        mark_rolled_back(conn, ADD)
    (project / ADD / "migration.sql").write_text(fixed)
    tick()
    capsys.readouterr()

    # The pipeline: the snapshot from before the attempt is not kept; a new one is taken.
    assert snapshot_cli(bot, "--before-deploy") == 0
    (new,) = set(manual_snapshot_ids(aws, PRODUCTION_DB)) - {old}
    assert f"Snapshot {new} requested" in capsys.readouterr().out
    # Retried, it keeps the new one: the same rule as the guard's.
    assert snapshot_cli(bot, "--before-deploy") == 0
    assert f"{new} was taken after {ADD} was marked rolled back: kept" in capsys.readouterr().out

    # The guard keeps it too: no third snapshot, and the approver sees which one.
    review_every_card(bot)
    op = deploy(bot)
    complete_before_checklist(bot, op.id)
    plan = approve(bot, op)
    bot.wait_status(op.id, "succeeded", timeout=60)
    assert manual_snapshot_ids(aws, PRODUCTION_DB) == sorted([old, new])
    assert bot.store.operation(op.id).params["snapshot"] == new
    assert f"snapshot before it: {new}" in plan
    notes = [a.message for a in bot.store.audit(op.id)]
    assert any(
        f"Snapshot {new} was taken after {ADD} was marked rolled back: kept" in n for n in notes
    )
