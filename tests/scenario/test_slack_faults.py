"""Slack faults: 429 storms, 5xx and slow answers from Slack do not stop an
operation, and its final state still reaches Slack once Slack answers again."""

from __future__ import annotations

from bot.slack.ids import Action
from tests.scenario.test_approvals import waiting_for_approval


def final_status_text(bot, op_id, channel):
    status_ts = bot.store.operation(op_id).status_ts
    return next(m for m in bot.slack.messages(channel) if m["ts"] == status_ts)["text"]


def test_server_errors_and_timeouts_are_retried_and_the_final_state_is_delivered(bot_factory):
    bot = bot_factory(drill_seconds=2, drill_events=10)
    op, channel = waiting_for_approval(bot)
    bot.slack.fail_next("chat.update", status=503, times=3)
    bot.slack.fail_next("chat.postMessage", status=502, times=2)
    bot.slack.fail_next("chat.update", delay=1.5)  # slow, but answered
    bot.signer.block_action(Action.APPROVE, None, user="U_BOB", channel=channel)
    bot.wait_status(op.id, "succeeded", timeout=30)
    assert bot.services.incident.wait_idle(op.id, timeout=60)
    assert len(bot.slack.calls_to("chat.update", ok=False)) >= 3
    assert "Finished" in final_status_text(bot, op.id, channel)
    thread = bot.slack.thread(channel, bot.store.operation(op.id).status_ts)
    assert any("Finished. All steps succeeded." in m["text"] for m in thread)


def test_a_429_storm_is_waited_out_without_losing_the_final_state(bot_factory):
    bot = bot_factory(drill_seconds=3, drill_events=30)
    op, channel = waiting_for_approval(bot)
    # Far stricter than Slack: one edit every two seconds, no burst.
    bot.slack.set_rate_limit("chat.update", per_second=0.5, burst=1, per_channel=True)
    bot.signer.block_action(Action.APPROVE, None, user="U_BOB", channel=channel)
    bot.wait_status(op.id, "succeeded", timeout=30)
    assert bot.services.incident.wait_idle(op.id, timeout=60)
    assert bot.slack.rate_limited["chat.update"] >= 1
    assert "Finished" in final_status_text(bot, op.id, channel)


def test_another_operation_is_not_stalled_by_one_operations_429s(bot_factory):
    from tests.scenario.test_drill import CHANNEL_PER_DRILL

    # Two channels (drills default to one thread each in #engineering, one channel's limits).
    bot = bot_factory(drill_seconds=1, drill_events=5, tables_extra=CHANNEL_PER_DRILL)
    op, channel = waiting_for_approval(bot, env="staging")
    bot.slack.set_rate_limit("chat.update", per_second=0.2, burst=1, per_channel=True)
    bot.signer.block_action(Action.APPROVE, None, user="U_BOB", channel=channel)
    # Meanwhile a drill in production (its own channel) runs to the end.
    other, other_channel = waiting_for_approval(bot, env="production")
    bot.signer.block_action(Action.APPROVE, None, user="U_BOB", channel=other_channel)
    bot.wait_status(other.id, "succeeded", timeout=30)
    bot.wait_status(op.id, "succeeded", timeout=30)
