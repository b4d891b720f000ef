"""The region as botocore really reads it (AWS_REGION honoured explicitly), and failed AWS
calls counted on /metrics, against moto over HTTP."""

from __future__ import annotations

import pytest
from botocore.exceptions import NoRegionError

from bot.aws.rds import aws_call, aws_client
from bot.errors import NotFound
from bot.metrics import AWS_ERRORS


def test_botocore_alone_ignores_aws_region(aws, monkeypatch):
    """Why the bot reads AWS_REGION itself: botocore does not."""
    monkeypatch.delenv("AWS_DEFAULT_REGION")
    monkeypatch.setenv("AWS_REGION", "eu-west-3")
    with pytest.raises(NoRegionError):
        aws.client("rds")


def test_aws_region_alone_is_honoured(aws, monkeypatch):
    monkeypatch.delenv("AWS_DEFAULT_REGION")
    monkeypatch.setenv("AWS_REGION", "eu-west-3")
    client = aws_client("rds")
    assert client.meta.region_name == "eu-west-3"
    client.describe_db_instances()  # reaches moto in that region


def test_aws_default_region_wins_as_botocore_has_it(aws, monkeypatch):
    monkeypatch.setenv("AWS_DEFAULT_REGION", "ap-south-1")
    monkeypatch.setenv("AWS_REGION", "eu-west-3")
    assert aws_client("secretsmanager").meta.region_name == "ap-south-1"


def test_a_failed_aws_call_is_counted_with_its_code(aws):
    labels = ("rds", "DescribeDBInstances", "DBInstanceNotFound")
    before = AWS_ERRORS.labels(*labels)._value.get()
    with pytest.raises(NotFound), aws_call("describe the instance"):
        aws_client("rds").describe_db_instances(DBInstanceIdentifier="no-such-instance")
    assert AWS_ERRORS.labels(*labels)._value.get() == before + 1
