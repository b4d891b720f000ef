"""bot/aws/rds.py and bot/aws/secrets_manager.py against moto's server (the aws fixture)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import boto3
import pytest
from botocore.stub import Stubber

from bot.aws import rds, secrets_manager
from bot.errors import ConflictError, NotFound, UserError
from bot.redaction import Secret


def now() -> datetime:
    return datetime.now(UTC)


# --- snapshots ---------------------------------------------------------------------------


def test_lists_automated_and_manual_snapshots_of_the_instance_only(aws, source):
    client = aws.client("rds")
    for n in range(3):
        client.create_db_snapshot(
            DBInstanceIdentifier=source.id, DBSnapshotIdentifier=f"manual-{n}"
        )
    client.create_db_instance(
        DBInstanceIdentifier="other-db", DBInstanceClass="db.t3.micro", Engine="postgres"
    )
    client.create_db_snapshot(DBInstanceIdentifier="other-db", DBSnapshotIdentifier="other-1")

    snapshots = rds.list_snapshots(source.id)

    kinds = {s.id: s.type for s in snapshots}
    # moto takes an automated snapshot "rds:<id>-<yyyy-mm-dd-hh-mm>" when the instance is made.
    assert [k for k in kinds if k.startswith(f"rds:{source.id}-")]
    assert {k: v for k, v in kinds.items() if k.startswith("manual")} == {
        f"manual-{n}": "manual" for n in range(3)
    }
    assert "other-1" not in kinds
    assert set(kinds.values()) == {"automated", "manual"}
    assert [s.created for s in snapshots] == sorted(s.created for s in snapshots)


def test_snapshot_listing_follows_the_marker_across_pages():
    # moto returns every snapshot in one page (no Marker), so the paging is exercised with
    # botocore's Stubber on a real client: two pages joined, the Marker passed back.
    client = boto3.client(
        "rds", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x"
    )
    t0 = datetime(2026, 1, 1, tzinfo=UTC)

    def snap(n):
        return {
            "DBSnapshotIdentifier": f"s{n}",
            "SnapshotType": "manual",
            "Status": "available",
            "SnapshotCreateTime": t0 + timedelta(hours=n),
            "DBInstanceIdentifier": "db1",
        }

    with Stubber(client) as stub:
        stub.add_response(
            "describe_db_snapshots",
            {"DBSnapshots": [snap(2), snap(1)], "Marker": "page-2"},
            {"DBInstanceIdentifier": "db1", "MaxRecords": 100},
        )
        stub.add_response(
            "describe_db_snapshots",
            {"DBSnapshots": [snap(3)]},
            {"DBInstanceIdentifier": "db1", "MaxRecords": 100, "Marker": "page-2"},
        )
        snapshots = rds.list_snapshots("db1", client)
        stub.assert_no_pending_responses()
    assert [s.id for s in snapshots] == ["s1", "s2", "s3"]
    assert rds.latest_snapshot_before(snapshots, t0 + timedelta(hours=2, minutes=5)).id == "s2"
    assert rds.latest_snapshot_before(snapshots, t0) is None


def test_recovery_window_and_restore_time_checks(aws, source):
    instance = rds.describe_instance(source.id)
    window = rds.RecoveryWindow.of(instance)
    assert window.retention_days == 7
    assert window.latest is not None and window.latest - window.earliest == timedelta(days=7)
    assert rds.check_restore_time(window, window.latest - timedelta(hours=1)) is None
    assert "after the latest restorable time" in rds.check_restore_time(
        window, window.latest + timedelta(minutes=5)
    )
    assert "before the earliest" in rds.check_restore_time(window, now() - timedelta(days=8))


def test_suggested_restore_point_is_the_migration_start_minus_the_margin():
    started = datetime(2026, 3, 2, 14, 30, tzinfo=UTC)
    point = rds.suggest_restore_point("20260302_drop_users", started, 5, now())
    assert point.at == started - timedelta(minutes=5)
    assert "20260302_drop_users" in point.reason
    fallback = rds.suggest_restore_point(None, None, 5, datetime(2026, 3, 2, 15, 0, tzinfo=UTC))
    assert fallback.at == datetime(2026, 3, 2, 14, 55, tzinfo=UTC)


# --- backup snapshot reuse ------------------------------------------------------------------


def test_a_recent_manual_snapshot_is_reused_an_old_or_automated_one_is_not(aws, source):
    snapshots = rds.list_snapshots(source.id)
    # Only the automated snapshot exists: it never counts as the backup.
    assert rds.recent_manual_snapshot(snapshots, 60, now()) is None
    aws.client("rds").create_db_snapshot(
        DBInstanceIdentifier=source.id, DBSnapshotIdentifier="before-deploy"
    )
    snapshots = rds.list_snapshots(source.id)
    reused = rds.recent_manual_snapshot(snapshots, 60, now())
    assert reused is not None and reused.id == "before-deploy"
    # The same snapshot seen two hours later is too old for a 60 minute limit.
    assert rds.recent_manual_snapshot(snapshots, 60, now() + timedelta(hours=2)) is None


def test_create_backup_snapshot(aws, source):
    snapshot_id = rds.backup_snapshot_id(source.id, datetime(2026, 3, 2, 14, 30, 5, tzinfo=UTC))
    assert snapshot_id == f"{source.id}-before-pitr-20260302143005"
    rds.create_snapshot(source.id, snapshot_id)
    assert rds.snapshot_status(snapshot_id) == "available"
    with pytest.raises(UserError, match="DBSnapshotAlreadyExists"):
        rds.create_snapshot(source.id, snapshot_id)


# --- restore ----------------------------------------------------------------------------------


def _plan(source_instance, mode="time", **kw):
    values = {
        "operation_id": "op-1",
        "source": source_instance.id,
        "target": f"{source_instance.id}-recovery-202603021425",
        "instance_class": "db.t3.medium",
        "mode": mode,
        "snapshot_id": None,
        "restore_time": now() - timedelta(minutes=10),
        "settings": source_instance.copied_settings(),
    }
    values.update(kw)
    return rds.RestorePlan(**values)


def _assert_copied(restored: rds.Instance, source_instance: rds.Instance, op_id: str) -> None:
    assert restored.vpc_security_group_ids == source_instance.vpc_security_group_ids
    assert restored.subnet_group == source_instance.subnet_group == "skillancer-db-subnets"
    assert restored.parameter_group == source_instance.parameter_group == "skillancer-pg15"
    assert restored.multi_az is True
    assert restored.instance_class == "db.t3.medium"
    tags = dict(restored.tags)
    assert tags["team"] == "platform" and tags["env"] == "production"
    assert tags[rds.OPERATION_TAG] == op_id


def test_point_in_time_restore_copies_network_parameters_multi_az_and_tags(aws, source):
    src = rds.describe_instance(source.id)
    assert src.vpc_security_group_ids == (source.security_group,)

    rds.start_restore(_plan(src))
    restored = rds.describe_instance(f"{source.id}-recovery-202603021425")
    _assert_copied(restored, src, "op-1")


def test_snapshot_restore_copies_the_settings_too(aws, source):
    # moto, like RDS, gives a snapshot restore the default security group and parameter
    # group unless they are passed: the very trap the restore plan avoids.
    client = aws.client("rds")
    client.create_db_snapshot(DBInstanceIdentifier=source.id, DBSnapshotIdentifier="nightly")
    client.restore_db_instance_from_db_snapshot(
        DBInstanceIdentifier="naive-restore", DBSnapshotIdentifier="nightly"
    )
    naive = rds.describe_instance("naive-restore")
    src = rds.describe_instance(source.id)
    assert naive.vpc_security_group_ids != src.vpc_security_group_ids
    assert naive.parameter_group != "skillancer-pg15"

    rds.start_restore(_plan(src, mode="snapshot", snapshot_id="nightly", restore_time=None))
    _assert_copied(rds.describe_instance(f"{source.id}-recovery-202603021425"), src, "op-1")


def test_restore_is_safe_to_repeat_for_its_own_operation_only(aws, source):
    src = rds.describe_instance(source.id)
    first = rds.start_restore(_plan(src))
    again = rds.start_restore(_plan(src))  # a rerun after a restart
    assert again.id == first.id
    with pytest.raises(ConflictError, match="already exists; nothing was restored"):
        rds.start_restore(_plan(src, operation_id="op-2"))


def test_restore_progress_reports_status_and_events(aws, source):
    src = rds.describe_instance(source.id)
    since = now() - timedelta(seconds=5)
    rds.start_restore(_plan(src))
    progress = rds.restore_progress(f"{source.id}-recovery-202603021425", since)
    assert progress.ready and not progress.failed
    assert progress.address and progress.port == source.port
    assert any("created" in message for _, message in progress.events)


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        ("", "empty"),
        ("1db", "start with a letter"),
        ("db--recovery", "two consecutive hyphens"),
        ("db-recovery-", "end with a hyphen"),
        ("db_recovery", "letters, digits and hyphens"),
        ("d" * 64, "at most 63"),
    ],
)
def test_bad_identifiers_are_refused_before_any_call(value, problem):
    assert problem in rds.identifier_problem(value)
    with pytest.raises(UserError, match="not a valid DB instance identifier"):
        rds.check_identifier(value)


def test_good_identifier_is_lowercased():
    assert rds.check_identifier("Skillancer-Production-Recovery-1") == (
        "skillancer-production-recovery-1"
    )


def test_unknown_instance_and_snapshot_give_clear_errors_and_change_nothing(aws, source):
    with pytest.raises(NotFound, match="no RDS DB instance `nope-db`"):
        rds.describe_instance("nope-db")
    src = rds.describe_instance(source.id)
    plan = _plan(src, mode="snapshot", snapshot_id="no-such-snapshot", restore_time=None)
    with pytest.raises(NotFound, match="DBSnapshotNotFound"):
        rds.start_restore(plan)
    ids = [
        i["DBInstanceIdentifier"] for i in aws.client("rds").describe_db_instances()["DBInstances"]
    ]
    assert ids == [source.id]


def test_cleanup_always_keeps_a_final_snapshot(aws, source):
    rds.delete_with_final_snapshot(source.id, f"{source.id}-final-1")
    client = aws.client("rds")
    assert rds.find_instance(source.id) is None
    final = client.describe_db_snapshots(DBSnapshotIdentifier=f"{source.id}-final-1")
    assert final["DBSnapshots"][0]["SnapshotType"] == "manual"


# --- secrets: switch and exact undo -----------------------------------------------------------


def _secret(aws, url):
    client = aws.client("secretsmanager")
    value = {"url": url, "pool_size": 10}
    client.create_secret(Name="skillancer/production/database", SecretString=json.dumps(value))
    return client


def _current(client):
    return client.get_secret_value(
        SecretId="skillancer/production/database", VersionStage="AWSCURRENT"
    )


def test_switch_keeps_other_keys_and_undo_restores_the_exact_previous_version(aws):
    old = "postgresql://app:s3cret@old-host.rds.amazonaws.com:5432/skillancer?schema=public"
    client = _secret(aws, old)
    before = _current(client)
    new_url = secrets_manager.url_with_endpoint(Secret(old), "recovery.rds.amazonaws.com", 6543)
    assert new_url.reveal() == (
        "postgresql://app:s3cret@recovery.rds.amazonaws.com:6543/skillancer?schema=public"
    )
    # Shown as host:port/database: never a URL (its query may carry a password).
    assert secrets_manager.shown(new_url) == "recovery.rds.amazonaws.com:6543/skillancer"

    switch = secrets_manager.switch_url("skillancer/production/database", new_url, "op-1")
    after = _current(client)
    assert switch.previous_version_id == before["VersionId"]
    assert switch.switched_version_id == after["VersionId"] != before["VersionId"]
    assert json.loads(after["SecretString"]) == {"url": new_url.reveal(), "pool_size": 10}
    assert (
        "AWSPREVIOUS"
        in client.get_secret_value(
            SecretId="skillancer/production/database", VersionId=before["VersionId"]
        )["VersionStages"]
    )
    # Switching again for the same operation is refused, not a second version.
    with pytest.raises(ConflictError):
        secrets_manager.switch_url("skillancer/production/database", new_url, "op-1")

    assert "current again" in secrets_manager.undo_switch(switch)
    restored = _current(client)
    assert restored["VersionId"] == before["VersionId"]
    assert restored["SecretString"] == before["SecretString"]
    assert secrets_manager.undo_switch(switch).startswith("already undone")


def test_undo_refuses_when_someone_changed_the_secret_since(aws):
    client = _secret(aws, "postgresql://app:pw@old:5432/db")
    switch = secrets_manager.switch_url(
        "skillancer/production/database", Secret("postgresql://app:pw@new:5432/db"), "op-1"
    )
    client.put_secret_value(
        SecretId="skillancer/production/database", SecretString='{"url": "postgresql://x"}'
    )
    with pytest.raises(ConflictError, match="changed after the switch"):
        secrets_manager.undo_switch(switch)
    assert json.loads(_current(client)["SecretString"]) == {"url": "postgresql://x"}


def test_a_secret_without_url_is_refused_before_writing(aws):
    client = aws.client("secretsmanager")
    client.create_secret(Name="s", SecretString='{"host": "x"}')
    with pytest.raises(UserError, match='not JSON with a "url" key'):
        secrets_manager.switch_url("s", Secret("postgresql://a@b/c"), "op-1")
    assert len(client.list_secret_version_ids(SecretId="s")["Versions"]) == 1
