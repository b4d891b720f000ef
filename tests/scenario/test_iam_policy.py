"""docs/iam-policy.json is sufficient and minimal, proven against moto with IAM enforcement
on (moto's INITIAL_NO_AUTH_ACTION_COUNT, set through its /moto-api/reset-auth):

- the whole point-in-time recovery from Slack (restore, verify, switch, undo) and the old
  instance's deletion run as an IAM user holding only that policy;
- with any one action removed, some step of that flow fails, and says which call AWS
  refused and what to do.

moto 5 authorizes the *action* of each request and evaluates it against Resource "*" (it
does not derive ARNs for RDS or Secrets Manager), so the user gets the policy's actions on
"*" here; the ARNs themselves (scoped to the instance and the secret) are checked
statement by statement below.
"""

from __future__ import annotations

import json
import re
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from bot.aws import cloudwatch, rds, secrets_manager, snapshots
from bot.errors import UserError
from bot.redaction import Secret
from tests.rig.aws import AwsRig
from tests.scenario import test_pitr as pitr_from_slack
from tests.scenario.test_pitr import SECRET_ID, SOURCE
from tests.unit.aws.source_instance import make_source

POLICY = json.loads((Path(__file__).parents[2] / "docs" / "iam-policy.json").read_text())
ACTIONS = [action for s in POLICY["Statement"] for action in s["Action"]]
# moto checks one action per request; RDS also requires rds:AddTagsToResource for the tags a
# CreateDBSnapshot or a restore carries ("tag on create"), which moto does not model.
NOT_PROVABLE_ON_MOTO = {"rds:AddTagsToResource"}
# moto authorizes CloudWatch's actions under its endpoint prefix, "monitoring:"; AWS's IAM
# names them "cloudwatch:" (the policy's spelling). The user gets both spellings here.
MOTO_NAMES = {"cloudwatch:GetMetricStatistics": "monitoring:GetMetricStatistics"}
_no_proxy = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def _post(url: str, data: bytes) -> None:
    # text/plain: moto reads the raw body (a form content type would leave it empty).
    request = urllib.request.Request(
        url, data=data, method="POST", headers={"Content-Type": "text/plain"}
    )
    with _no_proxy.open(request, timeout=10):
        pass


@contextmanager
def iam_enforced(endpoint: str) -> Iterator[None]:
    """Every request from here on must be signed by an IAM user and allowed by its policies."""
    _post(f"{endpoint}/moto-api/reset-auth", b"0")
    try:
        yield
    finally:
        _post(f"{endpoint}/moto-api/reset-auth", b"inf")


@dataclass
class Keys:
    access_key_id: str
    secret_access_key: str


def iam_user(aws: AwsRig, name: str, actions: list[str]) -> Keys:
    iam = aws.client("iam")
    iam.create_user(UserName=name)
    actions = [*actions, *(MOTO_NAMES[a] for a in actions if a in MOTO_NAMES)]
    document = {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Action": actions, "Resource": "*"}],
    }
    iam.put_user_policy(UserName=name, PolicyName="p", PolicyDocument=json.dumps(document))
    key = iam.create_access_key(UserName=name)["AccessKey"]
    return Keys(key["AccessKeyId"], key["SecretAccessKey"])


@dataclass
class AdminAws(AwsRig):
    """The test's own set-up and checks, as an administrator; the bot uses the environment."""

    keys: Keys | None = None

    def client(self, service_name: str, **kwargs):
        return super().client(
            service_name,
            aws_access_key_id=self.keys.access_key_id,
            aws_secret_access_key=self.keys.secret_access_key,
            **kwargs,
        )


def as_bot(monkeypatch, keys: Keys) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", keys.access_key_id)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", keys.secret_access_key)


def test_the_whole_pitr_flow_runs_holding_only_the_policy(bot_factory, aws, pg_url, monkeypatch):
    admin = AdminAws(aws.endpoint, iam_user(aws, "admin", ["*"]))
    as_bot(monkeypatch, iam_user(aws, "rollback-bot", ACTIONS))
    with iam_enforced(aws.endpoint):
        # Enforcement is on: an action outside the policy is refused to the bot's user.
        with pytest.raises(UserError, match="AccessDenied"), rds.aws_call("list instances"):
            rds.rds_client().describe_db_snapshot_attributes(DBSnapshotIdentifier="x")
        pitr_from_slack.test_pitr_restore_verify_switch_and_undo(
            bot_factory, admin, pg_url, monkeypatch
        )
        # The cleanup a switch schedules: the old instance deleted, a final snapshot kept.
        final = rds.final_snapshot_id(SOURCE, datetime.now(UTC))
        rds.delete_with_final_snapshot(SOURCE, final)
        snapshots = admin.client("rds").describe_db_snapshots(DBSnapshotIdentifier=final)
        assert snapshots["DBSnapshots"][0]["DBInstanceIdentifier"] == SOURCE


def pitr_aws_calls(pg_url: str) -> None:
    """Every AWS call of option 3, in the runbook's order, through bot/aws as its steps make
    them: both restore modes, the switch, its undo and the cleanup; then the retention
    review's."""
    now = datetime.now(UTC)
    source = rds.describe_instance(SOURCE)
    rds.list_snapshots(SOURCE)
    backup = rds.create_snapshot(SOURCE, rds.backup_snapshot_id(SOURCE, now))
    rds.snapshot_status(backup.id)
    for mode, target in (("time", f"{SOURCE}-recovery-1"), ("snapshot", f"{SOURCE}-recovery-2")):
        plan = rds.RestorePlan(
            "op-20261202-abcdef",
            SOURCE,
            target,
            "db.r6g.large",
            mode,
            backup.id if mode == "snapshot" else None,
            now - timedelta(minutes=5) if mode == "time" else None,
            source.copied_settings(),
        )
        rds.start_restore(plan)
    progress = rds.restore_progress(f"{SOURCE}-recovery-1", now - timedelta(hours=1))
    new_url = secrets_manager.url_with_endpoint(Secret(pg_url), progress.address, progress.port)
    switch = secrets_manager.switch_url(SECRET_ID, new_url, "op-20261202-abcdef")
    secrets_manager.undo_switch(switch)
    # The cleanup's "is it live?" checks (bot/runbooks/pitr/liveness.py), then the delete.
    rds.proxies_routing_to(SOURCE)
    cloudwatch.most_connections(SOURCE, now, 15)
    rds.delete_with_final_snapshot(SOURCE, rds.final_snapshot_id(SOURCE, now))
    # The retention review: every manual snapshot listed, one described again, deleted.
    snapshots.manual_snapshots(None)
    snapshots.describe_snapshot(backup.id)
    snapshots.delete_snapshot(backup.id)


def _set_up(aws: AwsRig, pg_url: str) -> None:
    make_source(aws, SOURCE)
    # An RDS Proxy, so the cleanup's check reads its targets (rds:DescribeDBProxyTargets).
    client = aws.client("rds")
    subnets = client.describe_db_subnet_groups()["DBSubnetGroups"][0]["Subnets"]
    client.create_db_proxy(
        DBProxyName="skillancer-proxy",
        EngineFamily="POSTGRESQL",
        Auth=[{"AuthScheme": "SECRETS", "SecretArn": "arn:aws:secretsmanager:x"}],
        RoleArn="arn:aws:iam::123456789012:role/proxy",
        VpcSubnetIds=[s["SubnetIdentifier"] for s in subnets],
    )
    aws.client("secretsmanager").create_secret(
        Name=SECRET_ID, SecretString=json.dumps({"url": pg_url})
    )


@pytest.mark.parametrize("removed", sorted(set(ACTIONS) - NOT_PROVABLE_ON_MOTO))
def test_without_any_one_action_a_step_fails_saying_what_aws_refused(
    aws, pg_url, monkeypatch, removed
):
    _set_up(aws, pg_url)
    as_bot(monkeypatch, iam_user(aws, "rollback-bot", [a for a in ACTIONS if a != removed]))
    with iam_enforced(aws.endpoint), pytest.raises(UserError) as refused:
        pitr_aws_calls(pg_url)
    text = str(refused.value)
    assert text.startswith("AWS refused to "), text
    assert MOTO_NAMES.get(removed, removed) in text and "AccessDenied" in text
    assert "lacks this permission: compare it with docs/iam-policy.json" in text


def test_the_aws_calls_of_the_flow_pass_with_the_whole_policy(aws, pg_url, monkeypatch):
    """The other half of the test above: with nothing removed, nothing fails."""
    _set_up(aws, pg_url)
    as_bot(monkeypatch, iam_user(aws, "rollback-bot", ACTIONS))
    with iam_enforced(aws.endpoint):
        pitr_aws_calls(pg_url)


_ARN = re.compile(
    r"^arn:aws:(rds|secretsmanager):REGION:ACCOUNT_ID:"
    r"(db:INSTANCE_ID\*|snapshot:(rds:)?INSTANCE_ID\*|snapshot:\*|subgrp:\*|pg:\*|og:\*"
    r"|db-proxy:\*|target-group:\*"
    r"|secret:SECRET_NAME-\?{6})$"
)


def test_every_statement_is_scoped_to_the_instance_and_the_secret():
    """Resource "*" only where AWS has no resource-level permission (rds:DescribeEvents,
    cloudwatch:GetMetricStatistics);
    writes only on the configured instance's ARNs (and restored ones, named after it), the
    secret only by its name; no wildcard actions."""
    for statement in POLICY["Statement"]:
        assert statement["Effect"] == "Allow"
        assert all("*" not in action for action in statement["Action"]), statement
        resources = statement["Resource"]
        if resources == "*":
            assert statement["Action"] in (
                ["rds:DescribeEvents"],
                ["cloudwatch:GetMetricStatistics"],
            )
            continue
        for arn in resources:
            assert _ARN.match(arn), arn
        writes = {
            "rds:CreateDBSnapshot",
            "rds:RestoreDBInstanceToPointInTime",
            "rds:DeleteDBInstance",
        }
        if writes & set(statement["Action"]):
            assert "arn:aws:rds:REGION:ACCOUNT_ID:snapshot:*" not in resources
    assert len(ACTIONS) == len(set(ACTIONS))
