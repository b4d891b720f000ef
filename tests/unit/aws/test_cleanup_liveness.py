"""PITR cleanup's "is the old instance live?" against moto (RDS, Secrets Manager,
CloudWatch) over real HTTP: every way an instance can still be reached refuses, and a
substring of the URL decides nothing. Names resolve through the sandbox's loopback
resolver (bot.sandbox.aws.resolve), never real DNS."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from bot.aws import rds, secrets_manager
from bot.redaction import Secret
from bot.runbooks.pitr import liveness
from bot.sandbox import aws as sandbox_aws
from bot.settings import Config, Environment
from tests.unit.aws.source_instance import make_source, put_connections

OLD = "skillancer-production"
NEW = "skillancer-production-recovery"
SECRET = "skillancer/production/database"


@pytest.fixture
def switched(aws):
    """The old instance, the restored one, and the secret switched from one to the other."""
    make_source(aws, OLD)
    aws.client("rds").create_db_instance(
        DBInstanceIdentifier=NEW,
        DBInstanceClass="db.r6g.large",
        Engine="postgres",
        MasterUsername="admin",
        MasterUserPassword="not-a-real-password",
        AllocatedStorage=50,
    )
    old, new = rds.describe_instance(OLD), rds.describe_instance(NEW)
    url = f"postgresql://app:pw@{old.address}:{old.port}/app"
    aws.client("secretsmanager").create_secret(Name=SECRET, SecretString=json.dumps({"url": url}))
    return old, new, url


def switch_to(url: str, op: str = "op-1") -> dict:
    s = secrets_manager.switch_url(SECRET, Secret(url), op)
    return {
        "switch_secret_id": SECRET,
        "switch_previous_version": s.previous_version_id,
        "switch_version": s.switched_version_id,
    }


def config(configured: str = NEW) -> Config:
    env = Environment("production", True, database_secret_id=SECRET, rds_instance_id=configured)
    return Config(Path("x.toml"), "production", {"production": env}, Path("state.db"))


def verdict(old, p, cfg=None):
    return liveness.check(old, p, cfg or config(), sandbox_aws.resolve, datetime.now(UTC))


def joined(v) -> str:
    return " | ".join(v.reasons)


def test_switched_idle_and_unconfigured_is_not_live(aws, switched):
    old, new, _ = switched
    p = switch_to(f"postgresql://app:pw@{new.address}:{new.port}/app")
    put_connections(aws, OLD, 0, 0)
    v = verdict(old, p)
    assert v.reasons == []
    assert any("not `skillancer-production`'s endpoint" in f for f in v.facts)
    assert any("no database connection" in f for f in v.facts)


def test_an_undone_switch_refuses(aws, switched):
    old, new, _ = switched
    p = switch_to(f"postgresql://app:pw@{new.address}:{new.port}/app")
    put_connections(aws, OLD, 0)
    secrets_manager.undo_switch(
        secrets_manager.Switch(SECRET, p["switch_previous_version"], p["switch_version"])
    )
    assert "the switch was undone" in joined(verdict(old, p))


def test_a_secret_changed_after_the_switch_refuses(aws, switched):
    old, new, original = switched
    p = switch_to(f"postgresql://app:pw@{new.address}:{new.port}/app")
    put_connections(aws, OLD, 0)
    secrets_manager.switch_url(SECRET, Secret(original + "?x=1"), "someone-else")
    assert "changed after the switch" in joined(verdict(old, p))


@pytest.mark.parametrize("how", ["ip address", "cname-like host", "localhost-style name"])
def test_a_url_that_reaches_the_old_instance_by_another_name_refuses(
    aws, switched, how, monkeypatch
):
    old, _, _ = switched
    (address,) = sandbox_aws.resolve(old.address, old.port)
    host = {
        "ip address": address,
        "cname-like host": "db.internal.example",
        "localhost-style name": "db-primary.localhost",
    }[how]
    if how != "ip address":
        monkeypatch.setitem(sandbox_aws.HOSTS, host, address)
    url = f"postgresql://app:pw@{host}:{old.port}/app"
    assert old.address not in url  # the old substring check would have let it through
    put_connections(aws, OLD, 0)
    reasons = joined(verdict(old, switch_to(url)))
    assert f"`{host}` resolves to {address}, the address of `{OLD}`'s endpoint" in reasons


def test_same_address_other_port_is_another_server(aws, switched):
    old, _, _ = switched
    (address,) = sandbox_aws.resolve(old.address, old.port)
    put_connections(aws, OLD, 0)
    v = verdict(old, switch_to(f"postgresql://app:pw@{address}:{old.port + 1}/app"))
    assert v.reasons == []


def test_a_host_that_does_not_resolve_refuses(aws, switched):
    old, _, _ = switched
    put_connections(aws, OLD, 0)
    v = verdict(old, switch_to("postgresql://app:pw@db.nowhere.example:5432/app"))
    assert "`db.nowhere.example` does not resolve" in joined(v)


def test_an_rds_proxy_in_front_of_the_old_instance_refuses(aws, switched):
    old, new, _ = switched
    client = aws.client("rds")
    proxy = client.create_db_proxy(
        DBProxyName="skillancer-proxy",
        EngineFamily="POSTGRESQL",
        Auth=[
            {
                "AuthScheme": "SECRETS",
                "SecretArn": "arn:aws:secretsmanager:x",
                "IAMAuth": "DISABLED",
            }
        ],
        RoleArn="arn:aws:iam::123456789012:role/proxy",
        VpcSubnetIds=[
            s["SubnetIdentifier"]
            for s in client.describe_db_subnet_groups()["DBSubnetGroups"][0]["Subnets"]
        ],
    )["DBProxy"]
    client.register_db_proxy_targets(DBProxyName="skillancer-proxy", DBInstanceIdentifiers=[OLD])
    put_connections(aws, OLD, 0)
    # The secret names the proxy (a proxy-like name, not the instance's endpoint).
    reasons = joined(verdict(old, switch_to(f"postgresql://app:pw@{proxy['Endpoint']}:5432/app")))
    assert "RDS Proxy `skillancer-proxy`" in reasons and f"routes to `{OLD}`" in reasons
    # A proxy in front of the restored instance only is no reason.
    client.deregister_db_proxy_targets(DBProxyName="skillancer-proxy", DBInstanceIdentifiers=[OLD])
    client.register_db_proxy_targets(DBProxyName="skillancer-proxy", DBInstanceIdentifiers=[NEW])
    assert "RDS Proxy" not in joined(
        verdict(old, switch_to(f"postgresql://a:b@{new.address}/app", "op-2"))
    )


def test_connections_or_no_metric_refuse(aws, switched):
    old, new, _ = switched
    p = switch_to(f"postgresql://app:pw@{new.address}:{new.port}/app")
    assert "no DatabaseConnections datapoint" in joined(verdict(old, p))
    put_connections(aws, OLD, 0, 3, 0)
    assert "had up to 3 database connections" in joined(verdict(old, p))


def test_the_configured_instance_of_an_environment_refuses(aws, switched):
    old, new, _ = switched
    p = switch_to(f"postgresql://app:pw@{new.address}:{new.port}/app")
    put_connections(aws, OLD, 0)
    reasons = joined(verdict(old, p, config(configured=OLD)))
    assert f"`{OLD}` is the rds_instance_id of environment `production`" in reasons
