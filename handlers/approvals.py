"""Approve / Deny / Request again: the two-person rule is enforced by the engine; these
only ack, call it, and tell the clicker what happened."""

from __future__ import annotations

from slack_bolt import App

from bot.slack import views
from bot.slack.ids import Action
from handlers.error_reporter import reports_errors


def register(app: App, services) -> None:
    engine = services.engine

    def decide(approve: bool):
        def handler(ack, body: dict, action: dict, respond) -> None:
            ack()
            approval = engine.decide_approval(action["value"], body["user"]["id"], approve)
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
