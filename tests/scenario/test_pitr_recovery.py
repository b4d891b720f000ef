"""Point-in-time recovery, the rest of the flow: a restart during the restore, AWS refusing
the restore, #engineering told of the switch, safe migrations re-applied on the restored
database, and the scheduled cleanup (approved when due, or cancelled).

The restored instance is a second PostgreSQL server (``restored_pg``) holding the state
before the harmful migration, so verification compares two real databases and the
re-apply runs Prisma's deploy on the restored one only. moto's restored instance keeps
the source's port (as RDS does), so the source is created with the second server's port;
PGHOSTADDR=127.0.0.1 makes libpq reach it whatever host name moto gave the endpoint.
"""

from __future__ import annotations

import dataclasses
import json
from datetime import UTC, datetime, timedelta
from urllib.parse import urlsplit

import psycopg
import pytest

from bot.runbooks.pitr import cleanup_schedule as pitr_cleanup
from bot.sandbox.postgres import PostgresServer, database_name
from bot.slack.ids import Action, Block, Callback
from tests.scenario.test_pitr import (
    RDS_ENV,
    SECRET_ID,
    SOURCE,
    approve_next,
    current_secret,
    element,
    last_view_response,
    open_modal,
    tick_human_items,
)
from tests.unit.aws import aws_proxy as proxy_fixture
from tests.unit.aws.source_instance import make_source, put_connections

aws_proxy = proxy_fixture.aws_proxy  # the fixture, shared with tests/unit/aws

HARMFUL = "20260303_drop_user_emails"
SAFE = "20260302_add_orders"
MIGRATIONS = {
    "20260301_init": "CREATE TABLE users (id serial PRIMARY KEY, email text,"
    " created_at timestamptz DEFAULT now());",
    SAFE: "CREATE TABLE orders (id serial PRIMARY KEY, user_id integer);",
    HARMFUL: "ALTER TABLE users DROP COLUMN email;",
}
HISTORY_DDL = (
    "CREATE TABLE _prisma_migrations (id varchar(36) PRIMARY KEY, checksum varchar(64)"
    " NOT NULL, finished_at timestamptz, migration_name varchar(255) NOT NULL, logs text,"
    " rolled_back_at timestamptz, started_at timestamptz NOT NULL,"
    " applied_steps_count integer NOT NULL DEFAULT 0)"
)


@pytest.fixture(scope="module")
def restored_server(pg_server) -> PostgresServer:
    # Same superuser password as the live server: a restored RDS instance keeps the
    # master credentials, and the bot reuses the URL's user and password on it.
    server = PostgresServer()
    server.password = pg_server.password
    server.start()
    yield server
    server.stop()


@pytest.fixture
def restored_pg(restored_server, pg_url) -> str:
    """The restored copy: the same database name on the second server."""
    url = restored_server.create_database(name=database_name(pg_url))
    yield url
    restored_server.drop_database(database_name(pg_url))


def _migrations_dir(tmp_path):
    root = tmp_path / "migrations"
    for name, sql in MIGRATIONS.items():
        (root / name).mkdir(parents=True)
        (root / name / "migration.sql").write_text(sql + "\n")
    (root / "migration_lock.toml").write_text('provider = "postgresql"\n')
    return root


def _history(conn, rows):
    conn.execute(HISTORY_DDL)
    for n, (name, started, finished) in enumerate(rows):
        conn.execute(
            "INSERT INTO _prisma_migrations VALUES (%s, 'c', %s, %s, NULL, NULL, %s, %s)",
            (f"m{n}", finished, name, started, 1 if finished else 0),
        )


def prepare_live_and_restored(live_url: str, restored_url: str) -> None:
    now = datetime.now(UTC).replace(microsecond=0)
    long_ago = now - timedelta(days=3)
    with psycopg.connect(live_url, autocommit=True) as conn:
        conn.execute(MIGRATIONS["20260301_init"] + MIGRATIONS[SAFE])
        conn.execute("INSERT INTO users (email) VALUES ('a@x'), ('b@x')")
        _history(
            conn,
            [
                ("20260301_init", long_ago, long_ago),
                (SAFE, now - timedelta(minutes=31), now - timedelta(minutes=31)),
                (HARMFUL, now - timedelta(minutes=30), None),  # failed: the harmful one
            ],
        )
    with psycopg.connect(restored_url, autocommit=True) as conn:  # before both
        conn.execute(MIGRATIONS["20260301_init"])
        conn.execute("INSERT INTO users (email) VALUES ('a@x'), ('b@x'), ('c@x')")
        _history(conn, [("20260301_init", long_ago, long_ago)])


def rds_bot(bot_factory, aws, pg_url, restored_pg, monkeypatch, tmp_path):
    prepare_live_and_restored(pg_url, restored_pg)
    monkeypatch.setenv("PGHOSTADDR", "127.0.0.1")
    make_source(aws, SOURCE, port=urlsplit(restored_pg).port)
    aws.client("secretsmanager").create_secret(
        Name=SECRET_ID, SecretString=json.dumps({"url": pg_url, "pool_size": 5})
    )
    extra = RDS_ENV.replace(
        'notify_channel = "#engineering"\n',
        f'notify_channel = "#engineering"\nmigrations_dir = "{_migrations_dir(tmp_path)}"\n',
    )
    return extra, bot_factory(tables_extra=extra)


def start_restore(bot):
    """Modal with its defaults (exact time), checklist, restore approval requested."""
    view_id = open_modal(bot)
    target = element(bot.slack.views()[view_id], Block.PITR_TARGET)["initial_value"]
    bot.signer.submit_view(view_id, user="U_ALICE", values={})
    assert last_view_response(bot)["response_action"] == "update"
    op = bot.wait_until(lambda: bot.store.active_operation("rds"), what="operation")
    bot.wait_until(
        lambda: any(
            i.checked for i in bot.store.checklist(op.id, "before") if i.item_id == "backup"
        ),
        what="backup ticked",
    )
    tick_human_items(bot, view_id)
    return op, target


def thread_text(bot, channel) -> str:
    return " ".join(m["text"] for m in bot.slack.messages(channel))


def test_a_restart_during_the_restore_resumes_polling_without_restoring_twice(
    bot_factory, aws, aws_proxy, pg_url, restored_pg, monkeypatch, tmp_path
):
    extra, bot = rds_bot(bot_factory, aws, pg_url, restored_pg, monkeypatch, tmp_path)
    op, target = start_restore(bot)
    aws_proxy.hold(target, "creating")  # RDS takes minutes; moto is done at once
    channel = approve_next(bot, op.id, 1)

    def waiting(rig):
        step = rig.store.step(op.id, "wait_for_restore")
        return step.status == "running" and "creating" in (step.detail or "") and step

    assert bot.wait_until(lambda: waiting(bot), what="polling").attempts == 1
    bot.stop()  # ctx.sleep returns False: the step stays running, to be resumed
    again = bot_factory(tables_extra=extra)  # same state_db and fake Slack: a restart
    assert again.wait_until(lambda: waiting(again), what="polling again").attempts == 2
    again.wait_until(
        lambda: "restarted during 'Wait for the instance" in thread_text(again, channel),
        what="resume note",
    )
    aws_proxy.release(target)
    again.wait_until(lambda: len(again.store.approvals(op.id)) == 2, what="switch approval")

    assert aws_proxy.count("RestoreDBInstanceToPointInTime") == 1
    assert again.store.step(op.id, "restore").attempts == 1
    assert again.store.step(op.id, "wait_for_restore").status == "succeeded"
    assert f"{target} is available after" in thread_text(again, channel)
    # Verification compared two real databases: 2 users live, 3 in the restored copy.
    card = again.wait_until(
        lambda: next((m for m in again.slack.messages(channel) if "Verification" in m["text"]), 0),
        what="verification card",
    )
    assert "`2`" in json.dumps(card["blocks"]) and "`3`" in json.dumps(card["blocks"])

    # The switch: approved, the secret moves, #engineering is told.
    approve_next(again, op.id, 2)
    op_row = again.store.operation(op.id)  # its notify_channel: #engineering's id
    notice = again.slack.wait_for(
        "chat.postMessage",
        where=lambda c: (
            c.args.get("channel") == op_row.notify_channel and "traffic switched" in str(c.args)
        ),
        timeout=20,
    )[-1]
    assert target in notice.args["text"] and op.id in json.dumps(notice.args["blocks"])
    assert urlsplit(json.loads(current_secret(aws)["SecretString"])["url"]).port == (
        urlsplit(restored_pg).port
    )

    # The cleanup was scheduled with the switch; cancelling it marks the job done, and a
    # due run then starts nothing.
    job_id = pitr_cleanup.job_id(op.id)
    job = again.wait_until(lambda: again.store.job(job_id), what="cleanup job")
    assert job.done_at is None
    again.slack.wait_for("chat.postMessage", where=lambda c: "Cleanup scheduled" in str(c.args))
    again.signer.block_action(Action.PITR_CLEANUP_CANCEL, None, user="U_ALICE", channel=channel)
    again.wait_until(
        lambda: again.store.job(job_id).done_at,
        what="job cancelled",
    )
    again.wait_until(lambda: "cancelled the scheduled deletion" in thread_text(again, channel))
    again.services.scheduler.run_due_now(job_id)
    assert [o.runbook for o in again.store.operations(limit=10)].count("pitr_cleanup") == 0
    assert rds_exists(aws, SOURCE)


def rds_exists(aws, instance_id) -> bool:
    rows = aws.client("rds").describe_db_instances()["DBInstances"]
    return any(r["DBInstanceIdentifier"] == instance_id for r in rows)


def test_reapply_safe_migrations_then_cleanup_when_due(
    bot_factory, aws, pg_url, restored_pg, monkeypatch, tmp_path
):
    extra, bot = rds_bot(bot_factory, aws, pg_url, restored_pg, monkeypatch, tmp_path)
    op, target = start_restore(bot)
    channel = approve_next(bot, op.id, 1)
    bot.wait_until(lambda: len(bot.store.approvals(op.id)) == 2, what="switch approval")
    approve_next(bot, op.id, 2)

    # Option 1's status on the restored database, then the choice: the failed migration
    # is left out by default.
    decision = bot.slack.wait_for(
        "chat.postMessage",
        where=lambda c: c.args.get("channel") == channel and f"{Action.DECIDE}_safe" in str(c.args),
    )[-1]
    assert (
        SAFE in decision.args["text"]
        and f"`{HARMFUL}`: data-losing (the failed or harmful" in (decision.args["text"])
    )
    assert any(
        "Migration status on the restored" in json.dumps(m) for m in bot.slack.messages(channel)
    )
    bot.signer.block_action(f"{Action.DECIDE}_safe", None, user="U_ALICE", channel=channel)

    # Deploying is behind its own approval, bound to the exact list.
    plan = bot.wait_until(
        lambda: len(bot.store.approvals(op.id)) == 3 and bot.store.approvals(op.id)
    )
    assert f"  {SAFE}" in plan[2].plan_text and "left out (stay pending" in plan[2].plan_text
    assert f"  {HARMFUL}" not in plan[2].plan_text
    approve_next(bot, op.id, 3)
    bot.wait_status(op.id, "succeeded")
    bot.wait_until(lambda: f"Applied `{SAFE}` (1/1)" in thread_text(bot, channel), what="line")
    with psycopg.connect(restored_pg) as conn:
        applied = conn.execute(
            "SELECT migration_name FROM _prisma_migrations WHERE finished_at IS NOT NULL ORDER BY 1"
        ).fetchall()
        assert [r[0] for r in applied] == ["20260301_init", SAFE]
        assert conn.execute("SELECT to_regclass('orders')").fetchone()[0] == "orders"
        assert (
            conn.execute(  # the harmful migration did not run: email is still there
                "SELECT count(*) FROM information_schema.columns WHERE column_name = 'email'"
            ).fetchone()[0]
            == 1
        )

    # Cleanup: scheduled 7 days out. Due while the bot's config still names the old
    # instance and CloudWatch shows no idle minute, it refuses with both reasons.
    job_id = pitr_cleanup.job_id(op.id)
    job = bot.store.job(job_id)
    run_at = datetime.fromisoformat(job.run_at)
    assert timedelta(days=6, hours=23) < run_at - datetime.now(UTC) <= timedelta(days=7)
    bot.services.scheduler.run_due_now(job_id)
    refused = bot.wait_until(lambda: bot.store.active_operation("rds"), what="cleanup op")
    run_cleanup_checklist(bot, refused)
    bot.wait_status(refused.id, "failed")
    error = bot.store.step(refused.id, "check_old_instance").error
    assert f"`{SOURCE}` is the rds_instance_id of environment `rds`" in error
    assert "no DatabaseConnections datapoint" in error and rds_exists(aws, SOURCE)

    # The config now names the restored instance, and the old one has been idle: when the
    # job is due again, an operation that needs the checklist and an approval deletes the
    # old instance with a final snapshot.
    bot.stop()
    extra = extra.replace(f'rds_instance_id = "{SOURCE}"', f'rds_instance_id = "{target}"')
    bot = bot_factory(tables_extra=extra)
    put_connections(aws, SOURCE, 0, 0, 0)
    bot.store.schedule_job(dataclasses.replace(job, done_at=None))
    bot.services.scheduler.run_due_now(job_id)
    cleanup = bot.wait_until(lambda: bot.store.active_operation("rds"), what="cleanup op")
    assert cleanup.runbook == "pitr_cleanup" and cleanup.requester == "U_ALICE"
    run_cleanup_checklist(bot, cleanup)
    plan = bot.wait_until(lambda: bot.store.approvals(cleanup.id), what="cleanup approval")
    assert f"final snapshot: {cleanup.params['final_snapshot_id']}" in plan[0].plan_text
    assert rds_exists(aws, SOURCE)  # nothing deleted before the approval
    approve_next(bot, cleanup.id, 1)
    bot.wait_status(cleanup.id, "succeeded")
    assert not rds_exists(aws, SOURCE)
    snapshot = aws.client("rds").describe_db_snapshots(
        DBSnapshotIdentifier=cleanup.params["final_snapshot_id"]
    )["DBSnapshots"][0]
    assert snapshot["DBInstanceIdentifier"] == SOURCE


def run_cleanup_checklist(bot, cleanup, leave_out=("backup",)) -> None:
    channel = bot.wait_until(lambda: bot.store.operation(cleanup.id).incident_channel)
    bot.slack.wait_for(
        "chat.postMessage",
        where=lambda c: c.args.get("channel") == channel and "checklist" in str(c.args),
    )
    opened = len(bot.slack.calls_to("views.open"))
    bot.signer.block_action(
        f"{Action.OPEN_CHECKLIST}_before", None, user="U_ALICE", channel=channel
    )
    view = bot.slack.wait_for("views.open", count=opened + 1)[-1]
    assert view.args["view"]["callback_id"] == Callback.CHECKLIST
    tick_human_items(bot, view.response["view"]["id"], leave_out=leave_out)


def test_aws_refusing_the_restore_fails_safely_with_a_clear_message(
    bot_factory, aws, aws_proxy, pg_url, restored_pg, monkeypatch, tmp_path
):
    _, bot = rds_bot(bot_factory, aws, pg_url, restored_pg, monkeypatch, tmp_path)
    original = current_secret(aws)
    op, target = start_restore(bot)
    aws_proxy.fail(
        "RestoreDBInstanceToPointInTime",
        "InvalidRestoreFault",
        "The restore time is before the earliest restorable time.",
    )
    channel = approve_next(bot, op.id, 1)
    bot.wait_status(op.id, "failed")
    bot.wait_until(
        lambda: (
            "InvalidRestoreFault: The restore time is before the earliest"
            in thread_text(bot, channel)
        ),
        what="the failure in the thread",
    )
    assert any("Nothing was restored" in a.message for a in bot.store.audit(op.id))
    assert aws_proxy.count("RestoreDBInstanceToPointInTime") == 1  # not retried
    assert not rds_exists(aws, target)
    assert current_secret(aws)["VersionId"] == original["VersionId"]  # nothing switched
    assert bot.store.job(pitr_cleanup.job_id(op.id)) is None


def test_restore_time_outside_the_window_and_taken_target_are_refused_in_the_modal(
    bot_factory, aws, pg_url, restored_pg, monkeypatch, tmp_path
):
    _, bot = rds_bot(bot_factory, aws, pg_url, restored_pg, monkeypatch, tmp_path)
    view_id = open_modal(bot)
    future = datetime.now(UTC) + timedelta(hours=2)
    bot.signer.submit_view(
        view_id,
        user="U_ALICE",
        values={Block.PITR_DATE: f"{future:%Y-%m-%d}", Block.PITR_TIME: f"{future:%H:%M}"},
    )
    assert "after the latest restorable time" in last_view_response(bot)["errors"][Block.PITR_TIME]
    bot.signer.submit_view(
        view_id, user="U_ALICE", values={Block.PITR_DATE: "2020-01-01", Block.PITR_TIME: "10:00"}
    )
    assert (
        "before the earliest restorable time"
        in (last_view_response(bot)["errors"][Block.PITR_TIME])
    )
    aws.client("rds").create_db_instance(
        DBInstanceIdentifier="taken-db", DBInstanceClass="db.t3.micro", Engine="postgres"
    )
    bot.signer.submit_view(view_id, user="U_ALICE", values={Block.PITR_TARGET: "taken-db"})
    assert "already exists" in last_view_response(bot)["errors"][Block.PITR_TARGET]
    assert bot.store.active_operation("rds") is None
