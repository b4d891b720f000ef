"""An RDS source instance in moto with non-default settings everywhere, so a restore that
silently fell back to defaults is visible."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta


@dataclass
class SourceInstance:
    id: str
    security_group: str
    subnet_group: str
    parameter_group: str
    port: int


def make_source(aws, instance_id: str = "skillancer-production", port: int = 5432):
    ec2 = aws.client("ec2")
    vpc = ec2.create_vpc(CidrBlock="10.20.0.0/16")["Vpc"]["VpcId"]
    subnets = [
        ec2.create_subnet(VpcId=vpc, CidrBlock=f"10.20.{n}.0/24", AvailabilityZone=f"us-east-1{z}")[
            "Subnet"
        ]["SubnetId"]
        for n, z in ((1, "a"), (2, "b"))
    ]
    group = ec2.create_security_group(GroupName="db-access", Description="db", VpcId=vpc)["GroupId"]
    rds = aws.client("rds")
    rds.create_db_subnet_group(
        DBSubnetGroupName="skillancer-db-subnets", DBSubnetGroupDescription="db", SubnetIds=subnets
    )
    rds.create_db_parameter_group(
        DBParameterGroupName="skillancer-pg15",
        DBParameterGroupFamily="postgres15",
        Description="tuned",
    )
    rds.create_db_instance(
        DBInstanceIdentifier=instance_id,
        DBInstanceClass="db.r6g.large",
        Engine="postgres",
        MasterUsername="skillancer_admin",
        MasterUserPassword="not-a-real-password",
        AllocatedStorage=50,
        Port=port,
        MultiAZ=True,
        BackupRetentionPeriod=7,
        VpcSecurityGroupIds=[group],
        DBSubnetGroupName="skillancer-db-subnets",
        DBParameterGroupName="skillancer-pg15",
        Tags=[{"Key": "team", "Value": "platform"}, {"Key": "env", "Value": "production"}],
    )
    return SourceInstance(instance_id, group, "skillancer-db-subnets", "skillancer-pg15", port)


def put_connections(aws, instance_id: str, *values: float) -> None:
    """CloudWatch's AWS/RDS DatabaseConnections of the instance, one value a minute back
    from now (the newest first): what RDS publishes for a running instance."""
    now = datetime.now(UTC)
    aws.client("cloudwatch").put_metric_data(
        Namespace="AWS/RDS",
        MetricData=[
            {
                "MetricName": "DatabaseConnections",
                "Dimensions": [{"Name": "DBInstanceIdentifier", "Value": instance_id}],
                "Timestamp": now - timedelta(minutes=n + 1),
                "Value": float(v),
            }
            for n, v in enumerate(values)
        ],
    )
