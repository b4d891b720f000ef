"""/rollback revert <migration> [--env NAME]: runbook option 2, a reverse migration.

Opens the review modal at once (the trigger is valid 3 s), then fills it with the generated
SQL, its classification, impact and lint findings, which need the database."""

from bot.errors import UserError
from bot.runbooks.revert.plan import plan_revert
from bot.slack import revert_views
from commands.parser import Spec

NAME = "revert"
SPEC = Spec(
    "revert <migration> [--env NAME]",
    "Option 2: undo a completed migration with a generated, reviewed reverse migration.",
    positional=("migration",),
    options=("env",),
)


def run(ctx) -> None:
    services = ctx.services
    env = services.config.environment(ctx.environment)
    name = ctx.parsed.args["migration"]
    opened = ctx.client.views_open(
        trigger_id=ctx.trigger_id, view=revert_views.revert_loading(env.name, name[:80])
    )
    view = opened["view"]
    try:
        services.engine.check_requester(env, ctx.user, "a reverse migration")
        plan = plan_revert(services.config, env, name, services.engine.clock())
    except UserError as error:
        text = error.message + (f"\n{error.hint}" if error.hint else "")
        content = revert_views.revert_error(text)
    else:
        content = revert_views.revert_review(env.name, plan.params(), env.protected)
    ctx.client.views_update(view_id=view["id"], hash=view["hash"], view=content)
    return None
