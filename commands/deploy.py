"""/rollback deploy [--env NAME]: re-run migrations (option 1 step 5), as
`prisma migrate deploy` does, behind approval in protected environments."""

from bot.slack import views
from commands.parser import Spec

NAME = "deploy"
SPEC = Spec(
    "deploy [--env NAME]",
    "Re-run migrations: apply pending ones as `prisma migrate deploy` does.",
    options=("env",),
)


def run(ctx) -> dict:
    return start_deploy(ctx.services, ctx.client, ctx.trigger_id, ctx.environment, ctx.user)


def start_deploy(services, client, trigger_id: str, env: str | None, user: str) -> dict:
    op = services.engine.start("deploy", env, user, {})
    client.views_open(
        trigger_id=trigger_id,
        view=views.checklist_modal(op, "before", services.store.checklist(op.id, "before")),
    )
    return views.info_message(
        f"Re-run migrations `{op.id}` started on *{op.environment}*."
        " Complete the before-rollback checklist."
    )
