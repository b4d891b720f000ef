"""CloudWatch: how many connections an RDS instance had lately (AWS/RDS DatabaseConnections,
published every minute for a running instance; RDS User Guide, "Amazon CloudWatch metrics
for Amazon RDS"). PITR's cleanup refuses an instance that still has connections."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from bot.aws.rds import aws_call, aws_client


def most_connections(instance_id: str, until: datetime, minutes: float, client: Any = None):
    """The highest DatabaseConnections of the instance over the last ``minutes`` (one-minute
    maxima), or None when CloudWatch has no datapoint for that window."""
    client = client or aws_client("cloudwatch")
    with aws_call(f"read the DatabaseConnections metric of {instance_id}"):
        points = client.get_metric_statistics(
            Namespace="AWS/RDS",
            MetricName="DatabaseConnections",
            Dimensions=[{"Name": "DBInstanceIdentifier", "Value": instance_id}],
            StartTime=until - timedelta(minutes=minutes),
            EndTime=until,
            Period=60,
            Statistics=["Maximum"],
        )["Datapoints"]
    return max((p["Maximum"] for p in points), default=None)
