"""/rollback deploy [--env NAME]: re-run migrations (option 1 step 5), as
`prisma migrate deploy` does, behind approval in protected environments."""

from bot.runbooks.deploy_guard import reviews_for_start
from bot.slack import migration_views
from commands.parser import Spec
from handlers.checklists import start_then_checklist

NAME = "deploy"
SPEC = Spec(
    'deploy [--env NAME] [--override-window "reason"]',
    "Re-run migrations: apply pending ones as `prisma migrate deploy` does.",
    options=("env", "override-window"),
)


def run(ctx) -> dict:
    env = ctx.services.config.environment(ctx.environment)
    params = {"reviews": reviews_for_start(ctx.services.store, env)}
    reason = ctx.parsed.options.get("override-window", "").strip()
    if reason:
        params["window_override"] = reason
    op = start_then_checklist(
        ctx.services, ctx.client, ctx.trigger_id, "deploy", env.name, ctx.user, params
    )
    return migration_views.deploy_started(op)
