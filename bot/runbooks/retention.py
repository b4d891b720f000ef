"""The runbook's "Manual Snapshot | 90 days | Before migrations", at the other end: the
manual snapshots the bot tagged are deleted once their retention date has passed, by an
operation ("Backup retention review") whose deletion a second person approves.

What is proposed: a manual snapshot of the environment (its instance's, or tagged with its
name) that the bot took (``created-by=rollback-bot``, ``rollback-bot:purpose=pre-migration``),
tagged for this environment, available, whose ``rollback-bot:retain-until`` day has ended.
Everything else is kept and the card says why: automated snapshots (RDS expires them), any
snapshot without the bot's tags, one still inside its date, and the newest manual snapshot of
an instance when deleting it would leave that instance with none.

The deletion step checks each snapshot again just before deleting it: one whose tags,
retention date, status or instance changed since the plan was approved is not deleted (the
step says so). No Slack here: the card is bot/slack/retention_views.py; the schedule and
the on-demand start are retention_schedule.py.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from bot.aws.snapshots import (
    ENVIRONMENT,
    RETAIN_UNTIL,
    ManualSnapshot,
    delete_snapshot,
    describe_snapshot,
    manual_snapshots,
)
from bot.clock import iso, shown_utc, utcnow
from bot.engine.model import Runbook, Step, StepContext
from bot.settings import Environment
from bot.store.records import CardKind, Operation
from bot.text import plural

AVAILABLE = "available"


@dataclass(frozen=True)
class RetentionParams:
    reviewed_at: str  # ISO: when the snapshots were listed
    trigger: str  # "scheduled" or the user who asked (`/rollback backups --retention`)
    # every snapshot proposed, as listed: id, arn, instance, created, status, tags, retain_until
    to_delete: list[dict[str, Any]]
    kept: list[dict[str, Any]]  # id, instance, created, reason
    # the deletion step records what it did, snapshot by snapshot (a rerun goes on from there)
    deleted: list[str] = field(default_factory=list)
    not_deleted: list[dict[str, Any]] = field(default_factory=list)


@dataclass(frozen=True)
class Reviewed:
    snapshot: ManualSnapshot
    delete: bool
    reason: str

    def row(self) -> dict[str, Any]:
        s = self.snapshot
        row = {"id": s.id, "instance": s.instance_id, "created": _created(s)}
        if not self.delete:
            return row | {"reason": self.reason}
        return row | {
            "arn": s.arn,
            "status": s.status,
            "tags": dict(sorted(s.tags.items())),
            "retain_until": s.tags.get(RETAIN_UNTIL, ""),
            "reason": self.reason,
        }


def _created(s: ManualSnapshot) -> str | None:
    return iso(s.created) if s.created else None


def review_environment(env: Environment, now: datetime) -> list[Reviewed]:
    """Every manual snapshot of ``env``, oldest first, each proposed for deletion or kept
    with the reason. Lists the account's manual snapshots once (the newest-one rule counts
    an instance's snapshots whichever environment they were tagged for)."""
    everything = manual_snapshots(None)
    mine = [s for s in everything if _belongs(s, env)]
    return review(env, mine, everything, now.date())


def _belongs(s: ManualSnapshot, env: Environment) -> bool:
    if env.rds_instance_id and s.instance_id == env.rds_instance_id:
        return True
    return s.by_the_bot and s.tags.get(ENVIRONMENT) == env.name


def review(
    env: Environment, mine: list[ManualSnapshot], everything: list[ManualSnapshot], today: date
) -> list[Reviewed]:
    verdicts = [_verdict(env, s, today) for s in mine]
    proposed = {v.snapshot.id for v in verdicts if v.delete}
    for instance in {v.snapshot.instance_id for v in verdicts if v.delete}:
        usable = [s for s in everything if s.instance_id == instance and s.status == AVAILABLE]
        if usable and all(s.id in proposed for s in usable):
            newest = usable[-1]  # manual_snapshots lists oldest first
            proposed.discard(newest.id)
            verdicts = [
                Reviewed(
                    v.snapshot,
                    False,
                    f"the newest manual snapshot of {instance}: deleting it would leave the"
                    " instance with no manual snapshot",
                )
                if v.snapshot.id == newest.id
                else v
                for v in verdicts
            ]
    return verdicts


def _verdict(env: Environment, s: ManualSnapshot, today: date) -> Reviewed:
    if s.snapshot_type != "manual":
        return Reviewed(s, False, f"{s.snapshot_type} snapshot: RDS expires it itself")
    if not s.by_the_bot:
        return Reviewed(s, False, "not taken by rollback-bot (no created-by=rollback-bot tags)")
    tagged_env = s.tags.get(ENVIRONMENT)
    if tagged_env != env.name:
        return Reviewed(s, False, f"tagged for environment {tagged_env}, not {env.name}")
    until = s.retain_until
    if until is None:
        raw = s.tags.get(RETAIN_UNTIL)
        return Reviewed(s, False, f"no valid {RETAIN_UNTIL} date (tag value {raw!r})")
    if until >= today:
        return Reviewed(s, False, f"kept until {until.isoformat()} ({RETAIN_UNTIL})")
    if s.status != AVAILABLE:
        return Reviewed(s, False, f"status {s.status}, not available")
    days = (today - until).days
    return Reviewed(s, True, f"retention ended {until.isoformat()} ({plural(days, 'day')} ago)")


def review_params(reviewed: list[Reviewed], trigger: str, now: datetime) -> dict[str, Any]:
    return {
        "reviewed_at": iso(now),
        "trigger": trigger,
        "to_delete": [r.row() for r in reviewed if r.delete],
        "kept": [r.row() for r in reviewed if not r.delete],
    }


def card_data(env_name: str, params: dict) -> dict:
    """What the card shows; ``requester`` None: the daily schedule."""
    trigger = params["trigger"]
    return {
        "environment": env_name,
        "requester": None if trigger == "scheduled" else trigger,
        "reviewed_at": params["reviewed_at"],
        "to_delete": params["to_delete"],
        "kept": params["kept"],
    }


# --- the operation ------------------------------------------------------------------------


def _review_step(ctx: StepContext) -> str:
    p = ctx.params
    title = (
        f"Backup retention review: {plural(len(p['to_delete']), 'manual snapshot')} past retention"
    )
    ctx.card(CardKind.RETENTION_REVIEW, title, card_data(ctx.environment.name, p))
    return f"{len(p['to_delete'])} proposed for deletion, {len(p['kept'])} kept"


def plan_retention(op: Operation, env: Environment) -> str:
    """What the approver approves: every snapshot to be deleted, whole (deletions first)."""
    p = op.params
    lines = [
        f"DELETE {plural(len(p['to_delete']), 'MANUAL SNAPSHOT', 'MANUAL SNAPSHOTS')} past"
        " their retention date on"
        f" environment {env.name} (operation {op.id})",
        "RDS call: delete_db_snapshot, once per snapshot below. Each is described again just"
        " before: one whose tags, retention date, status or instance changed since this plan"
        " is not deleted, nor an instance's last manual snapshot.",
    ]
    for n, row in enumerate(p["to_delete"], start=1):
        created = shown_utc(row["created"]) if row["created"] else "unknown"
        lines += [
            f"{n}. {row['id']}",
            f"   instance: {row['instance']}; created: {created}; status: {row['status']}",
            f"   retain until: {row['retain_until']}: {row['reason']}",
            "   tags: " + ", ".join(f"{k}={v}" for k, v in row["tags"].items()),
        ]
    lines.append(f"Kept (not deleted): {len(p['kept'])}")
    lines += [f"- {k['id']} ({k['instance']}): {k['reason']}" for k in p["kept"]]
    return "\n".join(lines)


def changed_since_plan(row: dict, now: ManualSnapshot | None, today: date) -> str | None:
    """Why a planned snapshot must not be deleted any more; None when it is as planned."""
    if now is None:
        return "it no longer exists"
    if now.snapshot_type != "manual" or now.instance_id != row["instance"]:
        return f"it is now a {now.snapshot_type} snapshot of {now.instance_id}"
    if dict(sorted(now.tags.items())) != row["tags"]:
        changed = sorted(
            k for k in {*now.tags, *row["tags"]} if now.tags.get(k) != row["tags"].get(k)
        )
        return "its tags changed since the plan (" + ", ".join(changed) + ")"
    if now.retain_until is None or now.retain_until >= today:
        return f"its retention date {now.tags.get(RETAIN_UNTIL)} has not passed"
    if now.status != AVAILABLE:
        return f"its status is {now.status}"
    return None


def _delete_step(ctx: StepContext) -> str:
    planned = ctx.params["to_delete"]
    deleted = list(ctx.params.get("deleted", []))
    not_deleted: list[dict] = []
    today = utcnow().date()
    left = _manual_snapshots_left({row["instance"] for row in planned})
    for n, row in enumerate(planned, start=1):
        if row["id"] in deleted:
            continue  # a rerun after a restart: this one is done
        why = changed_since_plan(row, describe_snapshot(row["id"]), today)
        if why is None and left[row["instance"]] <= 1:
            why = f"it is the last manual snapshot of {row['instance']}"
        if why is not None:
            not_deleted.append({"id": row["id"], "reason": why})
            ctx.say(f"Not deleted ({n}/{len(planned)}): `{row['id']}`: {why}.")
            continue
        delete_snapshot(row["id"])
        deleted.append(row["id"])
        left[row["instance"]] -= 1
        ctx.record(deleted=deleted)
        ctx.say(f"Deleted ({n}/{len(planned)}): `{row['id']}` of `{row['instance']}`.")
        ctx.progress(n, len(planned), f"{len(deleted)} deleted")
    ctx.record(deleted=deleted, not_deleted=not_deleted)
    return f"{len(deleted)} deleted, {len(not_deleted)} not deleted" + "".join(
        f"; {r['id']}: {r['reason']}" for r in not_deleted
    )


def _manual_snapshots_left(instances: set[str]) -> dict[str, int]:
    return {i: sum(s.status == AVAILABLE for s in manual_snapshots(i)) for i in sorted(instances)}


RETENTION = Runbook(
    name="backup_retention",
    title="Backup retention review",
    steps=(
        Step(
            "review_snapshots",
            "List manual snapshots past their retention",
            _review_step,
            idempotent=True,
        ),
        Step(
            "delete_snapshots",
            "Delete the approved snapshots",
            _delete_step,
            destructive=True,
            # A rerun skips what it recorded as deleted and checks every other one again.
            idempotent=True,
            plan=plan_retention,
        ),
    ),
    # Not a rollback: the Rollback Checklist does not apply. The control is the approver,
    # who sees every snapshot the step will delete.
    checklists=(),
    describe=lambda p: (
        f"Delete {plural(len(p['to_delete']), 'manual snapshot')} past their retention date"
        f" ({len(p['kept'])} kept)."
    ),
    params=RetentionParams,
)
