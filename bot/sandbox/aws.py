"""A local AWS for the sandbox: moto's ThreadedMotoServer on 127.0.0.1 with a demo RDS
instance, its snapshots and the database secret, reached by boto3 through
AWS_ENDPOINT_URL (botocore >= 1.31 reads it for every service), so the bot's own AWS code
runs unchanged.

moto's RDS instances have no database behind them; the instance is created with the local
PostgreSQL's port and PGHOSTADDR=127.0.0.1 makes libpq connect to 127.0.0.1 whatever host
name a URL carries (libpq: PGHOSTADDR is the default hostaddr), so a "restored" instance's
endpoint reaches the local server too.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import socket
from dataclasses import dataclass
from pathlib import Path

import boto3

REGION = "us-east-1"
INSTANCE_ID = "sandbox-production"
SECRET_ID = "sandbox/production/database"
# moto accepts any credentials; these are its documented dummies.
FAKE_CREDENTIALS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}


# Host names the sandbox (and the tests) resolve without DNS: PITR's cleanup compares the
# secret's URL with the old instance's endpoint by address (bot/aws/addresses.py). A test
# adds names here (an IP-address URL, a CNAME-like name) for its own case.
HOSTS: dict[str, str] = {"localhost": "127.0.0.1"}


def resolve(host: str, port: int) -> list[str]:
    """``[pitr] resolver = "bot.sandbox.aws:resolve"``: a name in HOSTS, or one of moto's
    RDS endpoint names (``<id>.aaaaaaaaaa.<region>.rds.amazonaws.com``, ``<proxy>.db-proxy-
    ...``) as a loopback address of its own, stable for the name; anything else does not
    resolve. Never real DNS."""
    if host in HOSTS:
        return [HOSTS[host]]
    if host.endswith(".rds.amazonaws.com"):
        digest = hashlib.sha256(host.encode()).digest()
        return [f"127.{digest[0]}.{digest[1]}.{max(digest[2], 2)}"]
    raise socket.gaierror(socket.EAI_NONAME, f"{host} is not a sandbox name")


@dataclass
class LocalAws:
    endpoint: str
    instance_id: str
    secret_id: str
    snapshots: list[str]
    _server: object

    def stop(self) -> None:
        self._server.stop()


def point_boto3_at(endpoint: str, workdir: Path) -> None:
    """This process's boto3 talks to moto only, whatever the machine's AWS config says."""
    for name in list(os.environ):
        # Profiles, session tokens and AWS_ENDPOINT_URL_<SERVICE> (which would win over
        # AWS_ENDPOINT_URL) must not leak in from the user's shell.
        if name.startswith("AWS_"):
            del os.environ[name]
    empty = workdir / "aws-empty-config"
    empty.write_text("")
    os.environ.update(
        {
            "AWS_ENDPOINT_URL": endpoint,
            **FAKE_CREDENTIALS,
            "AWS_DEFAULT_REGION": REGION,
            "AWS_REGION": REGION,
            "AWS_CONFIG_FILE": str(empty),
            "AWS_SHARED_CREDENTIALS_FILE": str(empty),
            # Never fall through to the EC2 instance metadata service.
            "AWS_EC2_METADATA_DISABLED": "true",
            "PGHOSTADDR": "127.0.0.1",
        }
    )
    # botocore honours HTTP(S)_PROXY for the endpoint too; 127.0.0.1 must bypass any proxy.
    for name in ("NO_PROXY", "no_proxy"):
        current = os.environ.get(name, "")
        os.environ[name] = ",".join(filter(None, [current, "127.0.0.1", "localhost"]))
    boto3.DEFAULT_SESSION = None


def start_aws(workdir: Path, pg_port: int, production_url: str) -> LocalAws:
    from moto.server import ThreadedMotoServer

    # werkzeug (under moto) logs every request to stderr; the sandbox's output stays readable.
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    # Port 0: the OS picks a free port at bind time; get_host_and_port() reports it.
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    point_boto3_at(endpoint, workdir)
    _create_instance(pg_port)
    rds = boto3.client("rds")
    snapshots = []
    for name in ("sandbox-production-before-release", "sandbox-production-nightly"):
        rds.create_db_snapshot(DBInstanceIdentifier=INSTANCE_ID, DBSnapshotIdentifier=name)
        snapshots.append(name)
    boto3.client("secretsmanager").create_secret(
        Name=SECRET_ID,
        Description="sandbox production database",
        SecretString=json.dumps({"url": production_url}),
    )
    return LocalAws(endpoint, INSTANCE_ID, SECRET_ID, snapshots, server)


def _create_instance(pg_port: int) -> None:
    """The production instance, with its own network and parameter group, as on AWS."""
    ec2 = boto3.client("ec2")
    vpc = ec2.create_vpc(CidrBlock="10.20.0.0/16")["Vpc"]["VpcId"]
    subnets = [
        ec2.create_subnet(VpcId=vpc, CidrBlock=f"10.20.{n}.0/24", AvailabilityZone=f"{REGION}{z}")[
            "Subnet"
        ]["SubnetId"]
        for n, z in ((1, "a"), (2, "b"))
    ]
    group = ec2.create_security_group(GroupName="db-access", Description="db", VpcId=vpc)
    rds = boto3.client("rds")
    rds.create_db_subnet_group(
        DBSubnetGroupName="sandbox-db-subnets", DBSubnetGroupDescription="db", SubnetIds=subnets
    )
    rds.create_db_parameter_group(
        DBParameterGroupName="sandbox-pg15", DBParameterGroupFamily="postgres15", Description="db"
    )
    rds.create_db_instance(
        DBInstanceIdentifier=INSTANCE_ID,
        DBInstanceClass="db.t4g.medium",
        Engine="postgres",
        MasterUsername="sandbox_admin",
        MasterUserPassword="not-a-real-password",
        AllocatedStorage=20,
        Port=pg_port,
        BackupRetentionPeriod=7,
        VpcSecurityGroupIds=[group["GroupId"]],
        DBSubnetGroupName="sandbox-db-subnets",
        DBParameterGroupName="sandbox-pg15",
        Tags=[{"Key": "env", "Value": "production"}],
    )
