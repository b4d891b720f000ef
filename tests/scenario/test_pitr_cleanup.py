"""PITR cleanup after an undo (issue 15's first reproduction): restore, switch traffic
(approved), "Undo switch" (approved). The undo cancels the scheduled deletion, edits the
cleanup card and the switch card so neither offers a deletion, and a stale "Delete old
instance" click or the job coming due deletes nothing: the old instance is live again.
"""

from __future__ import annotations

import json

from bot.runbooks.pitr import cleanup_schedule
from bot.slack.ids import Action
from tests.scenario.test_pitr import (
    SOURCE,
    approve_next,
    current_secret,
    pitr_bot,
    start_undo,
)
from tests.scenario.test_pitr_recovery import start_restore


def thread_text(bot, channel) -> str:
    return " ".join(m["text"] for m in bot.slack.messages(channel))


def restore_and_switch(bot):
    op, _ = start_restore(bot)
    channel = approve_next(bot, op.id, 1)
    approve_next(bot, op.id, 2)
    bot.wait_status(op.id, "succeeded")
    return op, channel


def card(bot, channel, text):
    return next(m for m in bot.slack.messages(channel) if text in json.dumps(m))


def actions_of(message) -> set[str]:
    return {
        e.get("action_id")
        for b in message.get("blocks", [])
        if b.get("type") == "actions"
        for e in b["elements"]
    }


def test_an_undone_switch_cancels_the_cleanup_and_nothing_deletes_the_live_instance(
    bot_factory, aws, pg_url, monkeypatch
):
    bot = pitr_bot(bot_factory, aws, pg_url, monkeypatch)
    original = current_secret(aws)
    op, channel = restore_and_switch(bot)
    job_id = cleanup_schedule.job_id(op.id)
    bot.wait_until(lambda: bot.store.job(job_id), what="cleanup scheduled")
    bot.wait_until(lambda: "Cleanup scheduled" in thread_text(bot, channel), what="cleanup card")
    switch_card = card(bot, channel, Action.PITR_UNDO_SWITCH)
    assert Action.PITR_CLEANUP in actions_of(switch_card)

    # Undo the switch: its own checklist and approval.
    undo = start_undo(bot, channel)
    approve_next(bot, undo.id, 1)
    bot.wait_status(undo.id, "succeeded")
    assert current_secret(aws)["VersionId"] == original["VersionId"]

    # The scheduled deletion is cancelled, and both cards say so with no button left.
    assert bot.store.job(job_id).done_at is not None
    assert bot.store.step(undo.id, "cancel_cleanup").detail == (
        f"the scheduled deletion of {SOURCE} is cancelled"
    )
    cleanup_card = bot.wait_until(
        lambda: next(
            (m for m in bot.slack.messages(channel) if "Cleanup cancelled" in m["text"]), None
        ),
        what="cleanup card edited",
    )
    assert cleanup_card.get("edit_count", 0) >= 1 and actions_of(cleanup_card) == set()
    assert f"undone by operation {undo.id}" in json.dumps(cleanup_card["blocks"])
    switch_now = bot.wait_until(
        lambda: next(
            (
                m
                for m in bot.slack.messages(channel)
                if m["ts"] == switch_card["ts"] and "undone" in m["text"]
            ),
            None,
        ),
        what="switch card edited",
    )
    assert actions_of(switch_now) == set()

    # A stale client still showing the old switch card: its click deletes nothing.
    bot.signer.block_action(
        Action.PITR_CLEANUP, None, user="U_ALICE", channel=channel, message=switch_card
    )
    refusal = bot.wait_until(
        lambda: [r for r in bot.slack.responses() if "may be live again" in str(r)],
        what="refusal",
    )
    assert "is not deleted" in refusal[-1]["text"]
    # The job coming due (run now) starts nothing either.
    bot.services.scheduler.run_due_now(job_id)
    runbooks = [o.runbook for o in bot.store.operations(limit=20)]
    assert "pitr_cleanup" not in runbooks
    rows = aws.client("rds").describe_db_instances()["DBInstances"]
    assert SOURCE in {r["DBInstanceIdentifier"] for r in rows}
