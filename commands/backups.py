"""/rollback backups [--env NAME]: every environment (or one) audited against the runbook's
"Database Backup Strategy" table. Read-only.

/rollback backups --retention [--env NAME]: the retention review on demand: the manual
snapshots past their retention date, and an operation whose deletion an approver approves."""

from bot.clock import shown_utc, utcnow
from bot.runbooks.backups import audit_backups
from bot.runbooks.retention import card_data, review_params
from bot.runbooks.retention_schedule import start_review
from bot.slack.backup_views import backups_card
from bot.slack.retention_views import retention_reply
from commands.parser import Spec

NAME = "backups"
SPEC = Spec(
    "backups [--env NAME] [--retention]",
    "Audit backups against the runbook's table: automated retention, restore lag, a"
    " snapshot before each migration. --retention: review snapshots past their retention"
    " date (deleting them needs an approver).",
    options=("env",),
    flags=("retention",),
)


def run(ctx) -> dict:
    now = utcnow()
    if "retention" in ctx.parsed.flags:
        env = ctx.services.config.environment(ctx.environment)
        op, reviewed = start_review(ctx.services.engine, env, ctx.user)
        params = op.params if op else review_params(reviewed, ctx.user, now)
        return retention_reply(op, card_data(env.name, params))
    rows = audit_backups(ctx.services.config, ctx.parsed.options.get("env"), now)
    return backups_card([r.to_dict() for r in rows], shown_utc(now))
