"""The Cancel button on an operation's status message."""

from __future__ import annotations

from slack_bolt import App

from bot.slack import views
from bot.slack.ids import Action
from handlers.errors import reports_errors


def register(app: App, services) -> None:
    @app.action(Action.CANCEL)
    @reports_errors
    def cancel(ack, body: dict, action: dict, respond) -> None:
        ack()
        services.engine.cancel(action["value"], body["user"]["id"])
        respond(
            response_type="ephemeral",
            replace_original=False,
            **views.info_message(f"Cancelled `{action['value']}`."),
        )
