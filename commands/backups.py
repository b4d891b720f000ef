"""/rollback backups [--env NAME]: every environment (or one) audited against the runbook's
"Database Backup Strategy" table. Read-only."""

from bot.clock import shown_utc, utcnow
from bot.runbooks.backups import audit_backups
from bot.slack.backup_views import backups_card
from commands.parser import Spec

NAME = "backups"
SPEC = Spec(
    "backups [--env NAME]",
    "Audit backups against the runbook's table: automated retention, restore lag, a"
    " snapshot before each migration.",
    options=("env",),
)


def run(ctx) -> dict:
    now = utcnow()
    rows = audit_backups(ctx.services.config, ctx.parsed.options.get("env"), now)
    return backups_card([r.to_dict() for r in rows], shown_utc(now))
