"""Incident channels that stay tidy, through the rig: private for protected environments,
one channel reused per environment, drills in a thread of #engineering, channels the bot
made archived after the operation with the report posted first, and `/rollback report`
posting where the operation's story is."""

from __future__ import annotations

from bot.slack.ids import Action
from tests.scenario.test_drill import CHANNEL_PER_DRILL, complete_before_checklist, start_drill

ARCHIVE_SOON = "[incident_channels]\ndrills_in_thread = false\narchive_after_minutes = 0.02"


def cancel(bot, op):
    bot.wait_until(lambda: bot.store.operation(op.id).status_ts, what="the status message")
    channel = bot.store.operation(op.id).incident_channel
    bot.signer.block_action(Action.CANCEL, op.id, user=op.requester, channel=channel)
    bot.wait_status(op.id, "cancelled")
    assert bot.services.incident.wait_idle(op.id)
    return channel


def test_protected_environments_get_private_channels(bot_factory):
    bot = bot_factory(tables_extra=CHANNEL_PER_DRILL)
    staging = start_drill(bot, env="staging")
    cancel(bot, staging)
    development = start_drill(bot, env="development")
    cancel(bot, development)
    created = {c.args["name"]: c for c in bot.slack.calls_to("conversations.create")}
    private = {name: bot.slack.channel(name)["is_private"] for name in created}
    assert private == {
        bot.slack.channel(bot.store.operation(staging.id).incident_channel)["name"]: True,
        bot.slack.channel(bot.store.operation(development.id).incident_channel)["name"]: False,
    }


def test_a_drill_runs_in_a_thread_of_the_notify_channel(bot):
    op = start_drill(bot)
    complete_before_checklist(bot, op.id)
    bot.wait_status(op.id, "waiting_approval")
    op = bot.store.operation(op.id)
    assert op.incident_channel == "C_ENG" and op.notify_ts == op.status_ts
    assert bot.slack.calls_to("conversations.create", ok=None) == []
    # Everything is in the thread, the approval request included; approvers get DMs.
    thread = bot.wait_until(
        lambda: [
            m
            for m in bot.slack.thread("C_ENG", op.status_ts)
            if "Approval needed" in m["text"] and m["ts"] != op.status_ts
        ],
        what="the request in the thread",
    )
    assert thread[0]["thread_ts"] == op.status_ts
    top_level = [m for m in bot.slack.messages("C_ENG") if m.get("thread_ts") in (None, m["ts"])]
    assert [m["ts"] for m in top_level] == [op.status_ts]
    bot.signer.block_action(Action.APPROVE, None, user="U_BOB", channel="C_ENG")
    bot.wait_status(op.id, "succeeded")


def test_one_channel_is_reused_per_environment_and_not_archived(bot_factory):
    bot = bot_factory(staging_extra="reuse_incident_channel = true", tables_extra=ARCHIVE_SOON)
    first = start_drill(bot)
    channel = cancel(bot, first)
    second = start_drill(bot, user="U_BOB")
    assert cancel(bot, second) == channel
    assert [c.args["name"] for c in bot.slack.calls_to("conversations.create")] == [
        "rollback-staging"
    ]
    assert {"U_ALICE", "U_BOB"} <= bot.slack.members(channel)
    assert not any(j.kind == "archive_channel" for j in bot.store.pending_jobs())
    assert bot.slack.channel(channel)["is_archived"] is False


def test_a_channel_made_for_one_operation_gets_its_report_then_is_archived(bot_factory):
    bot = bot_factory(tables_extra=ARCHIVE_SOON)
    op = start_drill(bot)
    channel = cancel(bot, op)
    bot.wait_until(lambda: bot.slack.channel(channel)["is_archived"], what="the archive")
    messages = bot.slack.messages(channel)
    report = [m for m in messages if m["text"] == f"Incident report {op.id}"]
    assert report and report[-1]["ts"] == messages[-1]["ts"]  # the last word before archiving
    archived = bot.slack.wait_for("conversations.archive")[0]
    assert archived.args["channel"] == channel

    # /rollback report now: the channel is archived, so the notify channel's thread; the
    # caller is told where.
    bot.signer.slash(f"report {op.id}", channel="C_GEN")
    reply = bot.wait_until(
        lambda: [r for r in bot.slack.responses() if "Posted the incident report" in r["text"]],
        what="where the report went",
    )[-1]
    notice_ts = bot.store.operation(op.id).notify_ts
    assert "its thread in <#C_ENG>" in reply["text"] and "https://" in reply["text"]
    assert any(
        m["text"] == f"Incident report {op.id}" for m in bot.slack.thread("C_ENG", notice_ts)
    )
    assert not [m for m in bot.slack.messages("C_GEN") if "Incident report" in m["text"]]


def test_report_posts_in_the_operations_own_channel(bot_factory):
    bot = bot_factory(tables_extra=CHANNEL_PER_DRILL)
    op = start_drill(bot)
    channel = cancel(bot, op)
    bot.signer.slash(f"report {op.id}", channel="C_GEN")
    reply = bot.wait_until(
        lambda: [r for r in bot.slack.responses() if "Posted the incident report" in r["text"]],
        what="where the report went",
    )[-1]
    assert f"in <#{channel}>" in reply["text"]
    posted = [m for m in bot.slack.messages(channel) if m["text"] == f"Incident report {op.id}"]
    assert posted and posted[0].get("thread_ts") is None
    assert "## " in str(posted[0]["blocks"]) or "Timeline" in str(posted[0]["blocks"])
    assert not [m for m in bot.slack.messages("C_GEN") if "Incident report" in m["text"]]
