"""/rollback sql [--env NAME]: runbook option 4, manual SQL; opens the modal that takes it."""

from bot.prisma.migrations_dir import read_migrations_dir
from bot.slack import sql_views
from commands.parser import Spec

NAME = "sql"
SPEC = Spec(
    "sql [--env NAME]",
    "Option 4: manual SQL rollback: dry run, backups, approval, Commit or Roll back.",
    options=("env",),
)


def run(ctx) -> None:
    services = ctx.services
    env = services.config.environment(ctx.environment)
    services.engine.check_requester(env, ctx.user, "a manual SQL rollback")
    # trigger_id is valid for 3 s and once: open the modal before anything slow.
    ctx.client.views_open(
        trigger_id=ctx.trigger_id,
        view=sql_views.sql_modal(env.name, env.protected, _migration_names(env)),
    )


def _migration_names(env) -> list[str]:
    """From the migrations directory (a fast local read, unlike the database)."""
    if env.migrations_dir is None:
        return []
    try:
        return list(read_migrations_dir(env.migrations_dir).names)
    except OSError:
        return []
