"""The Cancel button on an operation's status message."""

from __future__ import annotations

from slack_bolt import App

from bot.slack import views
from bot.slack.ids import Action
from handlers.error_reporter import reports_errors


def register(app: App, services) -> None:
    @app.action(Action.CANCEL)
    @reports_errors
    def cancel(ack, body: dict, action: dict, respond) -> None:
        ack()
        done = services.engine.cancel(action["value"], body["user"]["id"])
        text = (
            f"Cancelled `{action['value']}`."
            if done == "cancelled"
            else f"Cancelling `{action['value']}` as soon as the running step ends."
        )
        respond(
            response_type="ephemeral",
            replace_original=False,
            **views.info_message(text),
        )
