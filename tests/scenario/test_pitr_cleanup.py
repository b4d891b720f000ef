"""PITR cleanup after an undo (issue 15's first reproduction): restore, switch traffic
(approved), "Undo switch" (approved). The undo cancels the scheduled deletion, edits the
cleanup card and the switch card so neither offers a deletion, and a stale "Delete old
instance" click or the job coming due deletes nothing: the old instance is live again.
"""

from __future__ import annotations

import json

from bot.incident_report import incident_report
from bot.runbooks.pitr import cleanup_schedule
from bot.sandbox import aws as sandbox_aws
from bot.slack.ids import Action
from tests.scenario import test_pitr_recovery as recovery
from tests.scenario.test_pitr import (
    RDS_ENV,
    SOURCE,
    approve_next,
    current_secret,
    pitr_bot,
    start_undo,
)
from tests.scenario.test_pitr_recovery import rds_bot, run_cleanup_checklist, start_restore
from tests.unit.aws.source_instance import put_connections

# the restored database's fixtures, shared with test_pitr_recovery
restored_server, restored_pg = recovery.restored_server, recovery.restored_pg


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


def test_a_recovery_whose_reapply_is_denied_ends_succeeded_with_steps_declined(
    bot_factory, aws, pg_url, restored_pg, monkeypatch, tmp_path
):
    """Issue 15, reproduction 6: the restore and the switch happened, the optional re-apply
    was denied: not "Cancelled". History and the report list both approvers."""
    _, bot = rds_bot(bot_factory, aws, pg_url, restored_pg, monkeypatch, tmp_path)
    op, _ = start_restore(bot)
    channel = approve_next(bot, op.id, 1)
    approve_next(bot, op.id, 2, approver="U_DAVE")
    bot.slack.wait_for(
        "chat.postMessage",
        where=lambda c: c.args.get("channel") == channel and f"{Action.DECIDE}_safe" in str(c.args),
    )
    bot.signer.block_action(f"{Action.DECIDE}_safe", None, user="U_ALICE", channel=channel)
    bot.wait_until(lambda: len(bot.store.approvals(op.id)) == 3, what="re-apply approval")
    bot.slack.wait_for(
        "chat.postMessage",
        count=3,
        where=lambda c: (
            "Approval needed" in str(c.args.get("text")) and c.args.get("channel") == channel
        ),
    )
    bot.signer.block_action(Action.DENY, None, user="U_BOB", channel=channel)

    bot.wait_status(op.id, "succeeded_with_steps_declined")
    done = bot.store.operation(op.id)
    assert done.result == (
        "Restore to a new RDS instance: done; Switch traffic (Secrets Manager): done;"
        " Re-apply safe migrations: deploy: declined."
    )
    assert bot.store.step(op.id, "reapply_migrations").status == "declined"
    # The cleanup of a recovery that switched is scheduled all the same.
    assert bot.store.job(cleanup_schedule.job_id(op.id)) is not None

    history = bot.signer.slash("history", user="U_ALICE").json()
    line = next(b["text"]["text"] for b in history["blocks"] if op.id in json.dumps(b))
    assert "Finished, with steps declined" in line
    assert "approved by <@U_BOB>, <@U_DAVE>" in line and "declined" in line
    # App Home too: every approver of every step, for anyone who opens it.
    bot.signer.event({"type": "app_home_opened", "user": "U_CAROL", "tab": "home"})
    home = bot.slack.wait_for("views.publish")[-1].args["view"]
    line = next(b["text"]["text"] for b in home["blocks"] if op.id in json.dumps(b))
    assert "Finished, with steps declined" in line
    assert "<@U_ALICE>, approved by <@U_BOB>, <@U_DAVE>" in line
    text = incident_report(bot.store, op.id)
    assert "**Approved by:** <@U_BOB> (restore); <@U_DAVE> (switch_traffic)" in text


def test_the_cleanup_refuses_an_old_instance_reached_by_another_name_or_a_proxy(
    bot_factory, aws, pg_url, monkeypatch
):
    """The switch record is intact, the config names the new instance and CloudWatch shows
    no connection, yet the name the secret now uses resolves to the old instance's address
    (a CNAME-like alias) and an RDS Proxy still routes to it: the cleanup refuses, saying
    both, and deletes nothing. A substring of the URL saw neither."""
    bot = pitr_bot(bot_factory, aws, pg_url, monkeypatch)
    op, channel = restore_and_switch(bot)
    target = op.params["target"]
    bot.stop()
    bot = bot_factory(tables_extra=RDS_ENV.replace(f'"{SOURCE}"', f'"{target}"'))
    put_connections(aws, SOURCE, 0, 0, 0)
    rds = aws.client("rds")
    old = rds.describe_db_instances(DBInstanceIdentifier=SOURCE)["DBInstances"][0]
    new = rds.describe_db_instances(DBInstanceIdentifier=target)["DBInstances"][0]
    (old_address,) = sandbox_aws.resolve(old["Endpoint"]["Address"], 5432)
    monkeypatch.setitem(sandbox_aws.HOSTS, new["Endpoint"]["Address"], old_address)
    subnets = rds.describe_db_subnet_groups()["DBSubnetGroups"][0]["Subnets"]
    rds.create_db_proxy(
        DBProxyName="skillancer-proxy",
        EngineFamily="POSTGRESQL",
        Auth=[{"AuthScheme": "SECRETS", "SecretArn": "arn:aws:secretsmanager:x"}],
        RoleArn="arn:aws:iam::123456789012:role/proxy",
        VpcSubnetIds=[s["SubnetIdentifier"] for s in subnets],
    )
    rds.register_db_proxy_targets(DBProxyName="skillancer-proxy", DBInstanceIdentifiers=[SOURCE])

    bot.signer.block_action(Action.PITR_CLEANUP, None, user="U_ALICE", channel=channel)
    cleanup = bot.wait_until(lambda: bot.store.active_operation("rds"), what="cleanup op")
    assert cleanup.runbook == "pitr_cleanup"
    run_cleanup_checklist(bot, cleanup)
    bot.wait_status(cleanup.id, "failed")
    error = bot.store.step(cleanup.id, "check_old_instance").error
    assert f"resolves to {old_address}, the address of `{SOURCE}`'s endpoint" in error
    assert "RDS Proxy `skillancer-proxy`" in error and f"routes to `{SOURCE}`" in error
    assert "rds_instance_id" not in error and "DatabaseConnections" not in error
    assert not bot.store.approvals(cleanup.id)  # refused before any approval was asked
    rows = aws.client("rds").describe_db_instances()["DBInstances"]
    assert SOURCE in {r["DBInstanceIdentifier"] for r in rows}


def test_only_an_approver_waives_the_final_snapshot_and_then_none_is_taken(
    bot_factory, aws, pg_url, monkeypatch
):
    """Issue 15: "a final snapshot is always taken unless the approver explicitly waives
    it". The recovery's requester clicking "Skip the final snapshot" changes nothing; an
    approver's click does, and the deletion then runs without one, the plan saying who
    waived it."""
    bot = pitr_bot(bot_factory, aws, pg_url, monkeypatch)
    op, channel = restore_and_switch(bot)  # requested by U_ALICE, approved by U_BOB
    job_id = cleanup_schedule.job_id(op.id)
    bot.wait_until(lambda: "Cleanup scheduled" in thread_text(bot, channel), what="cleanup card")

    bot.signer.block_action(
        Action.PITR_CLEANUP_FINAL_SNAPSHOT, None, user="U_ALICE", channel=channel
    )
    refusal = bot.wait_until(
        lambda: [r for r in bot.slack.responses() if "final snapshot stays" in str(r)],
        what="refusal",
    )
    assert "Only an approver of rds other than the recovery's requester" in refusal[-1]["text"]
    assert bot.store.job(job_id).payload["skip_final_snapshot_by"] is None
    assert "will skip" not in thread_text(bot, channel)

    bot.signer.block_action(Action.PITR_CLEANUP_FINAL_SNAPSHOT, None, user="U_BOB", channel=channel)
    bot.wait_until(
        lambda: bot.store.job(job_id).payload["skip_final_snapshot_by"] == "U_BOB",
        what="waived by the approver",
    )
    skipped = bot.wait_until(
        lambda: next(
            (m for m in bot.slack.messages(channel) if "will skip the final" in m["text"]), None
        ),
        what="cleanup card edited",
    )
    assert "<@U_BOB> chose to skip it" in json.dumps(skipped["blocks"])

    # Due, with the old instance no longer live: the deletion is approved and takes no
    # final snapshot.
    target = op.params["target"]
    bot.stop()
    bot = bot_factory(tables_extra=RDS_ENV.replace(f'"{SOURCE}"', f'"{target}"'))
    put_connections(aws, SOURCE, 0, 0, 0)
    rds = aws.client("rds")
    snapshots = rds.describe_db_snapshots()["DBSnapshots"]
    bot.services.scheduler.run_due_now(job_id)
    cleanup = bot.wait_until(lambda: bot.store.active_operation("rds"), what="cleanup op")
    assert cleanup.runbook == "pitr_cleanup" and cleanup.params["final_snapshot_id"] is None
    # No final snapshot ticks "backup" for the bot: the requester ticks it herself, having
    # decided the automated backups are enough.
    run_cleanup_checklist(bot, cleanup, leave_out=())
    backup = bot.wait_until(
        lambda: next(
            (
                i
                for i in bot.store.checklist(cleanup.id, "before")
                if i.item_id == "backup" and i.checked
            ),
            None,
        ),
        what="backup ticked",
    )
    assert not backup.by_bot
    plan = bot.wait_until(lambda: bot.store.approvals(cleanup.id), what="approval")[0].plan_text
    assert "WARNING: NO final snapshot (SkipFinalSnapshot=true), explicitly chosen by U_BOB" in plan
    approve_next(bot, cleanup.id, 1, approver="U_DAVE")
    bot.wait_status(cleanup.id, "succeeded")
    rows = rds.describe_db_instances()["DBInstances"]
    assert SOURCE not in {r["DBInstanceIdentifier"] for r in rows}
    assert rds.describe_db_snapshots()["DBSnapshots"] == snapshots
