"""Point-in-time recovery: the modal's submission starts the operation; the switch card's
buttons start the undo of the switch or the cleanup, each its own approved operation; the
scheduled cleanup's card cancels it or skips its final snapshot."""

from __future__ import annotations

from slack_bolt import App

from bot.clock import utcnow
from bot.errors import NotFound, UserError
from bot.runbooks.pitr import choices, cleanup_schedule
from bot.runbooks.pitr.cleanup import cleanup_params
from bot.runbooks.pitr.undo_switch import undo_params
from bot.slack import pitr_views
from bot.slack.ids import Action, Callback
from bot.slack.values import EnvironmentRef, FinalSnapshotChoice, OperationRef
from handlers.checklists import before_checklist, start_then_checklist
from handlers.error_reporter import reports_errors


def register(app: App, services) -> None:
    store, engine, config = services.store, services.engine, services.config

    @app.view(Callback.PITR)
    @reports_errors
    def submit(ack, body: dict, view: dict) -> None:
        env = config.environment(EnvironmentRef.parse(view["private_metadata"]).env)
        form = pitr_views.form_values(view["state"]["values"])
        try:
            params = choices.restore_params(
                env, form, utcnow(), config.pitr_snapshot_max_age_minutes
            )
            params |= choices.pitr_settings(config)
            op = engine.start("pitr", env.name, body["user"]["id"], params)
        except choices.FormErrors as error:
            ack(response_action="errors", errors=pitr_views.field_errors(error.errors))
            return
        except UserError as error:
            ack(response_action="errors", errors=pitr_views.field_errors({"mode": str(error)}))
            return
        ack(response_action="update", view=before_checklist(services, op))

    def follow_up(runbook: str, make_params):
        def start(ack, body: dict, action: dict, client, respond) -> None:
            ack()
            pitr_op = store.operation(OperationRef.parse(action["value"]).op)
            if pitr_op is None:
                raise NotFound("That point-in-time recovery no longer exists.")
            start_then_checklist(
                services,
                client,
                body["trigger_id"],
                runbook,
                pitr_op.environment,
                body["user"]["id"],
                make_params(pitr_op),
            )

        return reports_errors(start)

    app.action(Action.PITR_UNDO_SWITCH)(follow_up("pitr_undo_switch", undo_params))
    app.action(Action.PITR_CLEANUP)(
        follow_up("pitr_cleanup", lambda op: cleanup_params(op, utcnow()))
    )

    # ``respond`` (unused here): reports_errors answers a refusal (not the requester, not an
    # approver) to the person who clicked with it; without it the refusal was only logged.
    @app.action(Action.PITR_CLEANUP_CANCEL)
    @reports_errors
    def cancel_cleanup(ack, body: dict, action: dict, respond) -> None:
        ack()
        ref = OperationRef.parse(action["value"])
        cleanup_schedule.cancel(engine, ref.op, body["user"]["id"])

    @app.action(Action.PITR_CLEANUP_FINAL_SNAPSHOT)
    @reports_errors
    def final_snapshot(ack, body: dict, action: dict, respond) -> None:
        ack()
        ref = FinalSnapshotChoice.parse(action["value"])
        cleanup_schedule.set_skip_final_snapshot(engine, ref.op, body["user"]["id"], ref.skip)
