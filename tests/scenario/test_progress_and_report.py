"""Live progress against the rate-limiting fake Slack, and the incident report."""

from __future__ import annotations

from slack_sdk.models.blocks import Block

from bot.slack.ids import Action
from tests.scenario.test_approvals import waiting_for_approval


def test_300_progress_events_cause_no_429_and_the_final_message_says_finished(bot_factory):
    bot = bot_factory(drill_seconds=3, drill_events=300)
    op, channel = waiting_for_approval(bot)
    bot.signer.block_action(Action.APPROVE, None, user="U_BOB", channel=channel)
    bot.wait_status(op.id, "succeeded", timeout=30)
    assert bot.services.incident.wait_idle(op.id)

    assert sum(bot.slack.rate_limited.values()) == 0, bot.slack.rate_limited
    status_ts = bot.store.operation(op.id).status_ts
    edits = [c for c in bot.slack.calls_to("chat.update") if c.args["ts"] == status_ts]
    # Coalesced: about one edit per second over a ~3 s step, not 300.
    assert 2 <= len(edits) <= 15, len(edits)
    gaps = [b.at - a.at for a, b in zip(edits, edits[1:], strict=False)]
    assert min(gaps) >= 0.9, gaps
    final = next(m for m in bot.slack.messages(channel) if m["ts"] == status_ts)
    assert "Finished" in final["text"]
    assert ":white_check_mark: Simulated long-running step" in str(final["blocks"])
    # Progress ticks are not audit events; the step's start and end are.
    audit = [a.event for a in bot.store.audit(op.id)]
    assert "progress" not in audit
    for block in final["blocks"]:
        Block.parse(block).validate_json()


def test_status_message_shows_a_progress_bar_while_running(bot_factory):
    bot = bot_factory(drill_seconds=4, drill_events=8)
    op, channel = waiting_for_approval(bot)
    bot.signer.block_action(Action.APPROVE, None, user="U_BOB", channel=channel)
    status_ts = bot.wait_until(lambda: bot.store.operation(op.id).status_ts)
    bot.slack.wait_for(
        "chat.update",
        where=lambda c: c.args["ts"] == status_ts and "%" in str(c.args.get("blocks")),
        timeout=20,
    )
    bot.wait_status(op.id, "succeeded", timeout=30)


def test_report_contains_every_audit_event(bot):
    op, channel = waiting_for_approval(bot)
    bot.signer.block_action(Action.APPROVE, None, user="U_ALICE", channel=channel)  # refused
    bot.signer.block_action(Action.APPROVE, None, user="U_BOB", channel=channel)
    bot.wait_status(op.id, "succeeded")
    assert bot.services.incident.wait_idle(op.id)

    response = bot.signer.slash(f"report {op.id}", user="U_CAROL", channel="C_GEN")
    assert response.status == 200
    posted = bot.slack.wait_for(
        "chat.postMessage", where=lambda c: "Incident report" in str(c.args.get("text"))
    )
    report = "".join(b["text"] for c in posted for b in c.args["blocks"])
    assert report.startswith(f"# Incident report: Rollback drill on staging (`{op.id}`)")
    audit = bot.store.audit(op.id)
    assert len(audit) >= 15
    # A list, not a table: Slack's markdown block renders no tables.
    assert "| time |" not in report
    for event in audit:
        assert f"- `{event.at[:10]} {event.at[11:19]}` " in report
        assert f" {event.event.replace('_', ' ')}: " in report
    assert "**approved** by <@U_BOB>" in report
    assert "- [x] Backup current state" in report
    assert "Notify team - Alert via Slack #engineering (rollback-bot" in report
    assert "DRILL (no database is touched)" in report  # the exact approved plan


def test_report_of_unknown_operation_is_a_clear_error(bot):
    bot.signer.slash("report op-20990101-ffffff")
    reply = bot.wait_until(lambda: bot.slack.responses(), what="reply")[-1]
    assert "There is no operation `op-20990101-ffffff`" in reply["text"]
    assert "/rollback history" in reply["text"]


def test_history_lists_operations_with_people(bot):
    op, channel = waiting_for_approval(bot)
    bot.signer.block_action(Action.APPROVE, None, user="U_BOB", channel=channel)
    bot.wait_status(op.id, "succeeded")
    body = bot.signer.slash("history").json()
    text = str(body["blocks"])
    assert op.id in text and "drill" in text and "staging" in text
    assert "<@U_ALICE>, approved by <@U_BOB>" in text


def test_long_step_detail_is_streamed_in_the_thread_with_task_updates(bot_factory):
    bot = bot_factory(drill_seconds=3, drill_events=30)
    op, channel = waiting_for_approval(bot)
    bot.signer.block_action(Action.APPROVE, None, user="U_BOB", channel=channel)
    bot.wait_status(op.id, "succeeded", timeout=30)
    assert bot.services.incident.wait_idle(op.id)

    start = bot.slack.calls_to("chat.startStream")
    assert len(start) == 1, [(c.args["chunks"], c.at) for c in start]
    assert start[0].args["thread_ts"] == bot.store.operation(op.id).status_ts
    assert start[0].args["recipient_user_id"] == "U_ALICE"
    assert start[0].args["chunks"][0]["type"] == "task_update"
    stop = bot.slack.calls_to("chat.stopStream")
    assert [c.args["chunks"][0]["status"] for c in stop] == ["complete"]
    assert stop[0].args["chunks"][0]["id"] == "slow_step"


def test_a_stale_stream_falls_back_to_the_status_message(bot_factory, fake_slack):
    # Two status edits must land while the step runs (the first starts the stream, the second
    # appends): edits every 0.25 s over a 4 s step, so that a feed thread held up by the
    # approval's follow-ups under load (CI once saw only one edit in a 3 s step at 1 s per edit)
    # still gets there.
    bot = bot_factory(drill_seconds=4, drill_events=40, progress_edit_interval_seconds=0.25)
    fake_slack.fail_next("chat.appendStream", error="message_not_in_streaming_state", times=50)
    op, channel = waiting_for_approval(bot)
    bot.signer.block_action(Action.APPROVE, None, user="U_BOB", channel=channel)
    bot.wait_status(op.id, "succeeded", timeout=30)
    assert bot.services.incident.wait_idle(op.id)

    # One failed append, then no more stream calls for that step; the edits carried on.
    assert len(bot.slack.calls_to("chat.appendStream", ok=False)) == 1
    assert not bot.slack.calls_to("chat.stopStream", ok=None)
    status_ts = bot.store.operation(op.id).status_ts
    final = next(m for m in bot.slack.messages(channel) if m["ts"] == status_ts)
    assert "Finished" in final["text"]
