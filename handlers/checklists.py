"""Checklist modals: opened from buttons (within the 3 s trigger window) and saved on
submit. A partly ticked checklist is kept and can be reopened. Every front-end path that
starts an operation opens its before-checklist with ``start_then_checklist`` or
``before_checklist``."""

from __future__ import annotations

import re

from slack_bolt import App

from bot.errors import UserError
from bot.slack import views
from bot.slack.ids import Action, Block, Callback
from bot.slack.values import ChecklistRef
from bot.store.records import Operation
from handlers.error_reporter import reports_errors


def before_checklist(services, op: Operation) -> dict:
    """The modal of the operation's before-checklist: what the requester sees right after
    starting one (the incident channel is set up meanwhile)."""
    return views.checklist_modal(op, "before", services.store.checklist(op.id, "before"))


def start_then_checklist(
    services, client, trigger_id: str, runbook: str, env: str | None, user: str, params: dict
) -> Operation:
    """Starts the operation, then opens its before-checklist with the trigger (valid 3 s
    and once: nothing slow may come between)."""
    op = services.engine.start(runbook, env, user, params)
    client.views_open(trigger_id=trigger_id, view=before_checklist(services, op))
    return op


def register(app: App, services) -> None:
    store, engine = services.store, services.engine

    @app.action(re.compile(rf"^{Action.OPEN_CHECKLIST}_(before|after|safety)$"))
    @reports_errors
    def open_checklist(ack, body: dict, action: dict, client, respond) -> None:
        ack()
        ref = ChecklistRef.parse(action["value"])
        op = store.operation(ref.op)
        items = store.checklist(ref.op, ref.checklist)
        if op is None or not items:
            raise UserError("That checklist no longer exists.")
        engine.check_may_tick(op.id, body["user"]["id"])
        client.views_open(
            trigger_id=body["trigger_id"], view=views.checklist_modal(op, ref.checklist, items)
        )

    @app.view(Callback.CHECKLIST)
    @reports_errors
    def save_checklist(ack, body: dict, view: dict, client) -> None:
        ref = ChecklistRef.parse(view["private_metadata"])
        ticked = {
            option["value"]
            for block_id, state in view["state"]["values"].items()
            if block_id.startswith(Block.CHECKLIST_ITEMS)
            for option in state["ticked"].get("selected_options") or []
        }
        try:
            engine.tick_checklist(ref.op, ref.checklist, ticked, body["user"]["id"])
        except UserError as error:
            first_block = f"{Block.CHECKLIST_ITEMS}_0"
            ack(response_action="errors", errors={first_block: error.message[:150]})
            return
        # Saved: say so, and what is still open (closing without a word read as "lost").
        op, items = store.operation(ref.op), store.checklist(ref.op, ref.checklist)
        ack(response_action="update", view=views.checklist_saved(op, ref.checklist, items))
