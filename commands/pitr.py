"""/rollback pitr [--env NAME]: point-in-time recovery on AWS RDS (runbook option 3).

Opens a modal at once (Slack's trigger_id lasts 3 s), then fills it with the snapshots,
the restorable window and the suggested restore point, which take longer to read.
"""

from bot.clock import utcnow
from bot.errors import ConflictError, UserError
from bot.runbooks.pitr import choices as pitr
from bot.slack import pitr_views, views
from commands.parser import Spec

NAME = "pitr"
SPEC = Spec(
    "pitr [--env NAME]",
    "Option 3: point-in-time recovery on AWS RDS: restore, verify, switch traffic (undoable).",
    options=("env",),
)


def run(ctx) -> None:
    services = ctx.services
    env = services.config.environment(ctx.environment)
    source = pitr.require_rds(env)
    services.engine.check_requester(env, ctx.user, "a point-in-time recovery")
    running = services.store.active_operation(env.name)
    if running is not None:
        raise ConflictError(
            f"Another operation is already running on {env.name}: {running.id}"
            f" ({views.runbook_name(running.runbook)}) started by <@{running.requester}>.",
            "Wait until it finishes; `/rollback history` shows it.",
            code="busy",
            people=(running.requester,),
        )
    opened = ctx.client.views_open(
        trigger_id=ctx.trigger_id, view=pitr_views.loading_modal(env.name, source)
    )["view"]
    try:
        view = pitr_views.restore_modal(pitr.recovery_choices(env, services.config, utcnow()))
    except UserError as error:
        view = pitr_views.error_modal(env.name, error)
    ctx.client.views_update(view_id=opened["id"], hash=opened.get("hash"), view=view)
