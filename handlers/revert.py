"""The revert review modal's submission: the edited SQL is parsed again (errors on the
field, nothing started), then the operation starts and the before-checklist opens."""

from __future__ import annotations

import json
from datetime import datetime

from slack_bolt import App

from bot.errors import UserError
from bot.prisma.migrations_dir import checksum
from bot.revert import SqlFieldError, check_sql, plan_revert
from bot.slack import revert_views, views
from bot.slack.blocks import cut
from bot.slack.ids import Block, Callback
from bot.sql.lint import lint
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
        ref = json.loads(view["private_metadata"])
        try:
            op = _start(services, ref, body["user"]["id"], sql)
        except UserError as error:
            text = error.message + (f"\n{error.hint}" if error.hint else "")
            client.views_open(trigger_id=body["trigger_id"], view=revert_views.revert_error(text))
            return
        client.views_open(
            trigger_id=body["trigger_id"],
            view=views.checklist_modal(op, "before", services.store.checklist(op.id, "before")),
        )


def _start(services, ref: dict, user: str, sql: str | None):
    """Plans again from the live state (same moment, so the same names) and starts the
    operation with the SQL as submitted."""
    env = services.config.environment(ref["env"])
    services.engine.check_requester(env, user, "a reverse migration")
    plan = plan_revert(services.config, env, ref["migration"], datetime.fromisoformat(ref["stamp"]))
    params = plan.params()
    if sql is not None and sql != plan.sql:
        if plan.staging_tested:
            raise UserError(
                "This SQL differs from what was applied on staging; only the tested SQL may"
                " run here. Nothing was started.",
                f"Test the edited SQL on staging first: `/rollback revert {plan.migration}"
                " --env staging`.",
            )
        params.update(
            sql=sql, sql_sha256=checksum(sql.encode("utf-8")), edited=True, lint=lint(sql).to_dict()
        )
    return services.engine.start("revert", env.name, user, params)
