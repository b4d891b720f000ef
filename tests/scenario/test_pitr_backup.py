"""PITR's "Backup current state" (issue 15, reproduction 5): a manual snapshot up to an hour
old was silently reused as "the backup of the current state". Now a fresh snapshot is the
default; a recent one is reused only when the requester picks it in the modal, its age
shown, and the thread says who chose it."""

from __future__ import annotations

import json

from bot.slack.ids import Block
from tests.scenario.test_pitr import SOURCE, open_modal, pitr_bot

RECENT = "skillancer-rds-before-deploy"


def backup_tick(bot, op_id):
    return bot.wait_until(
        lambda: next(
            (
                i
                for i in bot.store.checklist(op_id, "before")
                if i.item_id == "backup" and i.checked
            ),
            None,
        ),
        what="backup ticked",
    )


def with_recent_snapshot(bot_factory, aws, pg_url, monkeypatch):
    bot = pitr_bot(bot_factory, aws, pg_url, monkeypatch)
    aws.client("rds").create_db_snapshot(DBInstanceIdentifier=SOURCE, DBSnapshotIdentifier=RECENT)
    return bot


def test_a_fresh_snapshot_is_taken_even_when_a_recent_one_exists(
    bot_factory, aws, pg_url, monkeypatch
):
    bot = with_recent_snapshot(bot_factory, aws, pg_url, monkeypatch)
    view_id = open_modal(bot)
    block = next(
        b for b in bot.slack.views()[view_id]["blocks"] if b.get("block_id") == Block.PITR_BACKUP
    )
    assert block["element"]["initial_option"]["value"] == "fresh"
    # A plain_text hint (bot/slack/pitr_views.py): the name as written, no code marks.
    assert f"{RECENT} was taken 0 min ago" in json.dumps(block)

    bot.signer.submit_view(view_id, user="U_ALICE", values={})
    op = bot.wait_until(lambda: bot.store.active_operation("rds"), what="operation")
    tick = backup_tick(bot, op.id)
    assert tick.note.startswith(f"snapshot {SOURCE}-before-pitr-") and RECENT not in tick.note
    assert bot.store.operation(op.id).params["backup_reused"] is False


def test_a_recent_snapshot_is_reused_only_when_the_requester_picks_it(
    bot_factory, aws, pg_url, monkeypatch
):
    bot = with_recent_snapshot(bot_factory, aws, pg_url, monkeypatch)
    view_id = open_modal(bot)
    bot.signer.submit_view(view_id, user="U_ALICE", values={Block.PITR_BACKUP: f"reuse:{RECENT}"})
    op = bot.wait_until(lambda: bot.store.active_operation("rds"), what="operation")
    assert backup_tick(bot, op.id).note == f"snapshot {RECENT}"
    assert bot.store.operation(op.id).params["backup_reused"] is True
    said = [a.message for a in bot.store.audit(op.id)]
    assert any(f"Reusing manual snapshot `{RECENT}`" in m and "<@U_ALICE> chose" in m for m in said)
    snapshots = aws.client("rds").describe_db_snapshots(DBInstanceIdentifier=SOURCE)["DBSnapshots"]
    assert not any("-before-pitr-" in s["DBSnapshotIdentifier"] for s in snapshots)
