"""Undo of option 3's traffic switch: its own operation and approval. The secret's previous
version (kept by Secrets Manager as AWSPREVIOUS) is made current again, unless the secret
changed since the switch.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from bot.aws import secrets_manager
from bot.engine.model import Runbook, Step, StepContext
from bot.errors import ConflictError
from bot.runbooks.pitr import cleanup_schedule
from bot.runbooks.pitr.params import UndoSwitchParams
from bot.settings import Environment
from bot.store.records import CardKind

if TYPE_CHECKING:
    from bot.store.records import Operation


def undo_params(pitr_op: Operation) -> dict:
    p = pitr_op.params
    if not p.get("switch_version"):
        raise ConflictError(
            f"Operation {pitr_op.id} has not switched traffic; nothing to undo.",
            "Only a recovery that switched traffic can be undone: check the operation id in"
            " `/rollback history`.",
        )
    switch = _switch_of(p)
    current = secrets_manager.current_version(switch.secret_id)
    if current.version_id == switch.previous_version_id:
        raise ConflictError("The switch is already undone: the previous version is current.")
    if current.version_id != switch.switched_version_id:
        raise ConflictError(
            f"Secret `{switch.secret_id}` changed after the switch; undoing would discard"
            " that change, so nothing was started.",
            "Check the secret's versions in the AWS console.",
        )
    keys = (
        "switch_secret_id",
        "switch_previous_version",
        "switch_version",
        "switch_from",
        "switch_to",
        "restore_target",
        "source",
    )
    return {"pitr_operation": pitr_op.id, **{k: p.get(k) for k in keys}}


def _switch_of(p: dict) -> secrets_manager.Switch:
    return secrets_manager.Switch(
        p["switch_secret_id"], p["switch_previous_version"], p["switch_version"]
    )


def _confirm_switch_state(ctx: StepContext) -> str:
    switch = _switch_of(ctx.params)
    current = secrets_manager.current_version(switch.secret_id)
    if current.version_id != switch.switched_version_id:
        raise ConflictError(
            f"Secret `{switch.secret_id}` is not at the switched version any more; nothing done."
        )
    ctx.tick_checklist(
        "before",
        "backup",
        f"previous secret version {switch.previous_version_id} kept by Secrets Manager",
    )
    return f"secret is at the switched version {switch.switched_version_id}"


def plan_undo(op: Operation, env: Environment) -> str:
    p = op.params
    return "\n".join(
        [
            f"UNDO TRAFFIC SWITCH on environment {env.name} (operation {op.id},"
            f" switch made by {p.get('pitr_operation')})",
            f"Secrets Manager secret: {p.get('switch_secret_id')}",
            f"make version {p.get('switch_previous_version')} AWSCURRENT again"
            f" (url {p.get('switch_from')})",
            f"version {p.get('switch_version')} (url {p.get('switch_to')}) becomes AWSPREVIOUS",
        ]
    )


def _undo_switch(ctx: StepContext) -> str:
    return secrets_manager.undo_switch(_switch_of(ctx.params))


def switch_card_key(pitr_op_id: str) -> str:
    return f"pitr-switch-card:{pitr_op_id}"


def _cancel_cleanup(ctx: StepContext) -> str:
    """The switch is undone, so the old instance is the live one again: the deletion the
    switch scheduled is cancelled, its card and the switch card lose their buttons."""
    p = ctx.params
    pitr_op, old = p["pitr_operation"], p["source"]
    cancelled = ctx.cancel_job(cleanup_schedule.job_id(pitr_op))
    why = f"the traffic switch was undone by operation {ctx.operation.id}: `{old}` is live again"
    ctx.card(
        CardKind.PITR_CLEANUP_SCHEDULED,
        f"Cleanup cancelled: delete `{old}`",
        cleanup_schedule.card_data(pitr_op, old, None, cancelled=why),
    )
    ctx.card(
        CardKind.PITR_SWITCH,
        f"Traffic switch undone: `{p['switch_secret_id']}` points at `{old}` again",
        {
            "operation": pitr_op,
            "secret_id": p["switch_secret_id"],
            "from": p.get("switch_from"),
            "to": p.get("switch_to"),
            "previous_version": p["switch_previous_version"],
            "version": p["switch_version"],
            "old_instance": old,
            "undone_by": ctx.operation.id,
            "card_key": switch_card_key(pitr_op),
        },
    )
    if cancelled:
        return f"the scheduled deletion of {old} is cancelled"
    return f"no deletion of {old} was pending"


UNDO_SWITCH = Runbook(
    name="pitr_undo_switch",
    title="undo of the PITR traffic switch",
    steps=(
        Step(
            "confirm_switch_state",
            "Check the secret is at the switched version",
            _confirm_switch_state,
            idempotent=True,
        ),
        Step(
            "undo_switch",
            "Restore the previous secret version",
            _undo_switch,
            destructive=True,
            idempotent=True,
            plan=plan_undo,
        ),
        Step(
            "cancel_cleanup",
            "Cancel the old instance's scheduled deletion",
            _cancel_cleanup,
            idempotent=True,
        ),
    ),
    describe=lambda p: f"Undo the traffic switch of `{p.get('pitr_operation')}`.",
    params=UndoSwitchParams,
)
