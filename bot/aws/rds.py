"""Amazon RDS for runbook option 3 (point-in-time recovery): snapshots, the recovery window,
the restore point, the backup snapshot, the restore itself, its progress and the cleanup.

Every AWS failure becomes a ``UserError`` naming the call, AWS's error code and what to do;
nothing is changed after a failed check. Identifiers are checked against RDS's naming rules
before any call, so a typo never reaches AWS.

What moto (the test double, 5.2) does not model, and how this code stays honest about it:
- restored instances are "available" at once (no "creating"/"backing-up" states), so the
  polling step in bot/runbooks/pitr/steps.py sees one round on moto; the states it handles are
  RDS's documented ones;
- LatestRestorableTime is always "now" and RestoreTime is not validated (AWS answers
  InvalidRestoreFault), so ``check_restore_time`` checks the window itself;
- DescribeDBSnapshots returns every snapshot in one page (no Marker); the Marker path is
  exercised in the unit tests with botocore's Stubber;
- DescribeEvents ignores StartTime, so events are also filtered here by date.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
from botocore.config import Config as BotoConfig
from botocore.exceptions import BotoCoreError, ClientError

from bot.aws import region
from bot.clock import shown_utc
from bot.errors import ConflictError, NotFound, UserError
from bot.metrics import watch_aws

# The tag that marks an instance as restored by one operation: a rerun of the restore step
# after a restart finds its own instance instead of failing with "already exists".
OPERATION_TAG = "rollback-bot:operation"
# RDS instance states (DBInstanceStatus, RDS User Guide "Viewing DB instance status").
READY = "available"
FAILED_STATES = {
    "failed",
    "incompatible-restore",
    "incompatible-parameters",
    "incompatible-network",
    "inaccessible-encryption-credentials",
    "restore-error",
    "storage-full",
}

_IDENTIFIER_CHARS = re.compile(r"^[A-Za-z0-9-]+$")
_INSTANCE_CLASS = re.compile(r"^db\.[a-z0-9-]+\.[a-z0-9-]+$")

_HINTS = {
    "DBInstanceNotFound": "Check rds_instance_id in the bot's config and the AWS region.",
    "DBSnapshotNotFound": "Pick another snapshot: `/rollback pitr` lists the available ones.",
    "DBInstanceAlreadyExists": "Choose another target instance id, or delete that instance.",
    "InvalidRestoreFault": "Nothing was restored. Pick a time inside the instance's restorable"
    " window (`/rollback pitr` shows it), or restore from a snapshot.",
    "PointInTimeRestoreNotEnabled": "Automated backups are off: restore from a snapshot.",
    "InsufficientDBInstanceCapacity": "Try another instance class.",
    "InvalidParameterCombination": "Check the instance class against the engine.",
    "InvalidDBInstanceState": "Wait until the instance is available and try again.",
    "AccessDenied": "The bot's IAM role lacks this permission: compare it with"
    " docs/iam-policy.json (`rollback-bot doctor` checks it).",
    "AccessDeniedException": "The bot's IAM role lacks this permission: compare it with"
    " docs/iam-policy.json (`rollback-bot doctor` checks it).",
}
_THROTTLED = {"Throttling", "ThrottlingException", "RequestLimitExceeded"}


# botocore's "standard" retry mode retries throttling (Throttling, ThrottlingException,
# RequestLimitExceeded...), 5xx and connection errors with exponential backoff and jitter
# (botocore docs, "Retries"). Permanent errors (NotFound, AlreadyExists,
# InvalidRestoreFault...) are not retried and reach aws_call. total_max_attempts counts the
# first call; botocore's "max_attempts" would count only the retries (Config docs).
MAX_ATTEMPTS = 5


def aws_client(service: str, max_attempts: int = MAX_ATTEMPTS) -> Any:
    retries = {"mode": "standard", "total_max_attempts": max_attempts}
    client = boto3.client(service, region_name=region(), config=BotoConfig(retries=retries))
    watch_aws(client)  # failed calls counted on /metrics
    return client


def rds_client() -> Any:
    return aws_client("rds")


@contextmanager
def aws_call(doing: str) -> Iterator[None]:
    """Turns AWS failures into a UserError that says what failed and what to do."""
    try:
        yield
    except ClientError as error:
        code, message = _code_and_message(error)
        base = code.removesuffix("Fault")
        if code in _THROTTLED:
            attempts = error.response.get("ResponseMetadata", {}).get("RetryAttempts", 0) + 1
            raise UserError(
                f"AWS is throttling the bot's requests to {doing} ({code}, still refused"
                f" after {attempts} attempts).",
                "Nothing was changed by this call; wait a minute and try again.",
                code="aws_throttled",
            ) from None
        kind = NotFound if base.endswith("NotFound") else UserError
        raise kind(
            f"AWS refused to {doing}: {code}: {message}".rstrip(": "),
            _HINTS.get(base) or _HINTS.get(code),
            code="aws",
        ) from None
    except BotoCoreError as error:
        raise UserError(
            f"Cannot reach AWS to {doing} ({type(error).__name__}).",
            "Check the bot's AWS region, credentials and network.",
            code="aws_unreachable",
        ) from None


def _code_and_message(error: ClientError) -> tuple[str, str]:
    """AWS's error code and message. A 403 whose body botocore could not parse (moto answers
    IAM denials of JSON-protocol services such as Secrets Manager in XML; botocore then
    gives the status as the code and the body as the message) is an access denial."""
    code = error.response.get("Error", {}).get("Code", "Error")
    message = error.response.get("Error", {}).get("Message", "")
    status = error.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
    if status == 403 and code.isdigit():
        found = re.search(r"<Message>(.*?)</Message>", message, re.S)
        return "AccessDenied", found.group(1) if found else ""
    return code, message


# --- identifiers ----------------------------------------------------------------------


def identifier_problem(value: str) -> str | None:
    """RDS's rules for DB instance identifiers (CreateDBInstance, DBInstanceIdentifier):
    1-63 letters, digits or hyphens; first a letter; no "--"; no trailing hyphen."""
    if not value:
        return "it is empty"
    if len(value) > 63:
        return f"it has {len(value)} characters; RDS allows at most 63"
    if not _IDENTIFIER_CHARS.match(value):
        return "only letters, digits and hyphens are allowed"
    if not value[0].isalpha():
        return "it must start with a letter"
    if "--" in value:
        return "it must not contain two consecutive hyphens"
    if value.endswith("-"):
        return "it must not end with a hyphen"
    return None


def check_identifier(value: str, what: str = "DB instance identifier") -> str:
    problem = identifier_problem(value)
    if problem:
        raise UserError(
            f"`{value}` is not a valid {what}: {problem}.",
            "RDS identifiers are 1-63 letters, digits and hyphens, start with a letter,"
            " and have no double or trailing hyphen.",
            code="rds_identifier",
        )
    return value.lower()  # RDS stores identifiers in lowercase


def instance_class_problem(value: str) -> str | None:
    if not _INSTANCE_CLASS.match(value):
        return "an instance class looks like db.t3.medium or db.r6g.large"
    return None


# --- instances and snapshots ----------------------------------------------------------


@dataclass(frozen=True)
class Instance:
    id: str
    arn: str
    status: str
    instance_class: str
    engine: str
    multi_az: bool
    vpc_security_group_ids: tuple[str, ...]
    subnet_group: str | None
    parameter_group: str | None
    tags: tuple[tuple[str, str], ...]
    address: str | None
    port: int | None
    latest_restorable_time: datetime | None
    backup_retention_days: int

    def copied_settings(self) -> dict:
        """What the restore copies from this instance (JSON-safe, for the plan). The
        runbook's trap: without them RestoreDBInstance* gives the new instance the VPC's
        default security group, the default subnet group and the default parameter group."""
        return {
            "vpc_security_group_ids": list(self.vpc_security_group_ids),
            "subnet_group": self.subnet_group,
            "parameter_group": self.parameter_group,
            "multi_az": self.multi_az,
            "port": self.port,
            "tags": [[k, v] for k, v in self.tags if k != OPERATION_TAG],
        }


def _instance(row: dict, tags: list[dict]) -> Instance:
    endpoint = row.get("Endpoint") or {}
    groups = row.get("DBParameterGroups") or [{}]
    return Instance(
        id=row["DBInstanceIdentifier"],
        arn=row.get("DBInstanceArn", ""),
        status=row.get("DBInstanceStatus", "unknown"),
        instance_class=row.get("DBInstanceClass", ""),
        engine=row.get("Engine", ""),
        multi_az=bool(row.get("MultiAZ")),
        vpc_security_group_ids=tuple(
            g["VpcSecurityGroupId"] for g in row.get("VpcSecurityGroups") or []
        ),
        subnet_group=(row.get("DBSubnetGroup") or {}).get("DBSubnetGroupName"),
        parameter_group=groups[0].get("DBParameterGroupName"),
        tags=tuple((t["Key"], t["Value"]) for t in tags),
        address=endpoint.get("Address"),
        port=endpoint.get("Port") or row.get("DbInstancePort") or None,
        latest_restorable_time=row.get("LatestRestorableTime"),
        backup_retention_days=int(row.get("BackupRetentionPeriod") or 0),
    )


def find_instance(instance_id: str, client: Any = None) -> Instance | None:
    client = client or rds_client()
    try:
        rows = client.describe_db_instances(DBInstanceIdentifier=instance_id)["DBInstances"]
    except ClientError as error:
        if error.response.get("Error", {}).get("Code") == "DBInstanceNotFound":
            return None
        with aws_call(f"describe DB instance {instance_id}"):
            raise
    row = rows[0]
    with aws_call(f"read the tags of {instance_id}"):
        tags = row.get("TagList")
        if tags is None:
            tags = client.list_tags_for_resource(ResourceName=row["DBInstanceArn"])["TagList"]
    return _instance(row, tags)


def describe_instance(instance_id: str, client: Any = None) -> Instance:
    check_identifier(instance_id)
    found = find_instance(instance_id, client)
    if found is None:
        raise NotFound(
            f"There is no RDS DB instance `{instance_id}` in this account and region.",
            _HINTS["DBInstanceNotFound"],
            code="aws",
        )
    return found


@dataclass(frozen=True)
class Snapshot:
    id: str
    type: str  # "automated" | "manual"
    status: str
    created: datetime | None  # absent while a snapshot is still being created
    instance_id: str


def list_snapshots(instance_id: str, client: Any = None) -> list[Snapshot]:
    """Automated and manual snapshots of the instance, oldest first. Without SnapshotType,
    DescribeDBSnapshots returns both (RDS API reference); pages of up to 100 follow
    Marker until the last one."""
    client = client or rds_client()
    snapshots = []
    with aws_call(f"list the snapshots of {instance_id}"):
        pages = client.get_paginator("describe_db_snapshots").paginate(
            DBInstanceIdentifier=instance_id, PaginationConfig={"PageSize": 100}
        )
        for page in pages:
            snapshots += [
                Snapshot(
                    id=s["DBSnapshotIdentifier"],
                    type=s.get("SnapshotType", "manual"),
                    status=s.get("Status", "unknown"),
                    created=s.get("SnapshotCreateTime"),
                    instance_id=s.get("DBInstanceIdentifier", instance_id),
                )
                for s in page.get("DBSnapshots", [])
            ]
    far_future = datetime.max.replace(tzinfo=UTC)
    return sorted(snapshots, key=lambda s: s.created or far_future)


def latest_snapshot_before(snapshots: list[Snapshot], point: datetime) -> Snapshot | None:
    usable = [s for s in snapshots if s.status == READY and s.created and s.created <= point]
    return usable[-1] if usable else None


# --- the recovery point -----------------------------------------------------------------


@dataclass(frozen=True)
class RecoveryWindow:
    """When the instance can be restored to. RDS keeps transaction logs for the backup
    retention period; the earliest point here is that estimate (the exact one is
    DescribeDBInstanceAutomatedBackups' RestoreWindow)."""

    earliest: datetime | None
    latest: datetime | None
    retention_days: int

    @classmethod
    def of(cls, instance: Instance) -> RecoveryWindow:
        latest = instance.latest_restorable_time
        if instance.backup_retention_days <= 0 or latest is None:
            return cls(None, None, instance.backup_retention_days)
        return cls(
            latest - timedelta(days=instance.backup_retention_days),
            latest,
            instance.backup_retention_days,
        )


def check_restore_time(window: RecoveryWindow, point: datetime) -> str | None:
    """Why a point-in-time restore to ``point`` would be refused, or None."""
    if window.latest is None:
        return "automated backups are off for this instance (retention 0): restore from a snapshot"
    if point > window.latest:
        return f"it is after the latest restorable time ({shown_utc(window.latest)})"
    if window.earliest and point < window.earliest:
        return (
            f"it is before the earliest restorable time, about {shown_utc(window.earliest)}"
            f" ({window.retention_days} days of retention)"
        )
    return None


@dataclass(frozen=True)
class RestorePoint:
    at: datetime
    reason: str


def suggest_restore_point(
    migration_name: str | None,
    started_at: datetime | None,
    margin_minutes: float,
    now: datetime,
) -> RestorePoint:
    """The harmful migration's start minus the margin; without one, now minus the margin."""
    margin = timedelta(minutes=margin_minutes)
    if started_at is not None:
        return RestorePoint(
            started_at - margin,
            f"{margin_minutes:g} min before migration `{migration_name}` started"
            f" ({shown_utc(started_at)})",
        )
    return RestorePoint(now - margin, f"{margin_minutes:g} min ago (no migration history found)")


# --- backup of the current state ----------------------------------------------------------


def backup_snapshot_id(instance_id: str, now: datetime) -> str:
    return f"{instance_id}-before-pitr-{now:%Y%m%d%H%M%S}"


def recent_manual_snapshot(
    snapshots: list[Snapshot], max_age_minutes: float, now: datetime
) -> Snapshot | None:
    cutoff = now - timedelta(minutes=max_age_minutes)
    recent = [
        s
        for s in snapshots
        if s.type == "manual" and s.status in (READY, "creating") and (s.created or now) >= cutoff
    ]
    return recent[-1] if recent else None


def create_snapshot(instance_id: str, snapshot_id: str, client: Any = None) -> Snapshot:
    client = client or rds_client()
    with aws_call(f"create snapshot {snapshot_id} of {instance_id}"):
        s = client.create_db_snapshot(
            DBInstanceIdentifier=instance_id,
            DBSnapshotIdentifier=snapshot_id,
            Tags=[{"Key": "created-by", "Value": "rollback-bot"}],
        )["DBSnapshot"]
    return Snapshot(
        s["DBSnapshotIdentifier"], "manual", s.get("Status", "creating"), None, instance_id
    )


def snapshot_status(snapshot_id: str, client: Any = None) -> str:
    client = client or rds_client()
    with aws_call(f"describe snapshot {snapshot_id}"):
        rows = client.describe_db_snapshots(DBSnapshotIdentifier=snapshot_id)["DBSnapshots"]
    if not rows:
        raise NotFound(f"Snapshot `{snapshot_id}` does not exist.", code="aws")
    return rows[0].get("Status", "unknown")


# --- the restore --------------------------------------------------------------------------


@dataclass(frozen=True)
class RestorePlan:
    operation_id: str
    source: str
    target: str
    instance_class: str
    mode: str  # "snapshot" | "time"
    snapshot_id: str | None
    restore_time: datetime | None
    settings: dict = field(default_factory=dict)  # Instance.copied_settings() of the source

    def request(self) -> tuple[str, dict]:
        """The RDS call and its arguments: every setting is explicit, none left to defaults."""
        s = self.settings
        args: dict[str, Any] = {
            "DBInstanceClass": self.instance_class,
            "MultiAZ": bool(s.get("multi_az")),
            "Tags": [{"Key": k, "Value": v} for k, v in s.get("tags", [])]
            + [{"Key": OPERATION_TAG, "Value": self.operation_id}],
        }
        if s.get("vpc_security_group_ids"):
            args["VpcSecurityGroupIds"] = list(s["vpc_security_group_ids"])
        if s.get("subnet_group"):
            args["DBSubnetGroupName"] = s["subnet_group"]
        if s.get("parameter_group"):
            args["DBParameterGroupName"] = s["parameter_group"]
        if s.get("port"):
            args["Port"] = int(s["port"])
        if self.mode == "snapshot":
            return "restore_db_instance_from_db_snapshot", {
                "DBInstanceIdentifier": self.target,
                "DBSnapshotIdentifier": self.snapshot_id,
                **args,
            }
        return "restore_db_instance_to_point_in_time", {
            "SourceDBInstanceIdentifier": self.source,
            "TargetDBInstanceIdentifier": self.target,
            "RestoreTime": self.restore_time,
            **args,
        }


def start_restore(plan: RestorePlan, client: Any = None) -> Instance:
    """Starts the restore; safe to call again for the same operation (the instance tagged
    with its id is ours and is returned, another one with the target id is refused)."""
    client = client or rds_client()
    existing = find_instance(plan.target, client)
    if existing is not None:
        if dict(existing.tags).get(OPERATION_TAG) == plan.operation_id:
            return existing
        raise ConflictError(
            f"An RDS instance `{plan.target}` already exists; nothing was restored.",
            _HINTS["DBInstanceAlreadyExists"],
            code="aws",
        )
    method, args = plan.request()
    what = plan.snapshot_id if plan.mode == "snapshot" else f"{plan.source} at {plan.restore_time}"
    with aws_call(f"restore {plan.target} from {what}"):
        row = getattr(client, method)(**args)["DBInstance"]
    return _instance(row, args["Tags"])


@dataclass(frozen=True)
class RestoreProgress:
    status: str
    address: str | None
    port: int | None
    events: list[tuple[datetime, str]]

    @property
    def ready(self) -> bool:
        return self.status == READY

    @property
    def failed(self) -> bool:
        return self.status in FAILED_STATES


def restore_progress(target: str, since: datetime, client: Any = None) -> RestoreProgress:
    client = client or rds_client()
    instance = find_instance(target, client)
    if instance is None:
        raise NotFound(
            f"The restored instance `{target}` has disappeared.",
            "Someone deleted it, or the restore was rolled back by AWS: check the RDS console.",
            code="aws",
        )
    with aws_call(f"read the RDS events of {target}"):
        rows = client.describe_events(
            SourceIdentifier=target, SourceType="db-instance", StartTime=since
        )["Events"]
    events = sorted(
        (e["Date"], e.get("Message", "")) for e in rows if e.get("Date") and e["Date"] >= since
    )
    return RestoreProgress(instance.status, instance.address, instance.port, events)


# --- cleanup ------------------------------------------------------------------------------


def final_snapshot_id(instance_id: str, now: datetime) -> str:
    return f"{instance_id}-final-{now:%Y%m%d%H%M%S}"


def delete_with_final_snapshot(instance_id: str, snapshot_id: str, client: Any = None) -> None:
    """Deletes an instance, keeping a final snapshot and its automated backups. The
    runbook's ``--skip-final-snapshot`` throws away the last copy of that data: if the
    restored instance turns out to miss something, that copy is the only way back."""
    delete_instance(instance_id, snapshot_id, client)


def delete_instance(instance_id: str, snapshot_id: str | None, client: Any = None) -> None:
    """``snapshot_id`` None skips the final snapshot: only when a person explicitly chose
    it. Automated backups are kept either way (DeleteAutomatedBackups=false)."""
    client = client or rds_client()
    args: dict[str, Any] = {"SkipFinalSnapshot": True}
    if snapshot_id:
        args = {"SkipFinalSnapshot": False, "FinalDBSnapshotIdentifier": snapshot_id}
    what = f"final snapshot {snapshot_id}" if snapshot_id else "no final snapshot"
    with aws_call(f"delete {instance_id} ({what})"):
        client.delete_db_instance(
            DBInstanceIdentifier=instance_id, DeleteAutomatedBackups=False, **args
        )


@dataclass(frozen=True)
class Proxy:
    name: str
    endpoint: str | None


def proxies_routing_to(instance_id: str, client: Any = None) -> list[Proxy]:
    """Every RDS Proxy with the instance among its targets: applications that connect to
    the proxy reach the instance whatever the secret's URL says. moto serves DescribeDBProxies
    and DescribeDBProxyTargets (targets registered with RegisterDBProxyTargets)."""
    client = client or rds_client()
    found = []
    with aws_call("list the RDS proxies"):
        for page in client.get_paginator("describe_db_proxies").paginate():
            for proxy in page.get("DBProxies", []):
                name = proxy["DBProxyName"]
                targets = client.describe_db_proxy_targets(DBProxyName=name)["Targets"]
                if any(t.get("RdsResourceId") == instance_id for t in targets):
                    found.append(Proxy(name, proxy.get("Endpoint")))
    return found
