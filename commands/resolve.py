"""/rollback resolve <migration> [--applied] [--env NAME]: runbook option 1.

Opens the confirmation modal at once (the trigger is valid 3 s), then fills it with the
diagnosis, which needs the database."""

from bot.errors import UserError
from bot.runbooks.resolve.plan import plan_resolve
from bot.slack import migration_views
from commands.parser import Spec

NAME = "resolve"
SPEC = Spec(
    "resolve <migration> [--applied] [--env NAME]",
    "Option 1: mark a failed migration rolled back (or --applied), undoing what took effect first.",
    positional=("migration",),
    options=("env",),
    flags=("applied",),
)


def run(ctx) -> None:
    env = ctx.services.config.environment(ctx.environment)
    name = ctx.parsed.args["migration"]
    opened = ctx.client.views_open(
        trigger_id=ctx.trigger_id, view=migration_views.resolve_loading(env.name, name[:80])
    )
    view = opened["view"]
    try:
        ctx.services.engine.check_requester(env, ctx.user, "a resolve")
        plan = plan_resolve(env, name, applied="applied" in ctx.parsed.flags)
    except UserError as error:
        text = error.message + (f"\n{error.hint}" if error.hint else "")
        ctx.client.views_update(
            view_id=view["id"], hash=view["hash"], view=migration_views.resolve_error(text)
        )
        return None
    ctx.client.views_update(
        view_id=view["id"],
        hash=view["hash"],
        view=migration_views.resolve_confirm(env.name, plan.params(), env.protected),
    )
    return None
