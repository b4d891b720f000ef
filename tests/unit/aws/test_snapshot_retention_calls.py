"""The retention review's RDS calls against moto over HTTP: every manual snapshot of the
account listed with its tags and type, one described again (None once it is gone), and the
deletion of a manual snapshot."""

from __future__ import annotations

from datetime import date

from bot.aws.snapshots import (
    create_pre_migration_snapshot,
    delete_snapshot,
    describe_snapshot,
    manual_snapshots,
    pre_migration_tags,
)
from tests.scenario.test_backups import make_instance


def test_list_describe_and_delete(aws):
    make_instance(aws, "db-a", retention=7)
    make_instance(aws, "db-b", retention=7)
    tags = pre_migration_tags("production", date(2026, 1, 1), ["m1"])
    create_pre_migration_snapshot("db-a", "db-a-pre-migration-1", tags)
    aws.client("rds").create_db_snapshot(DBInstanceIdentifier="db-b", DBSnapshotIdentifier="db-b-x")

    listed = {s.id: s for s in manual_snapshots(None)}
    assert set(listed) == {"db-a-pre-migration-1", "db-b-x"}
    assert listed["db-a-pre-migration-1"].by_the_bot
    assert listed["db-a-pre-migration-1"].retain_until == date(2026, 1, 1)
    assert listed["db-b-x"].tags == {} and listed["db-b-x"].snapshot_type == "manual"
    assert [s.id for s in manual_snapshots("db-b")] == ["db-b-x"]

    again = describe_snapshot("db-a-pre-migration-1")
    assert again.tags == listed["db-a-pre-migration-1"].tags
    assert again.instance_id == "db-a" and again.status == "available"
    assert describe_snapshot("no-such-snapshot") is None

    delete_snapshot("db-a-pre-migration-1")
    gone = describe_snapshot("db-a-pre-migration-1")
    assert gone is None or gone.status == "deleting"
    assert {s.id for s in manual_snapshots(None) if s.status != "deleting"} == {"db-b-x"}
