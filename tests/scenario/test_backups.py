"""Through the rig, against real PostgreSQL and RDS served by moto: the runbook's
"Database Backup Strategy" table. `/rollback backups` audits each environment (a
production instance with 7 days of retention instead of 30, a migration applied with no
snapshot before it); `/rollback snapshot` takes the manual snapshot tagged with the pending
migrations and its retention date; the backup audit then finds it before the migration;
`rollback-bot snapshot --before-deploy` does the same from a pipeline, once."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from bot.main import main
from bot.prisma.deploy import deploy
from bot.store.records import EventKind
from tests.scenario.test_check import ADD, INIT, text_of
from tests.scenario.test_check import project as project  # noqa: F401 - the fixture
from tests.unit.aws import aws_proxy as proxy_fixture

aws_proxy = proxy_fixture.aws_proxy  # the fixture, shared with tests/unit/aws

PRODUCTION_DB, STAGING_DB = "skillancer-production", "skillancer-staging"


def make_instance(aws, instance_id: str, retention: int) -> None:
    aws.client("rds").create_db_instance(
        DBInstanceIdentifier=instance_id,
        DBInstanceClass="db.t3.medium",
        Engine="postgres",
        MasterUsername="admin_user",
        MasterUserPassword="not-a-real-password",
        AllocatedStorage=20,
        BackupRetentionPeriod=retention,
    )


@pytest.fixture
def bot(bot_factory, project, aws, pg_url, monkeypatch):  # noqa: F811 - project is the fixture
    make_instance(aws, PRODUCTION_DB, retention=7)  # the runbook says 30
    make_instance(aws, STAGING_DB, retention=7)
    monkeypatch.setenv("STAGING_DATABASE_URL", pg_url)
    return bot_factory(
        production_extra=f'migrations_dir = "{project}"\nrds_instance_id = "{PRODUCTION_DB}"',
        staging_extra=f'migrations_dir = "{project}"\nrds_instance_id = "{STAGING_DB}"\n'
        "snapshot_retention_days = 14",
    )


def reply(bot, command: str) -> str:
    before = len(bot.slack.ephemerals(user="U_ALICE"))
    assert bot.signer.slash(command, user="U_ALICE").status == 200
    bot.wait_until(
        lambda: len(bot.slack.ephemerals(user="U_ALICE")) > before, timeout=30, what="a reply"
    )
    return text_of(bot.slack.ephemerals(user="U_ALICE")[-1]["blocks"])


def tags_of(aws, snapshot_id: str) -> dict[str, str]:
    rds = aws.client("rds")
    (row,) = rds.describe_db_snapshots(DBSnapshotIdentifier=snapshot_id)["DBSnapshots"]
    tags = rds.list_tags_for_resource(ResourceName=row["DBSnapshotArn"])["TagList"]
    return {t["Key"]: t["Value"] for t in tags}


def manual_snapshot_ids(aws, instance: str) -> list[str]:
    rows = aws.client("rds").describe_db_snapshots(
        DBInstanceIdentifier=instance, SnapshotType="manual"
    )["DBSnapshots"]
    return sorted(r["DBSnapshotIdentifier"] for r in rows)


def test_backup_audit_snapshot_tagged_and_found_before_the_migration(bot, aws, project, pg_url):
    audit = reply(bot, "backups")
    # Production: 7 days of automated backups where the runbook says 30; INIT applied with
    # no snapshot before it. Staging: 7 days, as the table says; no manual snapshot needed.
    assert (
        ":x: *RDS Automated*: expected 30 days; found 7 days: shorter than the runbook's"
        " 30 days" in audit
    )
    assert f"migration {INIT} was applied with no snapshot before it" in audit
    assert ":white_check_mark: *RDS Automated*: expected 7 days; found 7 days" in audit
    assert "*development*" in audit and "no rds_instance_id in the config" in audit
    assert audit.count(":white_check_mark: *Point-in-time*") == 2  # moto: restorable now

    shown = reply(bot, "snapshot --env production")
    (snapshot_id,) = manual_snapshot_ids(aws, PRODUCTION_DB)
    assert snapshot_id.startswith(f"{PRODUCTION_DB}-pre-migration-")
    assert f"Manual snapshot `{snapshot_id}`" in shown and f"`{ADD}`" in shown
    tags = tags_of(aws, snapshot_id)
    retain = (datetime.now(UTC) + timedelta(days=90)).date().isoformat()
    assert tags["created-by"] == "rollback-bot"
    assert tags["rollback-bot:purpose"] == "pre-migration"
    assert tags["rollback-bot:environment"] == "production"
    assert tags["rollback-bot:retain-until"] == retain
    assert [v for k, v in sorted(tags.items()) if k.startswith("rollback-bot:migration-")] == [
        ADD,
        "20260103000000_drop_bio",
    ]
    (record,) = bot.store.audit_of_kind(EventKind.SNAPSHOT_TAKEN)
    assert record.actor == "U_ALICE" and record.detail["snapshot"] == snapshot_id

    deploy(pg_url, project)  # the pending migrations go out after the snapshot
    audit = reply(bot, "backups --env production")
    assert (
        f":white_check_mark: *Manual Snapshot*: expected before migrations, kept 90 days;"
        f" found {snapshot_id}" in audit
    )
    assert "20260103000000_drop_bio" in audit  # the newest applied migration it preceded


def test_snapshot_refuses_a_non_requester_and_an_environment_without_an_instance(bot, aws):
    refused = reply(bot, "snapshot --env development")
    assert "has no rds_instance_id in the config" in refused
    before = len(bot.slack.ephemerals(user="U_DAVE"))
    assert bot.signer.slash("snapshot --env production", user="U_DAVE").status == 200
    bot.wait_until(lambda: len(bot.slack.ephemerals(user="U_DAVE")) > before, what="refusal")
    shown = text_of(bot.slack.ephemerals(user="U_DAVE")[-1]["blocks"])
    assert "You are not allowed to start a snapshot on production" in shown
    assert manual_snapshot_ids(aws, PRODUCTION_DB) == []


def test_pipeline_snapshot_before_deploy_is_taken_once_and_waited_for(
    bot, aws, project, pg_url, capsys
):
    args = ["snapshot", "--config", str(bot.config_path), "--env", "production"]
    assert main([*args, "--before-deploy"]) == 0
    (first,) = manual_snapshot_ids(aws, PRODUCTION_DB)
    out = capsys.readouterr().out
    assert f"Snapshot {first} requested" in out and f"Snapshot {first} is available" in out
    # A retried pipeline finds it: still one snapshot.
    assert main([*args, "--before-deploy"]) == 0
    assert manual_snapshot_ids(aws, PRODUCTION_DB) == [first]
    kept = f"{first} was taken after the newest applied migration {INIT} finished: kept"
    assert kept in capsys.readouterr().out
    deploy(pg_url, project)
    assert main([*args, "--before-deploy"]) == 0
    assert "Nothing pending on production: no snapshot needed." in capsys.readouterr().out
    assert manual_snapshot_ids(aws, PRODUCTION_DB) == [first]
    # Staging's own retention (14 days) goes on its tag.
    assert main(["snapshot", "--config", str(bot.config_path), "--env", "staging"]) == 0
    (staging,) = manual_snapshot_ids(aws, STAGING_DB)
    retain = (datetime.now(UTC) + timedelta(days=14)).date().isoformat()
    assert tags_of(aws, staging)["rollback-bot:retain-until"] == retain
    assert tags_of(aws, staging)["rollback-bot:environment"] == "staging"
    # A wrong setting is exit 2 with one line (development has no rds_instance_id).
    capsys.readouterr()
    assert main(["snapshot", "--config", str(bot.config_path), "--env", "development"]) == 2
    assert "Environment development has no rds_instance_id" in capsys.readouterr().err


def test_backups_off_and_a_lagging_restorable_time_are_wrong(
    bot_factory,
    project,  # noqa: F811 - the fixture
    aws,
    aws_proxy,
    pg_url,
    monkeypatch,
):
    make_instance(aws, PRODUCTION_DB, retention=30)
    make_instance(aws, STAGING_DB, retention=0)  # automated backups off
    monkeypatch.setenv("STAGING_DATABASE_URL", pg_url)
    bot = bot_factory(
        production_extra=f'migrations_dir = "{project}"\nrds_instance_id = "{PRODUCTION_DB}"',
        staging_extra=f'rds_instance_id = "{STAGING_DB}"',
    )
    pitr = "*Point-in-time*: expected continuous: latest restorable time within 15 min; found"

    aws_proxy.restorable_until(PRODUCTION_DB, datetime.now(UTC) - timedelta(minutes=10))
    audit = reply(bot, "backups --env production")
    assert ":white_check_mark: *RDS Automated*: expected 30 days; found 30 days" in audit
    assert f":white_check_mark: {pitr} latest restorable " in audit and "(10 min ago)" in audit

    aws_proxy.restorable_until(PRODUCTION_DB, datetime.now(UTC) - timedelta(minutes=40))
    audit = reply(bot, "backups --env production")
    assert f":x: {pitr} latest restorable " in audit and "(40 min ago)" in audit

    audit = reply(bot, "backups --env staging")
    assert (
        ":x: *RDS Automated*: expected 7 days; found off (retention 0): shorter than the"
        " runbook's 7 days; set the instance's backup retention period to 7" in audit
    )
    assert f":x: {pitr} no restorable time" in audit
