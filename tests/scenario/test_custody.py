"""No environment held hostage, through signed HTTP: an operation whose requester is gone is
stopped by the idle timeout, or cancelled or taken over by an approver (audited, with the
reason); `/rollback status` says who holds the environment and since when."""

from __future__ import annotations

import time

import pytest

from bot.clock import shown_utc
from bot.errors import PermissionDenied
from bot.slack.ids import Action
from tests.scenario.test_approvals import waiting_for_approval
from tests.scenario.test_drill import complete_before_checklist, start_drill
from tests.scenario.test_resolve import prisma  # noqa: F401 - the fixture


def test_an_idle_operation_is_stopped_and_frees_its_environment(bot_factory):
    bot = bot_factory(top_extra="idle_timeout_minutes = 0.05")  # 3 s
    op, channel = waiting_for_approval(bot)
    stopped = bot.wait_status(op.id, "stopped", timeout=20)
    assert "nobody acted" in stopped.result and "staging is free again" in stopped.result
    assert bot.store.active_operation("staging") is None
    # Nothing destructive ran, the pending request no longer applies (ending an operation
    # supersedes it), and the channel was told.
    assert [s.status for s in bot.store.steps(op.id)][1] == "pending"
    bot.wait_until(
        lambda: [a.status for a in bot.store.approvals(op.id)] == ["superseded"],
        what="the pending request superseded",
    )
    bot.slack.wait_for("chat.postMessage", where=lambda c: "nobody acted" in str(c.args))
    # The environment is free: a new operation starts.
    again = start_drill(bot)
    assert again.id != op.id


def test_activity_keeps_an_operation_from_expiring(bot_factory):
    bot = bot_factory(top_extra="idle_timeout_minutes = 0.1")  # 6 s
    op = start_drill(bot)
    bot.wait_status(op.id, "waiting_checklist")
    # Someone works on it just before the timeout: it is checked again later, not stopped.
    bot.wait_until(lambda: bot.store.job(f"idle-timeout:{op.id}"), what="the idle check")
    time.sleep(4)
    bot.engine.tick_checklist(op.id, "before", {"backup"}, "U_ALICE")
    time.sleep(3)
    assert bot.store.operation(op.id).status == "waiting_checklist"
    bot.wait_status(op.id, "stopped", timeout=20)


def test_an_approver_takes_over_with_a_reason_and_a_third_person_approves(bot):
    op, channel = waiting_for_approval(bot)
    # Not an approver: refused, audited, nothing changes.
    bot.signer.slash(f'takeover {op.id} --reason "alice is offline"', user="U_ERIN")
    bot.wait_until(
        lambda: any(
            "Only an approver of staging" in r["text"] and "Ask <@U_ALICE> or" in r["text"]
            for r in bot.slack.responses()
        )
    )
    assert bot.store.operation(op.id).requester == "U_ALICE"
    # No reason: refused.
    bot.signer.slash(f"takeover {op.id}", user="U_BOB")
    bot.wait_until(lambda: any("Say why" in r["text"] for r in bot.slack.responses()))

    bot.signer.slash(f'takeover {op.id} --reason "alice went offline"', user="U_BOB")
    taken = bot.wait_until(
        lambda: [a for a in bot.store.audit(op.id) if a.event == "taken_over"], what="takeover"
    )
    assert bot.store.operation(op.id).requester == "U_BOB" and taken[0].actor == "U_BOB"
    assert taken[0].detail == {"from": "U_ALICE", "to": "U_BOB", "reason": "alice went offline"}
    # Alice's pending request no longer applies; a new one is Bob's, and Bob (the holder)
    # may not approve it: the two-person rule still holds.
    approvals = bot.wait_until(
        lambda: len(a := bot.store.approvals(op.id)) == 2 and a, what="a new request"
    )
    assert [a.status for a in approvals] == ["superseded", "pending"]
    assert approvals[1].requested_by == "U_BOB"
    approval_id = approvals[1].id
    with pytest.raises(PermissionDenied, match="cannot approve your own request"):
        bot.engine.decide_approval(approval_id, "U_BOB", True)
    bot.signer.slash(f"cancel {op.id}", user="U_ALICE")  # no longer hers to cancel
    bot.wait_until(
        lambda: any("Only the requester or an approver" in r["text"] for r in bot.slack.responses())
    )
    bot.engine.decide_approval(approval_id, "U_DAVE", True)
    bot.wait_status(op.id, "succeeded")
    # The thread said who took over and why.
    bot.slack.wait_for(
        "chat.postMessage",
        where=lambda c: "took over from <@U_ALICE>: alice went offline" in str(c.args),
    )


def test_an_approver_cancels_someone_elses_operation(bot):
    op = start_drill(bot)
    bot.wait_status(op.id, "waiting_checklist")
    bot.wait_until(lambda: bot.store.operation(op.id).status_ts, what="the status message")
    channel = bot.store.operation(op.id).incident_channel
    bot.signer.block_action(Action.CANCEL, op.id, user="U_CAROL", channel=channel)  # an approver
    cancelled = bot.wait_status(op.id, "cancelled")
    assert "Cancelled by <@U_CAROL>" in cancelled.result
    assert bot.store.active_operation("staging") is None


def test_a_stranger_cannot_cancel(bot):
    op = start_drill(bot)
    complete_before_checklist(bot, op.id)
    bot.wait_status(op.id, "waiting_approval")
    channel = bot.store.operation(op.id).incident_channel
    bot.signer.block_action(Action.CANCEL, op.id, user="U_ERIN", channel=channel)
    bot.wait_until(
        lambda: any("Only the requester or an approver" in r["text"] for r in bot.slack.responses())
    )
    assert bot.store.operation(op.id).status == "waiting_approval"


def test_status_says_who_holds_the_environment_and_since_when(bot_factory, prisma):  # noqa: F811
    bot = bot_factory(staging_extra=f'migrations_dir = "{prisma.path}"')
    op = start_drill(bot)
    bot.wait_status(op.id, "waiting_checklist")
    holder = bot.engine.holder("staging")
    assert holder.user == "U_ALICE" and holder.since == op.created_at
    bot.signer.slash(f'takeover {op.id} --reason "handing over shift"', user="U_DAVE")
    holder = bot.wait_until(  # the requester changes a moment before the audit record
        lambda: (h := bot.engine.holder("staging")).since != op.created_at and h,
        what="takeover",
    )
    assert holder.user == "U_DAVE"
    since = holder.since
    assert since > op.created_at
    bot.signer.slash("status staging", user="U_ERIN")
    text = bot.wait_until(
        lambda: [str(r) for r in bot.slack.responses() if "is held by" in str(r)],
        what="the status card",
    )[-1]
    assert f"staging is held by <@U_DAVE> since {shown_utc(since, 'minutes')}" in text
    assert op.id in text and "waiting checklist" in text
