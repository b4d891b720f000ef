"""The two-person rule, enforced on the server, through signed clicks."""

from __future__ import annotations

import threading

from bot.slack.ids import Action
from tests.scenario.test_drill import approval_message, complete_before_checklist, start_drill


def waiting_for_approval(bot, env="staging", user="U_ALICE"):
    op = start_drill(bot, user=user, env=env)
    complete_before_checklist(bot, op.id, user=user)
    channel = approval_message(bot, op)
    bot.wait_status(op.id, "waiting_approval")
    return op, channel


def last_reply(bot):
    """The newest ephemeral reply to a click, not the "drill started" reply to the slash
    command (which may arrive late under load)."""
    return bot.wait_until(
        lambda: [r for r in bot.slack.responses() if "started on" not in r["text"]],
        what="an ephemeral reply",
    )[-1]


def test_non_approver_click_is_refused_and_audited(bot):
    op, channel = waiting_for_approval(bot, env="production")
    bot.signer.block_action(Action.APPROVE, None, user="U_CAROL", channel=channel)
    reply = last_reply(bot)
    assert "not an approver for production" in reply["text"]
    assert "@db-approvers" in reply["text"]
    assert bot.store.operation(op.id).status == "waiting_approval"
    refused = [a for a in bot.store.audit(op.id) if a.event == "approval_refused"]
    assert refused and refused[0].actor == "U_CAROL"
    assert all(a.status == "pending" for a in bot.store.approvals(op.id))


def test_approver_listed_by_user_id_may_approve(bot):
    op, channel = waiting_for_approval(bot, env="staging")
    bot.signer.block_action(Action.APPROVE, None, user="U_CAROL", channel=channel)
    bot.wait_status(op.id, "succeeded")
    assert bot.store.approvals(op.id)[0].decided_by == "U_CAROL"


def test_requester_outside_requesters_is_refused(bot):
    response = bot.signer.slash("drill --env production", user="U_DAVE")
    assert response.status == 200
    text = last_reply(bot)["text"]
    assert "not allowed to start" in text
    assert bot.store.active_operation("production") is None
    assert any(a.event == "request_refused" for a in bot.store.audit())


def test_expired_approval_is_refused_and_can_be_requested_again(bot_factory):
    bot = bot_factory(approval_expiry_minutes=0.08)  # 4.8 s
    op, channel = waiting_for_approval(bot)
    # The message as the approver's client still shows it, buttons and all.
    posted = bot.slack.wait_for(
        "chat.postMessage", where=lambda c: "Approval needed" in str(c.args.get("text"))
    )[0]
    stale = {**posted.response["message"], "blocks": posted.args["blocks"]}
    bot.wait_until(
        lambda: any(a.event == "approval_expired" for a in bot.store.audit(op.id)),
        what="approval expiry",
    )
    bot.signer.block_action(Action.APPROVE, None, user="U_BOB", channel=channel, message=stale)
    reply = last_reply(bot)
    assert "already expired" in reply["text"] or "has expired" in reply["text"]
    assert bot.store.steps(op.id)[1].status == "pending"  # the destructive step never ran

    # The expired request message was updated in place and offers to ask again.
    bot.slack.wait_for("chat.update", where=lambda c: "Expired" in str(c.args.get("blocks")))
    bot.signer.block_action(Action.REQUEST_AGAIN, None, user="U_ALICE", channel=channel)
    bot.wait_until(lambda: len(bot.store.approvals(op.id)) == 2, what="a second request")
    assert bot.store.approvals(op.id)[1].status == "pending"


def test_twenty_concurrent_approve_clicks_run_the_step_exactly_once(bot):
    op, channel = waiting_for_approval(bot)
    message = next(
        m for m in reversed(bot.slack.messages(channel)) if "Approval needed" in m["text"]
    )
    results = []

    def click():
        results.append(
            bot.signer.block_action(
                Action.APPROVE, None, user="U_BOB", channel=channel, message=message
            )
        )

    threads = [threading.Thread(target=click) for _ in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert all(r.status == 200 for r in results)
    bot.wait_status(op.id, "succeeded")

    audit = bot.store.audit(op.id)
    runs = [
        a for a in audit if a.event == "step_started" and a.step_id == "rehearse_destructive_step"
    ]
    assert len(runs) == 1
    assert len([a for a in audit if a.event == "approval_granted"]) == 1
    assert bot.store.step(op.id, "rehearse_destructive_step").attempts == 1
    replies = bot.wait_until(
        lambda: len(bot.slack.responses()) >= 20 and bot.slack.responses(), what="20 replies"
    )
    assert sum("You approved" in r["text"] for r in replies) == 1
    assert sum("already approved" in r["text"] for r in replies) == 19


def test_deny_stops_the_operation_and_frees_the_environment(bot):
    op, channel = waiting_for_approval(bot)
    bot.signer.block_action(Action.DENY, None, user="U_BOB", channel=channel)
    bot.wait_status(op.id, "cancelled")
    assert bot.store.step(op.id, "rehearse_destructive_step").status == "pending"
    assert bot.store.active_operation("staging") is None
    assert any(a.event == "approval_denied" for a in bot.store.audit(op.id))


def test_a_changed_plan_needs_a_new_approval(bot):
    op, channel = waiting_for_approval(bot)
    first = bot.store.approvals(op.id)[0]
    # The plan of the drill's destructive step names the operation; changing the plan text
    # the approval was bound to is what a changed plan looks like to the engine.
    with bot.store.transaction() as db:
        db.update("approvals", first.id, {"plan_hash": "0" * 64})
    bot.signer.block_action(
        Action.APPROVE,
        None,
        user="U_BOB",
        channel=channel,
        message=next(m for m in bot.slack.messages(channel) if "Approval needed" in m["text"]),
    )
    reply = last_reply(bot)
    assert "plan changed" in reply["text"]
    bot.wait_until(lambda: len(bot.store.approvals(op.id)) == 2, what="a new request")
    statuses = [a.status for a in bot.store.approvals(op.id)]
    assert statuses == ["superseded", "pending"]
    assert bot.store.step(op.id, "rehearse_destructive_step").status == "pending"


def test_second_drill_on_the_same_environment_is_refused(bot):
    op = start_drill(bot)
    response = bot.signer.slash("drill --env staging", user="U_BOB")
    text = bot.wait_until(
        lambda: [r for r in bot.slack.responses() if "already running" in r["text"]], what="refusal"
    )[0]["text"]
    assert response.status == 200
    assert op.id in text and "<@U_ALICE>" in text
    # What to do when it is stuck, with commands that can be copied as they are.
    assert f"`/rollback cancel {op.id}`" in text
    assert f"`/rollback takeover {op.id} --reason REASON`" in text
    assert len(bot.store.operations(limit=10)) == 1
    # Another environment is free.
    assert bot.signer.slash("drill --env development", user="U_BOB").status == 200
    bot.wait_until(lambda: bot.store.active_operation("development"), what="second env")
