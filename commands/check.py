"""/rollback check [migration] [--pending] [--env NAME]: the Migration Safety Checklist for
the pending migrations (or one), answered from the live database. Read-only."""

from bot.errors import UserError
from bot.prevention.report import review_dict
from bot.runbooks.check import check_environment
from bot.slack.check_views import check_message
from commands.parser import Spec

NAME = "check"
SPEC = Spec(
    "check [migration] [--pending] [--env NAME]",
    "Before a deploy: the Migration Safety Checklist for each pending migration, answered"
    " with evidence (compatibility, data migration, rollback plan, reversibility, locks).",
    optional_positional=("migration",),
    options=("env",),
    flags=("pending",),
)


def run(ctx) -> dict:
    env = ctx.services.config.environment(ctx.environment)
    name = ctx.parsed.args.get("migration")
    if name and "pending" in ctx.parsed.flags:
        raise UserError(
            f"`{name}` and --pending both say what to check.",
            "Name one migration, or give --pending (the default) for every pending one.",
        )
    reviews = check_environment(ctx.services.config, env, name)
    return check_message(env.name, [review_dict(r) for r in reviews], ctx.channel)
