"""Runbook option 1, "Prisma Migrate Resolve", the runbook's steps:
1. check migration status; 2. (when it failed part-way) undo exactly what took effect, then
mark it rolled back (or --applied); 3. verify status; 4. fix the migration file (told to
the user); 5. re-run migrations (the deploy runbook, from a button).
"""

from __future__ import annotations

from bot.database import connect
from bot.engine.model import Runbook, Step, StepContext, ToDo
from bot.errors import ConflictError
from bot.prisma.recommendation import NextStep
from bot.prisma.resolve import mark_applied, mark_rolled_back
from bot.prisma.undo import run_undo
from bot.runbooks.resolve.params import ResolveParams
from bot.runbooks.resolve.plan import undo_with_backups
from bot.runbooks.status import assess, migrations_dir, show_status
from bot.store.records import CardKind
from bot.text import plural


def _check_status(ctx: StepContext) -> str:
    assessment = show_status(ctx)
    name = ctx.params["migration"]
    if ctx.params["mode"] == "rolled_back" and name not in assessment.recommendations:
        raise ConflictError(
            f"`{name}` is no longer in a failed state; nothing was changed.",
            f"Check `/rollback status --env {ctx.environment.name}`.",
        )
    return assessment.status.message.splitlines()[0] if assessment.status.message else ""


def _undo_applied(ctx: StepContext) -> str:
    """Re-diagnoses first: the undo runs only if the live database still matches the plan
    that was approved, statement for statement."""
    p, env = ctx.params, ctx.environment
    name = p["migration"]
    assessment = assess(env)
    rec = assessment.recommendations.get(name)
    undo = None
    if rec is not None and rec.step == NextStep.UNDO_THEN_RESOLVE and p.get("backup_stamp"):
        diagnosis = assessment.diagnoses[name]
        undo = undo_with_backups(env, assessment.status, diagnosis, name, p["backup_stamp"])
    if undo is None or list(undo.statements) != p["undo_sql"]:
        raise ConflictError(
            f"The database changed since `{name}` was diagnosed; the approved undo no longer"
            " matches it, so nothing was run.",
            f"Start `/rollback resolve {name} --env {env.name}` again.",
        )
    with connect(env) as conn:
        ran = run_undo(conn, undo)
    for effect in p.get("undo_effects") or []:
        ctx.say(f"Undo: {effect}")
    return f"undid {plural(len(ran), 'statement')}, backups first"


def _mark_plan(op, env) -> str:
    name = op.params["migration"]
    if op.params["mode"] == "applied":
        write = (
            "INSERT INTO _prisma_migrations a row for it: new uuid, checksum of the"
            " current migration.sql, logs '', started_at = finished_at = now(),"
            " applied_steps_count 0 (and set rolled_back_at on its failed rows)"
        )
        verb = "prisma migrate resolve --applied"
    else:
        write = (
            "UPDATE _prisma_migrations SET rolled_back_at = now() WHERE migration_name"
            " = <name> AND finished_at IS NULL AND rolled_back_at IS NULL"
        )
        verb = "prisma migrate resolve --rolled-back"
    plan = (
        f'environment: {env.name}\nmigration: {name}\ncommand: {verb} "{name}"\n'
        f"writes (inside pg_advisory_lock(72707369)): {write}"
    )
    if op.params.get("undo_sql"):
        sql = "\n".join(f"{s};" for s in op.params["undo_sql"])
        effects = "\n".join(f"  - {e}" for e in op.params.get("undo_effects") or [])
        plan = (
            "first, undo what took effect (one transaction, inside"
            f" pg_advisory_lock(72707369)), backups first:\n{effects}\n{sql}\nthen:\n{plan}"
        )
    if op.params.get("not_applied"):
        never = "\n".join(f"  - {s}" for s in op.params["not_applied"])
        plan += (
            "\nWARNING: recorded as applied although these statements did not take"
            f" effect (confirmed by {op.requester}):\n{never}"
        )
    return plan


def _mark(ctx: StepContext) -> str:
    """One destructive step, one approval: the undo (when the migration failed part-way)
    and the history write are one plan."""
    name = ctx.params["migration"]
    undone = _undo_applied(ctx) + "; " if ctx.params.get("undo_sql") else ""
    with connect(ctx.environment) as conn:
        if ctx.params["mode"] == "applied":
            mark_applied(conn, name, migrations_dir(ctx.environment))
            return f"{undone}{name} recorded as applied"
        rows = mark_rolled_back(conn, name)
    return f"{undone}{name} marked rolled back ({plural(len(rows), 'row')})"


def _verify(ctx: StepContext) -> str:
    assessment = show_status(ctx, " after resolve")
    name = ctx.params["migration"]
    if name in assessment.recommendations:
        raise ConflictError(
            f"`{name}` still shows as failed after the resolve.",
            f"Check the database and `/rollback status --env {ctx.environment.name}`.",
        )
    return f"{name} is no longer failed"


def _next_steps(ctx: StepContext) -> str:
    name = ctx.params["migration"]
    ctx.card(
        CardKind.RESOLVE_NEXT,
        f"Next: fix {name}, then re-run migrations",
        {
            "environment": ctx.environment.name,
            "migration": name,
            "path": f"{ctx.environment.migrations_dir}/{name}/migration.sql",
        },
    )
    # Nobody has fixed anything yet: the step is a to-do for the requester, not a tick.
    return ToDo(
        f"fix `{name}/migration.sql`, then re-run migrations (`/rollback deploy"
        f" --env {ctx.environment.name}`)",
        ctx.operation.requester,
    )


RESOLVE = Runbook(
    name="resolve",
    title="migration resolve (option 1)",
    steps=(
        Step("check_status", "Check migration status", _check_status, idempotent=True),
        Step(
            "mark",
            "Undo what took effect (if any), mark the migration resolved",
            _mark,
            destructive=True,
            plan=_mark_plan,
        ),
        Step("verify_status", "Verify status", _verify, idempotent=True),
        Step(
            "next_steps",
            "Fix the migration file, then re-run migrations",
            _next_steps,
            idempotent=True,
        ),
    ),
    describe=lambda p: (
        f"Resolve `{p.get('migration')}` as"
        f" {'applied' if p.get('mode') == 'applied' else 'rolled back'}."
        f" {p.get('diagnosis', '')}"
    ),
    params=ResolveParams,
)
