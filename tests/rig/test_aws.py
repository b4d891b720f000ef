"""The AWS half of the rig: moto over HTTP, reached through AWS_ENDPOINT_URL only."""

from __future__ import annotations

import os
from urllib.parse import urlsplit

import boto3
import pytest

from tests.rig.aws import AwsRig


def _instance_ids(rds) -> list[str]:
    return [db["DBInstanceIdentifier"] for db in rds.describe_db_instances()["DBInstances"]]


def test_environment_points_boto3_at_moto(aws: AwsRig) -> None:
    parts = urlsplit(aws.endpoint)
    assert parts.scheme == "http" and parts.hostname == "127.0.0.1" and parts.port
    assert os.environ["AWS_ENDPOINT_URL"] == aws.endpoint
    assert os.environ["AWS_REGION"] == os.environ["AWS_DEFAULT_REGION"] == "us-east-1"
    assert "AWS_PROFILE" not in os.environ and "AWS_SESSION_TOKEN" not in os.environ
    for name in ("AWS_CONFIG_FILE", "AWS_SHARED_CREDENTIALS_FILE"):
        with open(os.environ[name]) as f:
            assert f.read() == ""
    # boto3 itself resolves the endpoint from AWS_ENDPOINT_URL: the rig's client and a plain
    # boto3.client() (what app code does) both end up on moto.
    for client in (aws.client("rds"), boto3.client("secretsmanager")):
        assert client.meta.endpoint_url == aws.endpoint
        assert client.meta.region_name == "us-east-1"
    creds = boto3.session.Session().get_credentials()
    assert creds is not None and creds.method == "env"


def test_rds_instance_and_snapshot(aws: AwsRig) -> None:
    rds = aws.client("rds")
    created = rds.create_db_instance(
        DBInstanceIdentifier="orders-prod",
        DBInstanceClass="db.t3.micro",
        Engine="postgres",
        EngineVersion="16.3",
        AllocatedStorage=20,
        MasterUsername="app",
        MasterUserPassword="not-a-real-password",
    )["DBInstance"]
    assert created["DBInstanceIdentifier"] == "orders-prod"
    assert created["Engine"] == "postgres"

    described = rds.describe_db_instances(DBInstanceIdentifier="orders-prod")["DBInstances"]
    assert [db["DBInstanceIdentifier"] for db in described] == ["orders-prod"]
    assert described[0]["DBInstanceClass"] == "db.t3.micro"

    snapshot = rds.create_db_snapshot(
        DBSnapshotIdentifier="orders-prod-before-rollback", DBInstanceIdentifier="orders-prod"
    )["DBSnapshot"]
    assert snapshot["DBSnapshotIdentifier"] == "orders-prod-before-rollback"
    assert snapshot["DBInstanceIdentifier"] == "orders-prod"
    # Like RDS (backup retention > 0), moto also keeps an automated "rds:..." snapshot.
    snapshots = rds.describe_db_snapshots(
        DBInstanceIdentifier="orders-prod", SnapshotType="manual"
    )["DBSnapshots"]
    assert [s["DBSnapshotIdentifier"] for s in snapshots] == ["orders-prod-before-rollback"]
    assert snapshots[0]["Engine"] == "postgres"

    with pytest.raises(rds.exceptions.DBInstanceNotFoundFault):
        rds.describe_db_instances(DBInstanceIdentifier="no-such-db")


def test_secrets_manager_round_trip(aws: AwsRig) -> None:
    sm = aws.client("secretsmanager")
    arn = sm.create_secret(Name="rollback-bot/db", SecretString='{"password": "s3cret"}')["ARN"]
    assert ":us-east-1:" in arn
    got = sm.get_secret_value(SecretId="rollback-bot/db")
    assert got["SecretString"] == '{"password": "s3cret"}'
    assert got["ARN"] == arn
    with pytest.raises(sm.exceptions.ResourceNotFoundException):
        sm.get_secret_value(SecretId="rollback-bot/missing")


@pytest.mark.parametrize("round_", [1, 2])
def test_state_is_reset_between_tests(aws: AwsRig, round_: int) -> None:
    # Both rounds check, then leave resources behind: whichever runs second fails if the
    # fixture did not reset moto.
    rds, sm = aws.client("rds"), aws.client("secretsmanager")
    assert _instance_ids(rds) == []
    assert sm.list_secrets()["SecretList"] == []
    rds.create_db_instance(
        DBInstanceIdentifier="leftover",
        DBInstanceClass="db.t3.micro",
        Engine="postgres",
        AllocatedStorage=20,
        MasterUsername="app",
        MasterUserPassword="not-a-real-password",
    )
    sm.create_secret(Name="leftover", SecretString=str(round_))
    assert _instance_ids(rds) == ["leftover"]


def test_reset_forgets_everything(aws: AwsRig) -> None:
    sm = aws.client("secretsmanager")
    sm.create_secret(Name="temp", SecretString="x")
    aws.reset()
    assert sm.list_secrets()["SecretList"] == []
