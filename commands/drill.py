"""/rollback drill: rehearse the procedure (checklists, approval, progress); no database."""

from bot.slack import views
from commands.parser import Spec
from handlers.checklists import start_then_checklist

NAME = "drill"
SPEC = Spec(
    "drill [--env NAME]", "Rehearse the rollback procedure; touches no database.", options=("env",)
)


def run(ctx) -> dict:
    config = ctx.services.config
    params = {
        "slow_step_seconds": config.drill_slow_step_seconds,
        "progress_events": config.drill_progress_events,
    }
    op = start_then_checklist(
        ctx.services, ctx.client, ctx.trigger_id, "drill", ctx.environment, ctx.user, params
    )
    return views.info_message(
        f"Drill `{op.id}` started on *{op.environment}*. Tick the before-rollback checklist;"
        " the incident channel and live status are being set up (see the notice in"
        f" {config.environment(op.environment).notify_channel})."
    )
