"""The resolve confirmation modal's submission; re-run migrations (the "Re-run migrations"
button and `/rollback deploy`): what would run shown first, the operation started on
Continue."""

from __future__ import annotations

from slack_bolt import App

from bot.errors import UserError
from bot.runbooks.deploy import preview_deploy
from bot.runbooks.deploy_guard import reviews_for_start
from bot.runbooks.resolve.plan import plan_resolve
from bot.slack import migration_views
from bot.slack.ids import Action, Callback
from bot.slack.values import DeployModal, EnvironmentRef, ResolveModal
from handlers.checklists import start_then_checklist
from handlers.error_reporter import reports_errors


def register(app: App, services) -> None:
    @app.view(Callback.RESOLVE)
    @reports_errors
    def confirm(ack, body: dict, view: dict, client) -> None:
        # Planning again needs the database, which may be slow during an incident: close
        # the modal at once (Slack allows 3 s) and open the next one with the submission's
        # own trigger_id.
        ack()
        ref = ResolveModal.parse(view["private_metadata"])
        user = body["user"]["id"]
        try:
            env = services.config.environment(ref.env)
            plan = plan_resolve(env, ref.migration, applied=ref.mode == "applied")
            if plan.not_applied and not migration_views.partial_confirmed(view):
                raise UserError(
                    f"`{plan.migration}` has statements that did not take effect; recording it"
                    " as applied needs the explicit confirmation in the form. Nothing was"
                    " started.",
                    f"Run `/rollback resolve {plan.migration} --applied --env {env.name}` again"
                    " and tick it.",
                )
            start_then_checklist(
                services, client, body["trigger_id"], "resolve", env.name, user, plan.params()
            )
        except UserError as error:
            text = error.message + (f"\n{error.hint}" if error.hint else "")
            client.views_open(
                trigger_id=body["trigger_id"], view=migration_views.resolve_error(text)
            )

    @app.action(Action.RERUN_MIGRATIONS)
    @reports_errors
    def rerun(ack, body: dict, action: dict, client) -> None:
        ack()
        env = services.config.environment(EnvironmentRef.parse(action["value"]).env)
        show_deploy_preview(services, client, body["trigger_id"], env, body["user"]["id"])

    @app.view(Callback.DEPLOY)
    @reports_errors
    def deploy(ack, body: dict, view: dict, client) -> None:
        ack()  # the checklist opens with the submission's own trigger_id
        ref = DeployModal.parse(view["private_metadata"])
        env = services.config.environment(ref.env)
        params = {"reviews": reviews_for_start(services.store, env)}
        if ref.window_override:
            params["window_override"] = ref.window_override
        try:
            start_then_checklist(
                services, client, body["trigger_id"], "deploy", env.name, body["user"]["id"], params
            )
        except UserError as error:
            text = error.message + (f"\n{error.hint}" if error.hint else "")
            client.views_open(
                trigger_id=body["trigger_id"], view=migration_views.deploy_error(text)
            )


def show_deploy_preview(services, client, trigger_id: str, env, user: str, reason: str = ""):
    """The confirmation modal, opened at once (the trigger lasts 3 s; the database may
    not answer that fast) and filled in when the pending migrations are read."""
    opened = client.views_open(trigger_id=trigger_id, view=migration_views.deploy_loading(env.name))
    view = opened["view"]
    try:
        services.engine.check_requester(env, user, "a re-run of migrations")
        shown = migration_views.deploy_confirm(preview_deploy(env).params(), env.protected, reason)
    except UserError as error:
        text = error.message + (f"\n{error.hint}" if error.hint else "")
        shown = migration_views.deploy_error(text)
    client.views_update(view_id=view["id"], hash=view["hash"], view=shown)
