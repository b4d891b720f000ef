"""Approve / Deny / Request again: the two-person rule is enforced by the engine; these
only ack, call it, and tell the clicker what happened."""

from __future__ import annotations

import re

from slack_bolt import App

from bot.errors import NotFound
from bot.slack import views
from bot.slack.ids import Action
from bot.slack.plan_views import plan_modal
from bot.slack.values import PlanPage
from handlers.error_reporter import reports_errors


def register(app: App, services) -> None:
    engine = services.engine

    def whole_plan(value: str) -> dict:
        ref = PlanPage.parse(value)
        approval = services.store.approval(ref.approval)
        if approval is None:
            raise NotFound(f"There is no approval {ref.approval}.")
        return plan_modal(approval.plan_text, approval.plan_hash, ref)

    def decide(approve: bool):
        def handler(ack, body: dict, action: dict, respond) -> None:
            ack()
            container = body.get("container") or {}
            clicked_on = (container.get("channel_id") or "", container.get("message_ts") or "")
            approval = engine.decide_approval(
                action["value"], body["user"]["id"], approve, clicked_on
            )
            verb = "approved" if approve else "denied"
            respond(
                response_type="ephemeral",
                replace_original=False,
                **views.info_message(f"You {verb} `{approval.operation_id}`."),
            )

        return handler

    app.action(Action.APPROVE)(reports_errors(decide(True)))
    app.action(Action.DENY)(reports_errors(decide(False)))

    @app.action(Action.REQUEST_AGAIN)
    @reports_errors
    def request_again(ack, body: dict, action: dict, respond) -> None:
        ack()
        engine.request_approval_again(action["value"], body["user"]["id"])
        respond(
            response_type="ephemeral",
            replace_original=False,
            **views.info_message("A new approval request has been posted."),
        )

    @app.action(Action.VIEW_PLAN)
    @reports_errors
    def view_plan(ack, body: dict, action: dict, client) -> None:
        ack()
        client.views_open(trigger_id=body["trigger_id"], view=whole_plan(action["value"]))

    @app.action(re.compile(f"^{Action.PLAN_PAGE}_(previous|next)$"))
    @reports_errors
    def turn_page(ack, body: dict, action: dict, client) -> None:
        ack()
        view = body["view"]
        client.views_update(
            view_id=view["id"], hash=view.get("hash"), view=whole_plan(action["value"])
        )
