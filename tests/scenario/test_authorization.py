"""Authorization gaps found around the two-person rule, each reproduced through signed
requests: someone else's checklist ticked or opened, any operation's incident report posted
into any channel, an approval decided after its operation was cancelled, and a click whose
value carries another operation's approval id."""

from __future__ import annotations

from bot.clock import utcnow
from bot.slack.ids import Action
from bot.store.records import StepStatus
from tests.scenario.test_approvals import last_reply, waiting_for_approval
from tests.scenario.test_drill import start_drill, submit_every_item


def checklist_prompt(bot, op):
    channel = bot.wait_until(lambda: bot.store.operation(op.id).incident_channel)
    bot.slack.wait_for(
        "chat.postMessage",
        where=lambda c: (
            c.response.get("channel") == channel
            and f"{Action.OPEN_CHECKLIST}_before" in str(c.args.get("blocks"))
        ),
    )
    return channel


def test_only_the_requester_opens_or_ticks_the_before_checklist(bot):
    op = start_drill(bot, env="development")  # no approvers: Bob has no part in it
    channel = checklist_prompt(bot, op)
    # Alice's own checklist modal (opened on her slash command's trigger) may land after the
    # prompt in the channel: wait for it, so that any later views.open would be Bob's.
    alices = bot.slack.wait_for(
        "views.open", where=lambda c: op.id in c.args["view"].get("private_metadata", "")
    )
    opened = len(bot.slack.calls_to("views.open"))
    bot.signer.block_action(f"{Action.OPEN_CHECKLIST}_before", None, user="U_BOB", channel=channel)
    assert "Only <@U_ALICE>" in last_reply(bot)["text"]
    bot.signer.slash(f"checklist {op.id}", user="U_BOB")
    assert "Only <@U_ALICE>" in last_reply(bot)["text"]
    assert len(bot.slack.calls_to("views.open")) == opened
    # Alice's own modal, submitted by Bob (the checklist's view id is no secret).
    view_id = alices[0].response["view"]["id"]
    submit_every_item(bot, view_id, user="U_BOB")
    assert not any(i.checked_by == "U_BOB" for i in bot.store.checklist(op.id, "before"))
    assert any(
        a.actor == "U_BOB" and "checklist of another requester" in a.message
        for a in bot.store.audit(op.id)
    )


def test_the_report_goes_to_the_incident_channel_and_only_for_the_operations_people(bot):
    op = start_drill(bot, env="development")
    channel = checklist_prompt(bot, op)
    bot.signer.slash(f"report {op.id}", user="U_BOB", channel="C_GEN")
    assert "Only the people of" in last_reply(bot)["text"]
    assert not [
        c for c in bot.slack.calls_to("chat.postMessage") if "Incident report" in str(c.args)
    ]
    bot.signer.slash(f"report {op.id}", user="U_ALICE", channel="C_GEN")
    posted = bot.slack.wait_for(
        "chat.postMessage", where=lambda c: "Incident report" in str(c.args.get("text"))
    )
    assert {c.response["channel"] for c in posted} == {channel}


def test_an_approval_of_a_cancelled_operation_cannot_be_granted(bot):
    op, channel = waiting_for_approval(bot)
    request = next(
        m for m in bot.slack.messages(channel) if "Approval needed" in str(m.get("text"))
    )
    bot.engine.cancel(op.id, "U_ALICE")
    bot.wait_status(op.id, "cancelled")
    approval = bot.store.approvals(op.id)[0]
    assert approval.status == "superseded"  # finish() superseded it
    # The request as the approver's client still shows it, buttons and all.
    bot.signer.block_action(Action.APPROVE, None, user="U_BOB", channel=channel, message=request)
    assert "already" in last_reply(bot)["text"]
    assert bot.store.approvals(op.id)[0].decided_by is None
    assert bot.store.operation(op.id).status == "cancelled"


def test_an_approval_for_a_step_the_operation_moved_past_decides_and_runs_nothing(bot):
    """The other "wrong step" case (the cancelled one is above): the operation is past the
    step this request was for. The store is put in that state directly (the step ended
    skipped, as the walker ends a step that does not apply); the click comes through the
    signed request as an approver's would, on the request message."""
    op, channel = waiting_for_approval(bot)
    request = next(
        m for m in bot.slack.messages(channel) if "Approval needed" in str(m.get("text"))
    )
    approval = bot.store.approvals(op.id)[0]
    bot.store.end_step(op.id, approval.step_id, StepStatus.SKIPPED, utcnow(), "moved past")
    bot.signer.block_action(Action.APPROVE, None, user="U_BOB", channel=channel, message=request)
    reply = last_reply(bot)["text"]
    assert "not for the step the operation is at; nothing was run" in reply
    assert "status message shows where it is" in reply  # and what to do next
    assert bot.store.approvals(op.id)[0].status == "pending"
    assert bot.store.approvals(op.id)[0].decided_by is None
    assert bot.store.step(op.id, approval.step_id).status == "skipped"  # not run


def test_a_click_carrying_another_operations_approval_id_decides_nothing(bot):
    staging, staging_channel = waiting_for_approval(bot, env="staging")
    production, _ = waiting_for_approval(bot, env="production")
    other = bot.store.approvals(production.id)[0].id
    bot.signer.block_action(Action.APPROVE, other, user="U_BOB", channel=staging_channel)
    assert "not on this approval's request message" in last_reply(bot)["text"]
    assert bot.store.approvals(production.id)[0].status == "pending"
    assert bot.store.approvals(staging.id)[0].status == "pending"
    refused = [a for a in bot.store.audit(production.id) if a.event == "approval_refused"]
    assert refused and refused[0].actor == "U_BOB"
