"""Buttons of a mid-step decision (for example Commit / Roll back): only the requester."""

from __future__ import annotations

import re

from slack_bolt import App

from bot.slack import views
from bot.slack.ids import Action
from bot.slack.values import DecisionChoice
from handlers.error_reporter import reports_errors


def register(app: App, services) -> None:
    @app.action(re.compile(rf"^{Action.DECIDE}_"))
    @reports_errors
    def decide(ack, body: dict, action: dict, respond) -> None:
        ack()
        ref = DecisionChoice.parse(action["value"])
        services.engine.decide(ref.id, body["user"]["id"], ref.choice)
        respond(response_type="ephemeral", replace_original=False, **views.info_message("Got it."))
