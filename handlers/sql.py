"""The /rollback sql modal's submission: validate the SQL (field errors, nothing started),
start the operation, and turn the modal into the before-checklist."""

from __future__ import annotations

from slack_bolt import App

from bot.errors import UserError
from bot.runbooks import sql as sql_runbook
from bot.slack import sql_views
from bot.slack.blocks import cut
from bot.slack.ids import Block, Callback
from bot.slack.values import EnvironmentRef
from handlers.checklists import before_checklist
from handlers.error_reporter import reports_errors

FIELD_BLOCKS = {
    "sql": Block.SQL_TEXT,
    "verification": Block.SQL_VERIFICATION,
    "reason": Block.SQL_REASON,
    "history": Block.SQL_HISTORY,
    "history_action": Block.SQL_HISTORY_ACTION,
}


def register(app: App, services) -> None:
    @app.view(Callback.SQL)
    @reports_errors
    def submit_sql(ack, body: dict, view: dict) -> None:
        values = sql_views.submitted_values(view)
        env_name = EnvironmentRef.parse(view["private_metadata"]).env
        try:
            op = sql_runbook.start(
                services.engine,
                env_name,
                body["user"]["id"],
                values[Block.SQL_TEXT],
                values[Block.SQL_VERIFICATION],
                values[Block.SQL_REASON],
                history=(values[Block.SQL_HISTORY], values[Block.SQL_HISTORY_ACTION]),
            )
        except UserError as error:
            block = FIELD_BLOCKS[getattr(error, "field", "sql")]
            text = error.message + (f" {error.hint}" if error.hint else "")
            ack(response_action="errors", errors={block: cut(text, 2000)})
            return
        # The user goes straight on to the before-checklist; the dry run runs meanwhile
        # and its card appears in the incident thread.
        ack(response_action="update", view=before_checklist(services, op))
