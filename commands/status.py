"""/rollback status [env]: migration status with a diagnosis of each failed migration and
the recommended next step. Read-only."""

from bot.runbooks.status import assess, status_card_data
from bot.slack.migration_views import status_card
from commands.parser import Spec

NAME = "status"
SPEC = Spec(
    "status [env]",
    "Migration status: failed, pending, edited; what a failed"
    " migration changed and what to do next.",
    optional_positional=("env",),
    options=("env",),
)


def run(ctx) -> dict:
    env = ctx.services.config.environment(ctx.parsed.args.get("env") or ctx.environment)
    holder = ctx.services.engine.holder(env.name)
    data = status_card_data(env.name, assess(env))
    if holder:
        op = holder.operation
        data["holder"] = {
            "user": holder.user,
            "since": holder.since,
            "operation": op.id,
            "runbook": op.runbook,
            "status": op.status,
        }
    return status_card(data)
