"""The revert review modal's submission: the edited SQL is parsed again (errors on the
field, nothing started), then the operation starts and the before-checklist opens."""

from __future__ import annotations

from datetime import datetime

from slack_bolt import App

from bot.errors import UserError
from bot.runbooks.revert.review import SqlFieldError, check_sql, start_reviewed
from bot.slack import revert_views
from bot.slack.blocks import cut
from bot.slack.ids import Block, Callback
from bot.slack.values import RevertModal
from handlers.checklists import before_checklist
from handlers.error_reporter import reports_errors


def register(app: App, services) -> None:
    @app.view(Callback.REVERT)
    @reports_errors
    def submit_revert(ack, body: dict, view: dict, client) -> None:
        edited = revert_views.submitted_sql(view)
        try:
            sql = check_sql(edited) if edited is not None else None
        except SqlFieldError as error:
            text = error.message + (f" {error.hint}" if error.hint else "")
            ack(response_action="errors", errors={Block.REVERT_SQL: cut(text, 2000)})
            return
        # Planning again needs the database, which may be slow during an incident: close
        # the modal at once (Slack allows 3 s) and open the next one with the submission's
        # own trigger_id.
        ack()
        ref = RevertModal.parse(view["private_metadata"])
        try:
            op = start_reviewed(
                services.engine,
                ref.env,
                ref.migration,
                datetime.fromisoformat(ref.stamp),
                body["user"]["id"],
                sql,
            )
        except UserError as error:
            text = error.message + (f"\n{error.hint}" if error.hint else "")
            client.views_open(trigger_id=body["trigger_id"], view=revert_views.revert_error(text))
            return
        client.views_open(trigger_id=body["trigger_id"], view=before_checklist(services, op))
