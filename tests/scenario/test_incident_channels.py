"""Incident channels cannot run out, and an approval request is never left where no one
sees it (reproduced: nine started-and-cancelled operations in a day used up
inc-<day>-rollback-drill-staging and -2 .. -9; the tenth waited for an approval that was
never posted)."""

from __future__ import annotations

import logging

from tests.scenario.test_drill import (
    CHANNEL_PER_DRILL,
    approval_message,
    complete_before_checklist,
    start_drill,
)


def test_ten_cancelled_operations_a_day_leave_the_next_its_own_channel(bot_factory):
    bot = bot_factory(tables_extra=CHANNEL_PER_DRILL)  # a channel per drill, not a thread
    channels = set()
    for _ in range(10):
        op = start_drill(bot)
        channel = bot.wait_until(lambda o=op: bot.store.operation(o.id).incident_channel)
        channels.add(channel)
        bot.engine.cancel(op.id, "U_ALICE")
        bot.wait_status(op.id, "cancelled")
    assert len(channels) == 10
    op = start_drill(bot)
    complete_before_checklist(bot, op.id)
    channel = approval_message(bot, op)
    assert channel not in channels
    name = next(
        c
        for c in bot.slack.calls_to("conversations.create")
        if c.response["channel"]["id"] == channel
    ).args["name"]
    assert name.endswith(op.id.rsplit("-", 1)[-1]) and "-rollback-drill-staging-" in name
    assert len(name) <= 80


def test_when_no_channel_can_be_made_the_approval_goes_to_the_notify_channel_loudly(
    bot_factory, caplog
):
    bot = bot_factory(tables_extra=CHANNEL_PER_DRILL)
    bot.slack.fail_next("conversations.create", error="restricted_action", times=5)
    with caplog.at_level(logging.ERROR, logger="bot.slack.incident"):
        op = start_drill(bot)
        complete_before_checklist(bot, op.id)
        channel = approval_message(bot, op)
    assert channel == bot.slack.channel("engineering")["id"]
    thread = " ".join(m["text"] for m in bot.slack.messages(channel))
    assert "Could not create an incident channel (restricted_action)" in thread
    assert any("could not create its incident channel" in r.getMessage() for r in caplog.records)
