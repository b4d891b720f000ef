"""Approvers are reached, through the rig: invited to the (private) incident channel, a DM
each with the request and working Approve / Deny buttons (the engine's checks, the plan's
hash), the #engineering notice saying whose approval is needed, every copy updated on the
decision, and reminders by DM from the scheduler while it is pending."""

from __future__ import annotations

import time

from bot.slack.ids import Action
from tests.scenario.test_drill import (
    CHANNEL_PER_DRILL,
    approval_message,
    complete_before_checklist,
    start_drill,
)

STAGING_APPROVERS = ["U_BOB", "U_CAROL", "U_DAVE"]  # @db-approvers (bob, dave) and carol


def dm_copies(bot, approval_id: str) -> dict[str, str]:
    """approver -> their DM channel holding the request."""
    copies = bot.wait_until(
        lambda: len(c := bot.store.approval_copies(approval_id)) == len(STAGING_APPROVERS) and c,
        what="a DM copy for every approver",
    )
    return {bot.slack.channel(channel)["user"]: channel for channel, _ in copies}


def waiting(bot, **kwargs):
    op = start_drill(bot, **kwargs)
    complete_before_checklist(bot, op.id)
    channel = approval_message(bot, op)
    bot.wait_status(op.id, "waiting_approval")
    return op, channel, bot.store.approvals(op.id)[0]


def test_approvers_are_invited_told_and_approve_from_their_dm(bot_factory):
    bot = bot_factory(tables_extra=CHANNEL_PER_DRILL)
    op, channel, approval = waiting(bot)
    # Invited into the incident channel (private: staging is protected); the requester was
    # invited when it was made.
    assert bot.slack.channel(channel)["is_private"] is True
    for user in STAGING_APPROVERS:
        bot.slack.wait_for(
            "conversations.invite",
            where=lambda c, u=user: c.args["users"] == u and c.args["channel"] == channel,
        )
    assert {"U_ALICE", *STAGING_APPROVERS} <= bot.slack.members(channel)
    # A DM each (never the requester), with the plan and both buttons.
    dms = dm_copies(bot, approval.id)
    assert sorted(dms) == STAGING_APPROVERS
    for dm in dms.values():
        request = bot.slack.messages(dm)[0]
        assert "Approval needed" in request["text"] and "Approve" in str(request["blocks"])
        assert approval.plan_hash[:12] in str(request["blocks"])
    # The #engineering notice says whose approval is needed.
    notice = bot.wait_until(
        lambda: [m for m in bot.slack.messages("C_ENG") if "Approval needed from" in m["text"]],
        what="the notice saying approval is needed",
    )[0]
    assert "<!subteam^S_DBA>" in notice["text"] and "<@U_CAROL>" in notice["text"]

    # Dave approves from his DM: the same engine decision, and the rest runs.
    bot.signer.block_action(Action.APPROVE, None, user="U_DAVE", channel=dms["U_DAVE"])
    bot.wait_status(op.id, "succeeded")
    assert bot.store.approval(approval.id).decided_by == "U_DAVE"
    assert bot.services.incident.wait_idle(op.id)
    # Every copy now says who approved, and has no buttons left to click.
    for where in [channel, *dms.values()]:
        copy = next(m for m in bot.slack.messages(where) if "Approval needed" in m["text"])
        assert "Approved" in str(copy["blocks"]) and "<@U_DAVE>" in str(copy["blocks"])
        assert Action.APPROVE not in str(copy["blocks"])
    notice = next(m for m in bot.slack.messages("C_ENG") if f"`{op.id}`" in m["text"])
    assert "Approval needed from" not in notice["text"]


def test_a_click_from_a_dm_gets_the_same_checks(bot):
    op, channel, approval = waiting(bot)
    dms = dm_copies(bot, approval.id)
    # Bob denies from his DM; Carol's copy, still showing buttons on her screen, is refused.
    stale = bot.slack.messages(dms["U_CAROL"])[0]
    bot.signer.block_action(Action.DENY, None, user="U_BOB", channel=dms["U_BOB"])
    bot.wait_status(op.id, "cancelled")
    bot.signer.block_action(
        Action.APPROVE, None, user="U_CAROL", channel=dms["U_CAROL"], message=stale
    )
    bot.wait_until(
        lambda: any("already denied by <@U_BOB>" in r["text"] for r in bot.slack.responses()),
        what="the refusal",
    )
    assert bot.store.approval(approval.id).decided_by == "U_BOB"
    assert bot.store.steps(op.id)[1].status == "pending"  # the destructive step never ran
    # Every copy says who denied it and has no buttons left, the DMs as the channel's.
    assert bot.services.incident.wait_idle(op.id)
    for where in [channel, *dms.values()]:
        copy = next(m for m in bot.slack.messages(where) if "Approval needed" in m["text"])
        assert "Denied" in str(copy["blocks"]) and "<@U_BOB>" in str(copy["blocks"])
        assert Action.APPROVE not in str(copy["blocks"])
    refused = [a for a in bot.store.audit(op.id) if a.event == "approval_granted"]
    assert refused == []


def test_approvers_are_reminded_by_dm_until_someone_decides(bot_factory):
    bot = bot_factory(top_extra="approval_reminder_minutes = 0.04")  # 2.4 s
    op, channel, approval = waiting(bot)
    dms = dm_copies(bot, approval.id)

    def reminders(dm):
        return [m for m in bot.slack.messages(dm) if m["text"].startswith(":bell: Reminder")]

    bot.wait_until(lambda: all(len(reminders(dm)) >= 2 for dm in dms.values()), timeout=20)
    assert f"`{op.id}`" in reminders(dms["U_BOB"])[0]["text"]
    reminded = [a for a in bot.store.audit(op.id) if a.event == "approval_reminder"]
    assert len(reminded) >= 2 and reminded[0].actor == "rollback-bot"
    bot.signer.block_action(Action.APPROVE, None, user="U_BOB", channel=dms["U_BOB"])
    bot.wait_status(op.id, "succeeded")
    assert bot.services.incident.wait_idle(op.id)
    count = len(reminders(dms["U_DAVE"]))
    time.sleep(3)  # a reminder due now finds the request decided and says nothing
    assert len(reminders(dms["U_DAVE"])) == count


def test_a_dm_copy_decides_only_its_own_approval(bot):
    """A decision counts from the request's message or a recorded copy of it (an approver's
    DM), never from a copy of another approval: the button's value alone decides nothing."""
    staging, _, staging_approval = waiting(bot)
    production, _, production_approval = waiting(bot, env="production")
    dms = dm_copies(bot, staging_approval.id)
    staging_copy = bot.slack.messages(dms["U_BOB"])[0]
    # Bob's DM copy of the staging request, carrying production's approval id.
    bot.signer.block_action(
        Action.APPROVE,
        production_approval.id,
        user="U_BOB",
        channel=dms["U_BOB"],
        message=staging_copy,
    )
    bot.wait_until(
        lambda: any(
            "not on this approval's request message" in r["text"] for r in bot.slack.responses()
        ),
        what="the refusal",
    )
    assert bot.store.approval(production_approval.id).status == "pending"
    refused = [a for a in bot.store.audit(production.id) if a.event == "approval_refused"]
    assert refused and refused[0].actor == "U_BOB"
    # The same copy decides its own approval.
    bot.signer.block_action(
        Action.APPROVE, None, user="U_BOB", channel=dms["U_BOB"], message=staging_copy
    )
    bot.wait_status(staging.id, "succeeded")
    assert bot.store.approval(staging_approval.id).decided_by == "U_BOB"


def test_an_expired_request_leaves_approvers_no_button_they_cannot_use(bot_factory):
    bot = bot_factory(approval_expiry_minutes=0.08)  # 4.8 s
    op, channel, approval = waiting(bot)
    dms = dm_copies(bot, approval.id)
    bot.wait_until(
        lambda: bot.store.approval(approval.id).status == "expired", timeout=20, what="expiry"
    )

    def request_in(where):
        return next(m for m in bot.slack.messages(where) if "Approval needed" in m["text"])

    # Each approver's copy says it expired and who can ask again: no button at all.
    for dm in dms.values():
        copy = bot.wait_until(
            lambda d=dm: "Expired" in str(request_in(d)["blocks"]) and request_in(d),
            what="the DM copy updated",
        )
        assert Action.REQUEST_AGAIN not in str(copy["blocks"])
        assert Action.APPROVE not in str(copy["blocks"])
        assert "Only <@U_ALICE> can request it again" in str(copy["blocks"])
    # The incident channel's copy keeps the requester's button, and it works.
    bot.wait_until(
        lambda: Action.REQUEST_AGAIN in str(request_in(channel)["blocks"]),
        what="the channel copy's button",
    )
    bot.signer.block_action(
        Action.REQUEST_AGAIN, None, user="U_ALICE", channel=channel, message=request_in(channel)
    )
    again = bot.wait_until(
        lambda: [a for a in bot.store.approvals(op.id) if a.status == "pending"],
        what="a new request",
    )[0]
    assert sorted(dm_copies(bot, again.id)) == STAGING_APPROVERS
