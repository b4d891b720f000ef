"""Runbook option 3, step "Cleanup": delete the old instance, as its own operation behind
its own approval, with a final snapshot unless a person explicitly chose to skip it. Started
from the switch card's button or when the scheduled cleanup comes due (cleanup_schedule.py).
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

from bot.aws import rds, secrets_manager
from bot.aws.addresses import load_resolver
from bot.clock import utcnow
from bot.engine.model import Runbook, Step, StepContext
from bot.errors import ConflictError
from bot.runbooks.pitr import liveness
from bot.runbooks.pitr.params import CleanupParams
from bot.settings import Environment

if TYPE_CHECKING:
    from bot.store.records import Operation


def cleanup_params(
    pitr_op: Operation, now: datetime, skip_final_snapshot_by: str | None = None
) -> dict:
    """``skip_final_snapshot_by``: the user who explicitly chose to delete without a final
    snapshot (shown as a warning in the plan); None keeps the final snapshot."""
    p = pitr_op.params
    if not p.get("switch_version"):
        raise ConflictError(
            f"Operation {pitr_op.id} has not switched traffic: the old instance is still the"
            " live one and is not deleted."
        )
    current = secrets_manager.current_version(p["switch_secret_id"])
    if current.version_id != p["switch_version"]:
        raise ConflictError(
            f"Secret `{p['switch_secret_id']}` is not at the version operation {pitr_op.id}"
            " switched it to (the switch was undone, or the secret changed since):"
            f" `{p['source']}` may be live again and is not deleted.",
            code="switch_undone",
        )
    rds.describe_instance(p["source"])
    return {
        "pitr_operation": pitr_op.id,
        "old_instance": p["source"],
        "final_snapshot_id": None
        if skip_final_snapshot_by
        else rds.final_snapshot_id(p["source"], now),
        "skip_final_snapshot_by": skip_final_snapshot_by,
        "switch_secret_id": p["switch_secret_id"],
        "switch_previous_version": p["switch_previous_version"],
        "switch_version": p["switch_version"],
    }


def _refuse_if_live(ctx: StepContext) -> liveness.Verdict:
    old = rds.describe_instance(ctx.params["old_instance"])
    resolver = load_resolver(ctx.config.pitr_resolver)
    verdict = liveness.check(old, ctx.params, ctx.config, resolver, utcnow())
    if verdict.reasons:
        raise ConflictError(
            f"`{old.id}` is not deleted: "
            + "; ".join(verdict.reasons)
            + ". Nothing was deleted; start the cleanup again once it is no longer used."
        )
    return verdict


def _check_old_instance(ctx: StepContext) -> str:
    p = ctx.params
    verdict = _refuse_if_live(ctx)
    if p.get("final_snapshot_id"):
        ctx.tick_checklist(
            "before", "backup", f"final snapshot {p['final_snapshot_id']} is taken by the deletion"
        )
    else:  # no bot-made backup: a person decides whether the retained backups are enough
        ctx.say(
            f":warning: `{p['old_instance']}` will be deleted WITHOUT a final snapshot, as"
            f" <@{p['skip_final_snapshot_by']}> chose. Its automated backups are kept until"
            " their retention ends."
        )
    return f"{p['old_instance']} is not live: " + "; ".join(verdict.facts)


def plan_cleanup(op: Operation, env: Environment) -> str:
    p = op.params
    if p.get("final_snapshot_id"):
        snapshot = (
            f"final snapshot: {p.get('final_snapshot_id')} (SkipFinalSnapshot=false: the"
            " runbook's --skip-final-snapshot would throw away the last copy)"
        )
    else:
        snapshot = (
            "WARNING: NO final snapshot (SkipFinalSnapshot=true), explicitly chosen by"
            f" {p.get('skip_final_snapshot_by')}: the last copy of this instance's data is"
            " thrown away"
        )
    return "\n".join(
        [
            f"DELETE OLD INSTANCE on environment {env.name} (operation {op.id})",
            f"RDS call: delete_db_instance {p.get('old_instance')}",
            snapshot,
            "automated backups kept (DeleteAutomatedBackups=false)",
        ]
    )


def _delete_old_instance(ctx: StepContext) -> str:
    p = ctx.params
    _refuse_if_live(ctx)  # again: the approval may have taken hours
    rds.delete_instance(p["old_instance"], p.get("final_snapshot_id"))
    if p.get("final_snapshot_id"):
        return f"{p['old_instance']} deleting; final snapshot {p['final_snapshot_id']}"
    return f"{p['old_instance']} deleting without a final snapshot"


CLEANUP = Runbook(
    name="pitr_cleanup",
    title="PITR cleanup (delete the old instance)",
    steps=(
        Step(
            "check_old_instance",
            "Check the old instance is not live",
            _check_old_instance,
            idempotent=True,
        ),
        Step(
            "delete_old_instance",
            "Delete the old instance",
            _delete_old_instance,
            destructive=True,
            plan=plan_cleanup,
        ),
    ),
    describe=lambda p: (
        f"Delete the old instance `{p.get('old_instance')}`, keeping final snapshot"
        f" `{p.get('final_snapshot_id')}`."
        if p.get("final_snapshot_id")
        else f"Delete the old instance `{p.get('old_instance')}` WITHOUT a final snapshot."
    ),
    params=CleanupParams,
)
