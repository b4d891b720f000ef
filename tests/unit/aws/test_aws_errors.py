"""AWS errors on the real wire: throttling is retried by botocore's standard retry mode,
permanent errors are not, and every one ends in a clear message with nothing changed.

moto never throttles and does not model InvalidRestoreFault, so these go through the
proxy (tests/unit/aws/aws_proxy.py), which answers with AWS's own error bodies; botocore's
retry handler and error parser run unchanged.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from bot.aws import rds, secrets_manager
from bot.errors import ConflictError, NotFound, UserError


def _plan(src: rds.Instance, **kw) -> rds.RestorePlan:
    values = {
        "operation_id": "op-1",
        "source": src.id,
        "target": f"{src.id}-recovery-1",
        "instance_class": "db.t3.medium",
        "mode": "time",
        "snapshot_id": None,
        "restore_time": datetime.now(UTC) - timedelta(minutes=10),
        "settings": src.copied_settings(),
    }
    return rds.RestorePlan(**(values | kw))


def _instances(aws) -> list[str]:
    rows = aws.client("rds").describe_db_instances()["DBInstances"]
    return sorted(r["DBInstanceIdentifier"] for r in rows)


def test_throttling_is_retried_then_succeeds(aws_proxy, source):
    aws_proxy.fail("DescribeDBSnapshots", "Throttling", "Rate exceeded")
    snapshots = rds.list_snapshots(source.id)
    assert snapshots  # moto's automated snapshot of the new instance
    assert aws_proxy.count("DescribeDBSnapshots") == 2  # refused once, retried once


def test_secrets_manager_throttling_is_retried_too(aws_proxy, aws):
    aws.client("secretsmanager").create_secret(Name="db", SecretString='{"url": "postgresql://x"}')
    aws_proxy.fail("GetSecretValue", "ThrottlingException", "Rate exceeded")
    assert secrets_manager.current_version("db").url.reveal() == "postgresql://x"
    assert aws_proxy.count("GetSecretValue") == 2


def test_throttling_that_outlasts_the_retries_gives_a_clear_message(aws_proxy, source):
    aws_proxy.fail("DescribeDBSnapshots", "Throttling", "Rate exceeded", times=10)
    # Two attempts keep the test under a second (backoff is up to 2^n seconds with jitter);
    # the bot's clients use rds.MAX_ATTEMPTS.
    client = rds.aws_client("rds", max_attempts=2)
    with pytest.raises(UserError) as error:
        rds.list_snapshots(source.id, client)
    assert error.value.code == "aws_throttled"
    assert "throttling" in error.value.message and "after 2 attempts" in error.value.message
    assert "Nothing was changed" in error.value.hint
    assert aws_proxy.count("DescribeDBSnapshots") == 2


def test_aws_invalid_restore_fault_is_not_retried_and_restores_nothing(aws_proxy, aws, source):
    src = rds.describe_instance(source.id)
    aws_proxy.fail(
        "RestoreDBInstanceToPointInTime",
        "InvalidRestoreFault",
        "Restore time is outside the restorable window.",
    )
    with pytest.raises(UserError) as error:
        rds.start_restore(_plan(src))
    assert "InvalidRestoreFault: Restore time is outside" in error.value.message
    assert "Nothing was restored" in error.value.hint
    assert aws_proxy.count("RestoreDBInstanceToPointInTime") == 1
    assert _instances(aws) == [source.id]


def test_aws_instance_already_exists_gives_a_clear_message(aws_proxy, aws, source):
    # Another restore can take the id between our look-up and the call: AWS refuses it.
    src = rds.describe_instance(source.id)
    aws_proxy.fail(
        "RestoreDBInstanceToPointInTime",
        "DBInstanceAlreadyExists",
        "DB instance already exists",
    )
    with pytest.raises(UserError) as error:
        rds.start_restore(_plan(src))
    assert "DBInstanceAlreadyExists" in error.value.message
    assert "Choose another target instance id" in error.value.hint
    assert aws_proxy.count("RestoreDBInstanceToPointInTime") == 1
    assert _instances(aws) == [source.id]


def test_an_existing_instance_that_is_not_ours_is_refused_before_any_restore(
    aws_proxy, aws, source
):
    src = rds.describe_instance(source.id)
    aws.client("rds").create_db_instance(
        DBInstanceIdentifier=f"{source.id}-recovery-1",
        DBInstanceClass="db.t3.micro",
        Engine="postgres",
    )
    with pytest.raises(ConflictError, match="already exists; nothing was restored"):
        rds.start_restore(_plan(src))
    assert aws_proxy.count("RestoreDBInstanceToPointInTime") == 0


def test_snapshot_not_found_restores_nothing(aws_proxy, aws, source):
    src = rds.describe_instance(source.id)
    plan = _plan(src, mode="snapshot", snapshot_id="gone-snapshot", restore_time=None)
    with pytest.raises(NotFound) as error:
        rds.start_restore(plan)
    assert "DBSnapshotNotFound" in error.value.message
    assert "Pick another snapshot" in error.value.hint
    assert aws_proxy.count("RestoreDBInstanceFromDBSnapshot") == 1  # not retried
    assert _instances(aws) == [source.id]


def test_restore_time_outside_the_window_is_refused_before_calling_aws(aws_proxy, source):
    window = rds.RecoveryWindow.of(rds.describe_instance(source.id))
    late = rds.check_restore_time(window, window.latest + timedelta(minutes=1))
    early = rds.check_restore_time(window, window.earliest - timedelta(minutes=1))
    assert "after the latest restorable time" in late
    assert "before the earliest restorable time" in early and "7 days" in early
    assert aws_proxy.count("RestoreDBInstanceToPointInTime") == 0


def test_errors_never_carry_the_secret_value(aws_proxy, aws):
    aws.client("secretsmanager").create_secret(
        Name="db", SecretString=json.dumps({"url": "postgresql://app:pw-123@h/db"})
    )
    aws_proxy.fail("PutSecretValue", "InternalServiceError", "boom", times=10, status=500)
    with pytest.raises(UserError) as error:
        secrets_manager.switch_url(
            "db",
            secrets_manager.Secret("postgresql://app:pw-123@new/db"),
            "op-1",
            secrets_manager.aws_client("secretsmanager", max_attempts=2),
        )
    assert "pw-123" not in str(error.value) and "InternalServiceError" in str(error.value)
    assert aws_proxy.count("PutSecretValue") == 2  # 5xx is transient: retried
