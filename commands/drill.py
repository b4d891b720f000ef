"""/rollback drill: rehearse the procedure (checklists, approval, progress); no database."""

from bot.slack import views
from commands.parser import Spec

NAME = "drill"
SPEC = Spec(
    "drill [--env NAME]", "Rehearse the rollback procedure; touches no database.", options=("env",)
)


def run(ctx) -> dict:
    services = ctx.services
    config = services.config
    op = services.engine.start(
        "drill",
        ctx.environment,
        ctx.user,
        {
            "slow_step_seconds": config.drill_slow_step_seconds,
            "progress_events": config.drill_progress_events,
        },
    )
    items = services.store.checklist(op.id, "before")
    # trigger_id is valid for 3 s and once: open the checklist before anything slow.
    ctx.client.views_open(
        trigger_id=ctx.trigger_id, view=views.checklist_modal(op, "before", items)
    )
    return views.info_message(
        f"Drill `{op.id}` started on *{op.environment}*. Tick the before-rollback checklist;"
        " the incident channel and live status are being set up (see the notice in"
        f" {config.environment(op.environment).notify_channel})."
    )
