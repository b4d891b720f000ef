"""Through the rig, against RDS served by moto: the backup retention review. Manual
snapshots the bot tagged whose retention date has passed are proposed for deletion, every
other one is kept with why (a person's own snapshot, one tagged for another environment,
one inside its date, one with no valid date, the last one of an instance); the deletion
waits for a second person who sees every snapshot in the plan; exactly the approved ones
are deleted, except one re-tagged after the plan; the daily job starts the same review
from the scheduler (driven with run_due_now, no wall-clock waits)."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta

import pytest

from bot.aws.snapshots import RETAIN_UNTIL, pre_migration_tags
from bot.clock import parse_iso
from bot.runbooks import retention_schedule
from bot.slack.ids import Action
from bot.store.records import EventKind
from tests.scenario.test_backups import PRODUCTION_DB, STAGING_DB, make_instance
from tests.scenario.test_check import text_of
from tests.scenario.test_sql_approval import full_plan

TODAY = datetime.now(UTC).date()


def tagged(aws, instance: str, sid: str, env: str, until: date | str) -> None:
    """A snapshot as `/rollback snapshot` tags it (``until`` a str: a damaged tag)."""
    tags = pre_migration_tags(env, TODAY, ["20260101000000_init", "20260102000000_add_bio"])
    tags = [t if t["Key"] != RETAIN_UNTIL else {**t, "Value": str(until)} for t in tags]
    aws.client("rds").create_db_snapshot(
        DBInstanceIdentifier=instance, DBSnapshotIdentifier=sid, Tags=tags
    )


def untagged(aws, instance: str, sid: str) -> None:
    aws.client("rds").create_db_snapshot(DBInstanceIdentifier=instance, DBSnapshotIdentifier=sid)


def snapshot_ids(aws) -> set[str]:
    rows = aws.client("rds").describe_db_snapshots(SnapshotType="manual")["DBSnapshots"]
    return {r["DBSnapshotIdentifier"] for r in rows if r["Status"] != "deleting"}


@pytest.fixture
def bot(bot_factory, aws):
    make_instance(aws, PRODUCTION_DB, retention=30)
    make_instance(aws, STAGING_DB, retention=7)
    return bot_factory(
        production_extra=f'rds_instance_id = "{PRODUCTION_DB}"',
        staging_extra=f'rds_instance_id = "{STAGING_DB}"',
        tables_extra='[backups]\nretention_review = "daily 09:00"',
    )


def production_snapshots(aws) -> None:
    tagged(aws, PRODUCTION_DB, "prod-expired-long-ago", "production", TODAY - timedelta(days=40))
    tagged(aws, PRODUCTION_DB, "prod-expired-yesterday", "production", TODAY - timedelta(days=1))
    tagged(aws, PRODUCTION_DB, "prod-expires-today", "production", TODAY)
    tagged(aws, PRODUCTION_DB, "prod-kept-90-days", "production", TODAY + timedelta(days=90))
    tagged(aws, PRODUCTION_DB, "prod-no-date", "production", "soon")
    tagged(aws, PRODUCTION_DB, "prod-tagged-staging", "staging", TODAY - timedelta(days=5))
    untagged(aws, PRODUCTION_DB, "prod-by-a-person")


def ask_review(bot, user: str = "U_ALICE", env: str = "production") -> str:
    before = len(bot.slack.ephemerals(user=user))
    assert bot.signer.slash(f"backups --retention --env {env}", user=user).status == 200
    bot.wait_until(lambda: len(bot.slack.ephemerals(user=user)) > before, timeout=30, what="reply")
    return text_of(bot.slack.ephemerals(user=user)[-1]["blocks"])


def thread_with(bot, channel: str, text: str) -> str:
    """The incident thread once it shows ``text`` (thread lines are batched)."""
    return bot.wait_until(
        lambda: (t := " ".join(m["text"] for m in bot.slack.messages(channel))) and text in t and t,
        what=text,
    )


def approval_message(bot, op_id: str) -> tuple[str, dict]:
    bot.wait_until(lambda: bot.store.approvals(op_id), what="approval requested")
    channel = bot.wait_until(
        lambda: bot.store.operation(op_id).incident_channel, what="incident channel"
    )
    (call,) = bot.slack.wait_for(
        "chat.postMessage",
        timeout=30,
        where=lambda c: (
            "Approval needed" in str(c.args.get("text")) and c.args.get("channel") == channel
        ),
    )
    return channel, call.args


def test_on_demand_review_lists_keeps_with_why_and_deletes_exactly_the_approved(bot, aws):
    production_snapshots(aws)
    shown = ask_review(bot)
    assert "Proposed for deletion (2)" in shown and "Kept (5)" in shown
    assert "`prod-expired-long-ago`" in shown and "retention ended" in shown
    assert "`prod-expires-today`" in shown and f"kept, kept until {TODAY.isoformat()}" in shown
    assert "`prod-no-date`" in shown and "no valid rollback-bot:retain-until date" in shown
    assert "tagged for environment staging, not production" in shown
    assert "`prod-by-a-person`" in shown and "not taken by rollback-bot" in shown
    op = bot.store.active_operation("production")
    assert op.runbook == "backup_retention" and op.requester == "U_ALICE"
    assert [r["id"] for r in op.params["to_delete"]] == [
        "prod-expired-long-ago",
        "prod-expired-yesterday",
    ]

    # The approver is shown every snapshot, whole: identifier, instance, creation, tags, date.
    channel, message = approval_message(bot, op.id)
    bot.wait_status(op.id, "waiting_approval")
    approval = bot.store.approvals(op.id)[0]
    plan, _ = full_plan(bot, channel)
    assert plan == approval.plan_text
    for sid in ("prod-expired-long-ago", "prod-expired-yesterday"):
        assert f". {sid}\n   instance: {PRODUCTION_DB}; created: " in plan
    assert "created-by=rollback-bot" in plan and "20260102000000_add_bio" in plan
    assert f"retain until: {(TODAY - timedelta(days=40)).isoformat()}" in plan
    assert "- prod-by-a-person" in plan  # the kept ones follow, with why
    assert "DELETE 2 MANUAL SNAPSHOTS past their retention date" in json.dumps(message["blocks"])

    # The requester cannot approve their own request; nothing is deleted.
    bot.signer.block_action(Action.APPROVE, None, user="U_ALICE", channel=channel)
    reply = bot.wait_until(
        lambda: [r for r in bot.slack.responses() if "approve your own" in r["text"]],
        what="refusal",
    )[-1]
    assert reply.get("response_type") == "ephemeral"
    assert {"prod-expired-long-ago", "prod-expired-yesterday"} <= snapshot_ids(aws)
    assert bot.store.operation(op.id).status == "waiting_approval"

    bot.signer.block_action(Action.APPROVE, None, user="U_BOB", channel=channel)
    bot.wait_status(op.id, "succeeded")
    assert snapshot_ids(aws) == {
        "prod-expires-today",
        "prod-kept-90-days",
        "prod-no-date",
        "prod-tagged-staging",
        "prod-by-a-person",
    }
    assert bot.store.operation(op.id).params["deleted"] == [
        "prod-expired-long-ago",
        "prod-expired-yesterday",
    ]
    thread = thread_with(bot, channel, "Deleted (2/2)")
    assert "Deleted (1/2): `prod-expired-long-ago`" in thread
    assert "Deleted (2/2): `prod-expired-yesterday`" in thread
    said = [a.message for a in bot.store.audit(op.id)]
    assert any("Deleted (2/2)" in m for m in said)


def test_a_snapshot_retagged_after_the_plan_is_not_deleted(bot, aws):
    tagged(aws, PRODUCTION_DB, "prod-old-a", "production", TODAY - timedelta(days=3))
    tagged(aws, PRODUCTION_DB, "prod-old-b", "production", TODAY - timedelta(days=2))
    tagged(aws, PRODUCTION_DB, "prod-new", "production", TODAY + timedelta(days=80))
    ask_review(bot)
    op = bot.store.active_operation("production")
    channel, _ = approval_message(bot, op.id)
    # Someone extends one snapshot's retention while the approval waits.
    rds = aws.client("rds")
    arn = rds.describe_db_snapshots(DBSnapshotIdentifier="prod-old-b")["DBSnapshots"][0][
        "DBSnapshotArn"
    ]
    later = (TODAY + timedelta(days=365)).isoformat()
    rds.add_tags_to_resource(ResourceName=arn, Tags=[{"Key": RETAIN_UNTIL, "Value": later}])

    bot.signer.block_action(Action.APPROVE, None, user="U_BOB", channel=channel)
    bot.wait_status(op.id, "succeeded")
    assert snapshot_ids(aws) == {"prod-old-b", "prod-new"}
    done = bot.store.operation(op.id)
    assert done.params["deleted"] == ["prod-old-a"]
    assert done.params["not_deleted"] == [
        {
            "id": "prod-old-b",
            "reason": f"its tags changed since the plan ({RETAIN_UNTIL})",
        }
    ]
    thread_with(bot, channel, "Not deleted (2/2): `prod-old-b`: its tags changed since the plan")


def test_the_last_manual_snapshot_of_an_instance_is_kept(bot, aws):
    tagged(aws, STAGING_DB, "stg-old", "staging", TODAY - timedelta(days=30))
    tagged(aws, STAGING_DB, "stg-older", "staging", TODAY - timedelta(days=60))
    shown = ask_review(bot, env="staging")
    op = bot.store.active_operation("staging")
    (proposed,) = op.params["to_delete"]
    (kept,) = op.params["kept"]
    assert {proposed["id"], kept["id"]} == {"stg-old", "stg-older"}
    assert kept["id"] == "stg-older"  # taken last: the newest
    assert "deleting it would leave the instance with no manual snapshot" in kept["reason"]
    assert "Proposed for deletion (1)" in shown


def test_the_daily_job_fires_from_the_scheduler_and_schedules_the_next_day(bot, aws):
    production_snapshots(aws)
    (job,) = [j for j in bot.store.pending_jobs() if j.kind == "retention_review_due"]
    run_at = parse_iso(job.run_at)
    assert (run_at.hour, run_at.minute) == (9, 0) and run_at > datetime.now(UTC)
    assert run_at - datetime.now(UTC) <= timedelta(days=1)

    bot.services.scheduler.run_due_now(job.id)
    op = bot.wait_until(lambda: bot.store.active_operation("production"), what="review started")
    assert op.runbook == "backup_retention" and op.requester == "rollback-bot"
    assert op.params["trigger"] == "scheduled" and len(op.params["to_delete"]) == 2
    # Staging's review finds the snapshot tagged for staging (on production's instance).
    staging = bot.wait_until(lambda: bot.store.active_operation("staging"), what="staging")
    assert [r["id"] for r in staging.params["to_delete"]] == ["prod-tagged-staging"]
    # Development is not protected: not reviewed at all.
    assert bot.store.active_operation("development") is None
    # The next day's review is written, after the one that ran.
    (following,) = [j for j in bot.store.pending_jobs() if j.kind == "retention_review_due"]
    assert parse_iso(following.run_at) == run_at + timedelta(days=1)
    assert following.id == retention_schedule.job_id(run_at + timedelta(days=1))

    # Any approver approves the bot's request; the thread shows each deletion.
    channel, _ = approval_message(bot, op.id)
    bot.signer.block_action(Action.APPROVE, None, user="U_BOB", channel=channel)
    bot.wait_status(op.id, "succeeded")
    assert "prod-expired-long-ago" not in snapshot_ids(aws)

    # Nobody approves staging's in time: the bot's own request is cancelled, nothing deleted,
    # and staging is free for whoever needs it.
    bot.wait_until(lambda: bot.store.approvals(staging.id), what="staging approval")
    (expiry,) = [
        j
        for j in bot.store.pending_jobs()
        if j.kind == "approval_expiry" and j.operation_id == staging.id
    ]
    bot.services.scheduler.run_due_now(expiry.id)
    bot.wait_status(staging.id, "cancelled")
    assert "prod-tagged-staging" in snapshot_ids(aws)
    assert bot.store.active_operation("staging") is None


def test_nothing_past_retention_starts_nothing_and_refusals_change_nothing(bot, aws):
    tagged(aws, STAGING_DB, "stg-kept", "staging", TODAY + timedelta(days=10))
    shown = ask_review(bot, env="staging")
    assert "Proposed for deletion (0)" in shown and "Nothing to delete." in shown
    assert f"kept until {(TODAY + timedelta(days=10)).isoformat()}" in shown
    assert bot.store.active_operation("staging") is None
    (record,) = bot.store.audit_of_kind(EventKind.RETENTION_REVIEWED)
    assert record.actor == "U_ALICE"
    assert (
        record.message == "staging: Retention review: no manual snapshot past retention (1 kept)."
    )

    assert "development is not protected" in ask_review(bot, env="development")
    refused = ask_review(bot, user="U_DAVE")
    assert "not allowed to start a backup retention review on production" in refused
    assert bot.store.active_operation("production") is None
    assert snapshot_ids(aws) == {"stg-kept"}
