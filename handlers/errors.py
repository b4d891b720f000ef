"""The one error handler: a UserError becomes a clear ephemeral message where the user is;
anything else is logged with a correlation id the user is given."""

from __future__ import annotations

import logging
import secrets

from slack_bolt import App

from bot.errors import UserError
from bot.slack import views

log = logging.getLogger("rollback_bot.errors")


def register(app: App, services) -> None:
    @app.error
    def on_error(error: Exception, body: dict, respond) -> None:
        if isinstance(error, UserError):
            message = views.error_message(error)
        else:
            ref = secrets.token_hex(4)
            log.exception("unexpected error (ref %s)", ref, exc_info=error)
            message = views.info_message(
                f":boom: Something unexpected went wrong (ref `{ref}`). Nothing more was done;"
                " the operation's state is kept. Tell the bot's maintainers the ref."
            )
        if body.get("response_url") or body.get("type") == "block_actions":
            respond(response_type="ephemeral", replace_original=False, **message)
