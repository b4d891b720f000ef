"""Step 5 of option 1, "Re-run migrations": pending migrations applied exactly as
`prisma migrate deploy` does (bot.prisma.deploy), with live progress per migration."""

from __future__ import annotations

from dataclasses import dataclass, field

from bot.database import connect
from bot.engine.model import Runbook, Step, StepContext
from bot.errors import ConflictError
from bot.prisma.deploy import DeployEventKind, deploy
from bot.prisma.error_codes import database_error, p3009_failed_migrations
from bot.prisma.history import RecordState
from bot.prisma.status import migration_status
from bot.runbooks.deploy_guard import guard, guard_plan
from bot.runbooks.status import assess, migrations_dir, show_status
from bot.settings import Environment
from bot.text import plural


@dataclass(frozen=True)
class DeployParams:
    """Started with none; the status check records what the approval is bound to."""

    pending: list[str] = field(default_factory=list)
    pending_checksums: dict[str, str] = field(default_factory=dict)
    # The deploy guard (bot/runbooks/deploy_guard.py): reviewed check cards the front end
    # read from the store, a requester's reason to deploy outside the windows, the snapshot.
    reviews: dict[str, dict] = field(default_factory=dict)
    window_override: str = ""
    snapshot: str = ""


@dataclass(frozen=True)
class DeployPreview:
    """What `/rollback deploy` shows before anything starts (the checklist must not open
    before anyone saw which migrations would run): the pending migrations in the order
    Prisma applies them, the failed ones that make Prisma refuse (P3009), and each pending
    file that is byte for byte the one that already failed (a resolve marked it rolled
    back; unless what it depends on changed, it fails the same way)."""

    environment: str
    pending: tuple[str, ...]
    failed: tuple[str, ...]
    # name -> (when it failed, PostgreSQL's error then)
    repeats: dict[str, tuple[str, str]]

    def params(self) -> dict:
        return {
            "environment": self.environment,
            "pending": list(self.pending),
            "failed": list(self.failed),
            "repeats": {n: list(r) for n, r in self.repeats.items()},
        }


def preview_deploy(env: Environment) -> DeployPreview:
    with connect(env) as conn:
        status = migration_status(conn, migrations_dir(env))
    repeats = {}
    for name in status.pending:
        local = status.local(name)
        for row in status.rows_for(name):
            same = local is not None and row.checksum == local.checksum
            if row.state == RecordState.ROLLED_BACK and same and row.logs:
                repeats[name] = (row.started_at.isoformat(), database_error(row.logs))
    failed = tuple(dict.fromkeys(r.migration_name for r in status.failed))
    return DeployPreview(env.name, tuple(status.pending), failed, repeats)


def _check_status(ctx: StepContext) -> str:
    status = show_status(ctx).status
    if status.failed:
        raise p3009_failed_migrations(
            [(r.migration_name, r.started_at, r.logs) for r in status.failed]
        )
    ctx.record(
        pending=list(status.pending),
        pending_checksums={n: status.local(n).checksum for n in status.pending},
    )
    return plural(len(status.pending), "pending migration")


def _deploy_plan(op, env) -> str:
    pending = op.params.get("pending", [])
    checksums = op.params.get("pending_checksums", {})
    lines = "\n".join(f"  {n} (sha256 {checksums.get(n, '?')[:16]})" for n in pending)
    text = (
        f"environment: {env.name}\ncommand: prisma migrate deploy\n"
        f"applies {plural(len(pending), 'migration')}, in order:\n{lines or '  (none)'}"
    )
    return text + guard_plan(op.params)


def _apply(ctx: StepContext) -> str:
    approved = ctx.params.get("pending", [])
    status = assess(ctx.environment).status
    current = {n: status.local(n).checksum for n in status.pending}
    if list(current) != approved or current != ctx.params.get("pending_checksums"):
        raise ConflictError(
            "The pending migrations changed after approval (a new or edited file), so"
            " nothing was applied.",
            "Re-run migrations again to approve the new list.",
        )
    if not approved:
        return "nothing to apply"

    def progress(event) -> None:
        done = event.index - (0 if event.kind != DeployEventKind.STARTED else 1)
        ctx.progress(done, event.total, f"{event.kind} {event.migration}")
        if event.kind == DeployEventKind.FAILED:
            ctx.say(f"`{event.migration}` failed: {event.error}")

    with connect(ctx.environment) as conn:
        result = deploy(conn, migrations_dir(ctx.environment), on_progress=progress)
    return f"applied {plural(len(result.applied), 'migration')}"


def _verify(ctx: StepContext) -> str:
    assessment = show_status(ctx, " after deploy")
    if assessment.status.failed or assessment.status.pending:
        raise ConflictError(
            "Migrations are still failed or pending after the deploy.", "See the status card above."
        )
    return "schema is up to date"


DEPLOY = Runbook(
    name="deploy",
    title="re-run migrations",
    steps=(
        Step("check_status", "Check migration status", _check_status, idempotent=True),
        Step("guard", "Deploy guard: window, check cards, snapshot", guard, idempotent=True),
        Step(
            "apply_pending", "Apply pending migrations", _apply, destructive=True, plan=_deploy_plan
        ),
        Step("verify_status", "Verify status", _verify, idempotent=True),
    ),
    describe=lambda p: (
        "Re-run migrations: apply the pending migrations as `prisma migrate deploy` does."
    ),
    params=DeployParams,
)
