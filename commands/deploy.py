"""/rollback deploy [--env NAME]: re-run migrations (option 1 step 5), as
`prisma migrate deploy` does, behind approval in protected environments. It first shows
which migrations would run (and warns of a file that already failed as it is); the
operation starts, and its checklist opens, only on Continue (handlers/resolve.py)."""

from bot.text import one_line_reason
from commands.parser import Spec
from handlers.resolve import show_deploy_preview

NAME = "deploy"
SPEC = Spec(
    'deploy [--env NAME] [--override-window "reason"]',
    "Re-run migrations: apply pending ones as `prisma migrate deploy` does.",
    options=("env", "override-window"),
)


def run(ctx) -> None:
    env = ctx.services.config.environment(ctx.environment)
    options = ctx.parsed.options
    # The reason goes into the approver's plan and the thread (bot/runbooks/deploy_guard.py):
    # one line, capped, no hidden characters, as every reason (a newline added plan lines).
    reason = one_line_reason(options["override-window"]) if "override-window" in options else ""
    show_deploy_preview(ctx.services, ctx.client, ctx.trigger_id, env, ctx.user, reason)
