"""/rollback snapshot [--env NAME]: the runbook's manual snapshot before migrations, tagged
with the pending migrations and a retention date."""

from bot.clock import utcnow
from bot.runbooks.snapshot import take_snapshot
from bot.slack.backup_views import snapshot_taken
from commands.parser import Spec

NAME = "snapshot"
SPEC = Spec(
    "snapshot [--env NAME]",
    "Take the manual snapshot the runbook asks for before migrations (tagged, kept 90 days).",
    options=("env",),
)


def run(ctx) -> dict:
    env = ctx.services.config.environment(ctx.environment)
    ctx.services.engine.check_requester(env, ctx.user, "a snapshot")
    snapshot = take_snapshot(ctx.services.store, env, ctx.user, utcnow())
    return snapshot_taken(env.name, snapshot)
