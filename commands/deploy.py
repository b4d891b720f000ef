"""/rollback deploy [--env NAME]: re-run migrations (option 1 step 5), as
`prisma migrate deploy` does, behind approval in protected environments."""

from bot.slack import migration_views
from commands.parser import Spec
from handlers.checklists import start_then_checklist

NAME = "deploy"
SPEC = Spec(
    "deploy [--env NAME]",
    "Re-run migrations: apply pending ones as `prisma migrate deploy` does.",
    options=("env",),
)


def run(ctx) -> dict:
    op = start_then_checklist(
        ctx.services, ctx.client, ctx.trigger_id, "deploy", ctx.environment, ctx.user, {}
    )
    return migration_views.deploy_started(op)
