"""Manual RDS snapshots as the runbook's "Database Backup Strategy" keeps them: one before
every production migration, tagged with what it was taken for and until when it is kept,
and found again by those tags.

Tags (RDS allows 50 per resource, values up to 256 characters of letters, digits, spaces
and ``_ . : / = + - @``): ``created-by=rollback-bot``, ``rollback-bot:purpose``,
``rollback-bot:environment``, ``rollback-bot:retain-until`` (YYYY-MM-DD, UTC) and
``rollback-bot:migration-N`` for each pending migration, in order.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from botocore.exceptions import ClientError

from bot.aws.rds import aws_call, check_identifier, rds_client

CREATED_BY = "created-by"
BOT = "rollback-bot"
PURPOSE = "rollback-bot:purpose"
PRE_MIGRATION = "pre-migration"
ENVIRONMENT = "rollback-bot:environment"
RETAIN_UNTIL = "rollback-bot:retain-until"
MIGRATION = "rollback-bot:migration-"
MORE_MIGRATIONS = "rollback-bot:more-migrations"
MAX_TAGS = 50
_TAG_VALUE_MAX = 256
_TAG_UNSAFE = re.compile(r"[^\w .:/=+\-@]")


@dataclass(frozen=True)
class ManualSnapshot:
    id: str
    arn: str
    status: str
    created: datetime | None
    instance_id: str
    tags: dict[str, str] = field(default_factory=dict)
    snapshot_type: str = "manual"  # RDS's SnapshotType: manual, automated, shared, ...

    @property
    def by_the_bot(self) -> bool:
        return self.tags.get(CREATED_BY) == BOT and self.tags.get(PURPOSE) == PRE_MIGRATION

    @property
    def retain_until(self) -> date | None:
        try:
            return date.fromisoformat(self.tags.get(RETAIN_UNTIL, ""))
        except ValueError:
            return None

    @property
    def migrations(self) -> tuple[str, ...]:
        numbered = [
            (int(k.removeprefix(MIGRATION)), v)
            for k, v in self.tags.items()
            if k.startswith(MIGRATION) and k.removeprefix(MIGRATION).isdigit()
        ]
        return tuple(v for _, v in sorted(numbered))


def tag_value(text: str) -> str:
    """What RDS accepts as a tag value: other characters become "?"."""
    return _TAG_UNSAFE.sub("?", text)[:_TAG_VALUE_MAX]


def pre_migration_tags(environment: str, retain_until: date, migrations: list[str]) -> list[dict]:
    tags = {
        CREATED_BY: BOT,
        PURPOSE: PRE_MIGRATION,
        ENVIRONMENT: tag_value(environment),
        RETAIN_UNTIL: retain_until.isoformat(),
    }
    room = MAX_TAGS - len(tags) - 1  # one kept for "more"
    for n, name in enumerate(migrations[:room], start=1):
        tags[f"{MIGRATION}{n}"] = tag_value(name)
    if len(migrations) > room:
        tags[MORE_MIGRATIONS] = str(len(migrations) - room)
    return [{"Key": k, "Value": v} for k, v in tags.items()]


def create_pre_migration_snapshot(
    instance_id: str, snapshot_id: str, tags: list[dict], client: Any = None
) -> ManualSnapshot:
    check_identifier(instance_id)
    client = client or rds_client()
    with aws_call(f"create snapshot {snapshot_id} of {instance_id}"):
        row = client.create_db_snapshot(
            DBInstanceIdentifier=instance_id, DBSnapshotIdentifier=snapshot_id, Tags=tags
        )["DBSnapshot"]
    return _snapshot(row, {t["Key"]: t["Value"] for t in tags})


def manual_snapshots(instance_id: str | None, client: Any = None) -> list[ManualSnapshot]:
    """Manual snapshots of the instance (of every instance in the account and region when
    None) with their tags, oldest first."""
    client = client or rds_client()
    found = []
    which = {"DBInstanceIdentifier": instance_id} if instance_id else {}
    with aws_call(f"list the manual snapshots of {instance_id or 'every instance'}"):
        pages = client.get_paginator("describe_db_snapshots").paginate(
            **which, SnapshotType="manual", PaginationConfig={"PageSize": 100}
        )
        for page in pages:
            for row in page.get("DBSnapshots", []):
                found.append(_snapshot(row, _tags(client, row)))
    return sorted(found, key=lambda s: (s.created is None, s.created or datetime.min, s.id))


def describe_snapshot(snapshot_id: str, client: Any = None) -> ManualSnapshot | None:
    """The snapshot as RDS has it now, with its tags; None when it no longer exists."""
    client = client or rds_client()
    try:
        rows = client.describe_db_snapshots(DBSnapshotIdentifier=snapshot_id)["DBSnapshots"]
    except ClientError as error:
        if error.response.get("Error", {}).get("Code") == "DBSnapshotNotFound":
            return None
        with aws_call(f"describe snapshot {snapshot_id}"):
            raise
    if not rows:
        return None
    with aws_call(f"read the tags of snapshot {snapshot_id}"):
        return _snapshot(rows[0], _tags(client, rows[0]))


def delete_snapshot(snapshot_id: str, client: Any = None) -> str:
    """Deletes one manual snapshot (RDS refuses automated ones); returns its new status."""
    client = client or rds_client()
    with aws_call(f"delete snapshot {snapshot_id}"):
        row = client.delete_db_snapshot(DBSnapshotIdentifier=snapshot_id)["DBSnapshot"]
    return row.get("Status", "deleting")


def _tags(client: Any, row: dict) -> dict[str, str]:
    tags = row.get("TagList")
    if tags is None:
        tags = client.list_tags_for_resource(ResourceName=row["DBSnapshotArn"])["TagList"]
    return {t["Key"]: t["Value"] for t in tags}


def _snapshot(row: dict, tags: dict[str, str]) -> ManualSnapshot:
    return ManualSnapshot(
        row["DBSnapshotIdentifier"],
        row.get("DBSnapshotArn", ""),
        row.get("Status", "creating"),
        row.get("SnapshotCreateTime"),
        row.get("DBInstanceIdentifier", ""),
        tags,
        row.get("SnapshotType", "manual"),
    )
