"""Point-in-time recovery on RDS from Slack, the whole flow through the rig.

AWS is moto's server (the aws fixture). moto's RDS instances have no database behind their
endpoints, so the test makes the restored instance's endpoint reach the test PostgreSQL:
the source instance is created with the test server's port (a restore keeps it) and
PGHOSTADDR=127.0.0.1 makes libpq connect to 127.0.0.1 whatever host name the URL carries
(libpq: PGHOSTADDR is the default for hostaddr, and the URL only sets host). So the
"restored" database here IS the test database: verification runs real SQL on a real
PostgreSQL, but both columns of the card read the same data.

The environment is a fourth one, [environments.rds], added through tables_extra: the rig's
staging and production already name database_url_env, and the config allows exactly one
URL source, while PITR needs database_secret_id (the secret it switches).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from urllib.parse import urlsplit

import psycopg
import pytest

from bot.checklists import BEFORE
from bot.slack.ids import Action, Block, Callback
from tests.unit.aws.source_instance import make_source

SECRET_ID = "skillancer/rds/database"
SOURCE = "skillancer-rds"
RDS_ENV = f"""
[environments.rds]
database_secret_id = "{SECRET_ID}"
rds_instance_id = "{SOURCE}"
protected = true
approvers = ["@db-approvers"]
requesters = ["U_ALICE", "U_BOB"]
notify_channel = "#engineering"

[[environments.rds.verification_queries]]
name = "recent users"
sql = "SELECT count(*) FROM users WHERE created_at > now() - interval '1 day'"
expect = "> 0"

[pitr]
poll_seconds = 0.2
restore_margin_minutes = 5
snapshot_max_age_minutes = 60
resolver = "bot.sandbox.aws:resolve"
"""


def prepare_database(pg_url: str) -> datetime:
    """Users, and a failed migration 30 minutes ago: the harmful one."""
    started = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=30)
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute("CREATE TABLE users (id serial, created_at timestamptz DEFAULT now())")
        conn.execute("INSERT INTO users DEFAULT VALUES; INSERT INTO users DEFAULT VALUES")
        conn.execute(
            "CREATE TABLE _prisma_migrations (id varchar(36) PRIMARY KEY, checksum varchar(64)"
            " NOT NULL, finished_at timestamptz, migration_name varchar(255) NOT NULL,"
            " logs text, rolled_back_at timestamptz, started_at timestamptz NOT NULL,"
            " applied_steps_count integer NOT NULL DEFAULT 0)"
        )
        conn.execute(
            "INSERT INTO _prisma_migrations VALUES ('m1', 'c', NULL,"
            " '20260302_drop_user_emails', NULL, NULL, %s, 0)",
            (started,),
        )
    return started


def pitr_bot(bot_factory, aws, pg_url, monkeypatch):
    prepare_database(pg_url)
    monkeypatch.setenv("PGHOSTADDR", "127.0.0.1")
    make_source(aws, SOURCE, port=urlsplit(pg_url).port)
    aws.client("secretsmanager").create_secret(
        Name=SECRET_ID, SecretString=json.dumps({"url": pg_url, "pool_size": 5})
    )
    return bot_factory(tables_extra=RDS_ENV)


def open_modal(bot, user="U_ALICE"):
    assert bot.signer.slash("pitr --env rds", user=user).status == 200
    call = bot.slack.wait_for(
        "views.update",
        where=lambda c: (
            c.args["view"]["callback_id"] == Callback.PITR
            and any(b.get("block_id") == Block.PITR_MODE for b in c.args["view"]["blocks"])
        ),
    )[-1]
    return call.response["view"]["id"]


def element(view, block_id):
    return next(b for b in view["blocks"] if b.get("block_id") == block_id)["element"]


def last_view_response(bot):
    return bot.slack.calls_to("response_action", ok=None)[-1].args


def current_secret(aws):
    return aws.client("secretsmanager").get_secret_value(
        SecretId=SECRET_ID, VersionStage="AWSCURRENT"
    )


def tick_human_items(bot, view_id, user="U_ALICE", leave_out=("backup",)):
    view = bot.slack.views()[view_id]
    assert view["callback_id"] == Callback.CHECKLIST
    blocks = [b for b in view["blocks"] if b.get("block_id", "").startswith(Block.CHECKLIST_ITEMS)]
    values = {
        b["block_id"]: [o["value"] for o in b["element"]["options"] if o["value"] not in leave_out]
        for b in blocks
    }
    assert bot.signer.submit_view(view_id, user=user, values=values).status == 200


def start_undo(bot, channel):
    """Clicks "Undo switch" and completes the undo's before-checklist."""
    bot.signer.block_action(Action.PITR_UNDO_SWITCH, None, user="U_ALICE", channel=channel)
    undo = bot.wait_until(lambda: bot.store.active_operation("rds"), what="undo operation")
    assert undo.runbook == "pitr_undo_switch"
    checklist_view = bot.slack.wait_for(
        "views.open", where=lambda c: c.args["view"]["callback_id"] == Callback.CHECKLIST
    )[-1].response["view"]["id"]
    bot.wait_until(
        lambda: any(
            i.by_bot for i in bot.store.checklist(undo.id, "before") if i.item_id == "backup"
        ),
        what="undo backup tick",
    )
    tick_human_items(bot, checklist_view)
    return undo


def approve_next(bot, op_id, count, approver="U_BOB"):
    bot.wait_until(lambda: len(bot.store.approvals(op_id)) >= count, what=f"approval {count}")
    channel = bot.store.operation(op_id).incident_channel
    bot.slack.wait_for(
        "chat.postMessage",
        count=count,
        where=lambda c: (
            "Approval needed" in str(c.args.get("text")) and c.args.get("channel") == channel
        ),
    )
    bot.signer.block_action(Action.APPROVE, None, user=approver, channel=channel)
    return channel


@pytest.mark.both_transports
def test_pitr_restore_verify_switch_and_undo(bot_factory, aws, pg_url, monkeypatch):
    bot = pitr_bot(bot_factory, aws, pg_url, monkeypatch)
    original = current_secret(aws)
    view_id = open_modal(bot)
    view = bot.slack.views()[view_id]

    # Prefilled: 5 minutes (the margin) before the failed migration started, in UTC.
    started = datetime.now(UTC).replace(second=0, microsecond=0) - timedelta(minutes=35)
    assert "20260302_drop_user_emails" in json.dumps(view["blocks"])
    assert element(view, Block.PITR_TIME)["timezone"] == "UTC"
    date, hhmm = (
        element(view, Block.PITR_DATE)["initial_date"],
        element(view, Block.PITR_TIME)["initial_time"],
    )
    suggested = datetime.strptime(f"{date} {hhmm}", "%Y-%m-%d %H:%M").replace(tzinfo=UTC)
    assert abs(suggested - started) <= timedelta(minutes=1)
    target = element(view, Block.PITR_TARGET)["initial_value"]
    assert target.startswith(f"{SOURCE}-recovery-") and len(target) == len(SOURCE) + 22
    assert element(view, Block.PITR_CLASS)["initial_value"] == "db.r6g.large"

    # Bad choices get field errors and change nothing.
    bot.signer.submit_view(
        view_id,
        user="U_ALICE",
        values={Block.PITR_TARGET: "bad--id-", Block.PITR_CLASS: "large"},
    )
    errors = last_view_response(bot)["errors"]
    assert "two consecutive hyphens" in errors[Block.PITR_TARGET]
    assert "instance class" in errors[Block.PITR_CLASS]
    bot.signer.submit_view(view_id, user="U_ALICE", values={Block.PITR_MODE: "snapshot"})
    assert "No available snapshot before" in last_view_response(bot)["errors"][Block.PITR_MODE]
    assert bot.store.active_operation("rds") is None

    # Exact time, defaults otherwise: the operation starts, the modal becomes the checklist.
    bot.signer.submit_view(view_id, user="U_ALICE", values={})
    assert last_view_response(bot)["response_action"] == "update"
    op = bot.wait_until(lambda: bot.store.active_operation("rds"), what="operation")
    assert op.runbook == "pitr" and op.params["target"] == target
    assert op.params["mode"] == "time" and op.params["restore_time"].startswith(date)

    # The bot takes the backup snapshot itself and ticks "Backup current state".
    backup = bot.wait_until(
        lambda: next(
            (
                i
                for i in bot.store.checklist(op.id, "before")
                if i.item_id == "backup" and i.checked
            ),
            None,
        ),
        what="backup ticked",
    )
    assert backup.by_bot and backup.note.startswith(f"snapshot {SOURCE}-before-pitr-")
    snapshot_id = backup.note.removeprefix("snapshot ")
    assert (
        aws.client("rds").describe_db_snapshots(DBSnapshotIdentifier=snapshot_id)["DBSnapshots"][0][
            "SnapshotType"
        ]
        == "manual"
    )
    tick_human_items(bot, view_id)
    assert {i.item_id for i in bot.store.checklist(op.id, "before") if i.checked} == {
        i.id for i in BEFORE.items
    }

    # Approval of the restore: the plan names source, target, time, class, copied settings.
    restore_plan = bot.wait_until(lambda: bot.store.approvals(op.id), what="approval")[0]
    for fact in (
        SOURCE,
        target,
        op.params["restore_time"],
        "db.r6g.large",
        "skillancer-db-subnets",
        "skillancer-pg15",
        "Multi-AZ: yes",
        "team=platform",
    ):
        assert fact in restore_plan.plan_text, fact
    channel = approve_next(bot, op.id, 1)

    # Restored with the source's settings; progress and RDS events in the incident thread.
    bot.wait_until(lambda: len(bot.store.approvals(op.id)) == 2, what="switch approval")
    restored = aws.client("rds").describe_db_instances(DBInstanceIdentifier=target)["DBInstances"][
        0
    ]
    assert restored["DBParameterGroups"][0]["DBParameterGroupName"] == "skillancer-pg15"
    assert restored["DBSubnetGroup"]["DBSubnetGroupName"] == "skillancer-db-subnets"
    assert restored["MultiAZ"] is True

    def thread() -> str:
        return " ".join(m["text"] for m in bot.slack.messages(channel))

    bot.wait_until(lambda: "Verification" in thread(), what="verification card")
    assert "RDS event" in thread() and "DB instance created" in thread()
    assert f"{target} is available after" in thread()

    # Verification card: current and restored side by side.
    card = next(m for m in bot.slack.messages(channel) if "Verification" in m["text"])
    card_text = json.dumps(card["blocks"])
    assert "recent users" in card_text and "Current rds" in card_text
    assert f"Restored {target}" in card_text and "`2`" in card_text

    # Switch approved: the secret points at the restored endpoint, other keys kept.
    switch_plan = bot.store.approvals(op.id)[1].plan_text
    assert SECRET_ID in switch_plan and restored["Endpoint"]["Address"] in switch_plan
    approve_next(bot, op.id, 2)
    bot.wait_status(op.id, "succeeded")
    switched = current_secret(aws)
    value = json.loads(switched["SecretString"])
    assert urlsplit(value["url"]).hostname == restored["Endpoint"]["Address"]
    assert value["pool_size"] == 5
    assert switched["VersionId"] != original["VersionId"]

    # Undo: its own operation, checklist and approval; the exact previous version returns.
    bot.slack.wait_for("chat.postMessage", where=lambda c: "Traffic switched" in str(c.args))
    undo = start_undo(bot, channel)
    undo_plan = bot.wait_until(lambda: bot.store.approvals(undo.id), what="undo approval")[0]
    assert original["VersionId"] in undo_plan.plan_text
    assert current_secret(aws)["VersionId"] == switched["VersionId"]  # not before approval
    approve_next(bot, undo.id, 1)
    bot.wait_status(undo.id, "succeeded")
    back = current_secret(aws)
    assert back["VersionId"] == original["VersionId"]
    assert back["SecretString"] == original["SecretString"]

    # The database password never reached Slack; databases were shown as host:port/database,
    # never as a URL.
    password = urlsplit(pg_url).password
    assert password and all(password not in json.dumps(c.args) for c in bot.slack.calls)
    posted = [json.dumps(c.args) for c in bot.slack.calls_to("chat.postMessage")]
    assert not any("postgresql://" in p or "postgres://" in p for p in posted)
    where = f"{restored['Endpoint']['Address']}:{urlsplit(pg_url).port}{urlsplit(pg_url).path}"
    assert any(where in p for p in posted)


def test_unknown_instance_shows_the_error_in_the_modal_and_changes_nothing(
    bot_factory, aws, pg_url, monkeypatch
):
    prepare_database(pg_url)
    aws.client("secretsmanager").create_secret(
        Name=SECRET_ID, SecretString=json.dumps({"url": pg_url})
    )
    bot = bot_factory(tables_extra=RDS_ENV)  # no RDS instance was created
    assert bot.signer.slash("pitr --env rds", user="U_ALICE").status == 200
    call = bot.slack.wait_for("views.update")[-1]
    text = json.dumps(call.args["view"]["blocks"])
    assert f"no RDS DB instance `{SOURCE}`" in text and "Nothing was changed" in text
    assert bot.store.active_operation("rds") is None
    assert aws.client("rds").describe_db_instances()["DBInstances"] == []


def test_pitr_needs_rds_settings(bot):
    bot.signer.slash("pitr --env staging", user="U_ALICE")
    reply = bot.wait_until(lambda: bot.slack.responses(), what="refusal")[-1]
    assert "no rds_instance_id" in reply["text"]
    assert bot.store.active_operation("staging") is None
