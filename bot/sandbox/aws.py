"""A local AWS for the sandbox: moto's ThreadedMotoServer on 127.0.0.1 with a demo RDS
instance, its snapshots and the database secret, reached by boto3 through
AWS_ENDPOINT_URL (botocore >= 1.31 reads it for every service), so the bot's own AWS code
runs unchanged.

moto's RDS instances have no database behind them. The production secret's URL names the
local PostgreSQL on 127.0.0.1; each RDS endpoint name resolves, in this process only, to a
loopback address of its own (``resolve``, installed by ``install_hosts``: the sandbox's
hosts file), and a restore that moto completes gets a real database at that address
(``simulate_restores``, bot/sandbox/restores.py).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import socket
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

import boto3

if TYPE_CHECKING:
    from bot.sandbox.restores import PointInTime

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
        }
    )
    # A restored instance has an address of its own (install_hosts); a PGHOSTADDR from the
    # user's shell would send every connection elsewhere.
    os.environ.pop("PGHOSTADDR", None)
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
    boto3.client("secretsmanager").create_secret(
        Name=SECRET_ID,
        Description="sandbox production database",
        SecretString=json.dumps({"url": production_url}),
    )
    return LocalAws(endpoint, INSTANCE_ID, SECRET_ID, [], server)


def take_snapshot(aws: LocalAws, name: str) -> None:
    boto3.client("rds").create_db_snapshot(
        DBInstanceIdentifier=INSTANCE_ID, DBSnapshotIdentifier=name
    )
    aws.snapshots.append(name)


_system_getaddrinfo = socket.getaddrinfo


def install_hosts() -> None:
    """This process resolves moto's RDS endpoint names as ``resolve`` does, without DNS
    (psycopg resolves a URL's host with socket.getaddrinfo before libpq connects); every
    other name is looked up as before. The sandbox process only: never in the test suite."""

    def getaddrinfo(host, port, *args, **kwargs):
        if isinstance(host, str) and host.endswith(".rds.amazonaws.com"):
            host = resolve(host, port)[0]
        return _system_getaddrinfo(host, port, *args, **kwargs)

    socket.getaddrinfo = getaddrinfo


def simulate_restores(pitr: PointInTime) -> None:
    """moto's RDS backend, in this process, does what RDS does with the data too: a snapshot
    of the production instance keeps a copy of its database, and a restore of it (to a
    point in time, or from a snapshot) completes with a database holding that data at the
    restored instance's address (bot/sandbox/restores.py). moto answers the same."""
    from moto.core import DEFAULT_ACCOUNT_ID
    from moto.rds.models import rds_backends

    backend = rds_backends[DEFAULT_ACCOUNT_ID][REGION]
    create_snapshot = backend.create_db_snapshot
    to_point_in_time = backend.restore_db_instance_to_point_in_time
    from_snapshot = backend.restore_db_instance_from_db_snapshot

    def _create_snapshot(*args, **kwargs):
        snapshot = create_snapshot(*args, **kwargs)
        if snapshot.database.db_instance_identifier == INSTANCE_ID:
            pitr.take_for_snapshot(snapshot.db_snapshot_identifier)
        return snapshot

    def _to_point_in_time(source, target, overrides):
        instance = to_point_in_time(source, target, overrides)
        if source == INSTANCE_ID:
            _restored(pitr, instance, pitr.copy_at(_restore_time(overrides)))
        return instance

    def _from_snapshot(snapshot_id, overrides):
        instance = from_snapshot(snapshot_id, overrides)
        snapshot = backend.describe_db_snapshots(None, snapshot_id)[0]
        if snapshot.database.db_instance_identifier == INSTANCE_ID:
            # A snapshot the sandbox copied has its own copy; moto's automated one (taken
            # when the instance was created) holds the data valid at its time.
            copy = pitr.snapshots.get(snapshot.db_snapshot_identifier)
            _restored(pitr, instance, copy or pitr.copy_at(_moment(snapshot.created)))
        return instance

    backend.create_db_snapshot = _create_snapshot
    backend.restore_db_instance_to_point_in_time = _to_point_in_time
    backend.restore_db_instance_from_db_snapshot = _from_snapshot


def _restore_time(overrides: dict) -> datetime:
    value = overrides.get("RestoreTime") or overrides.get("restore_time")
    if not value or overrides.get("UseLatestRestorableTime"):
        return datetime.now(UTC)
    return _moment(value)


def _moment(value) -> datetime:
    """A datetime or ISO 8601 text (moto keeps both) as an aware UTC datetime."""
    if not isinstance(value, datetime):
        value = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def _restored(pitr: PointInTime, instance, copy) -> None:
    (address,) = resolve(instance.address, instance.port)
    pitr.restore(instance.db_instance_identifier, address, instance.port, copy)


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
