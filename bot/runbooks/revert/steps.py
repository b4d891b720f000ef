"""Runbook option 2, "Create Reverse Migration", the runbook's steps:
1. create a new migration with reverse operations (reviewed and edited in Slack first);
2. its SQL: generated, classified, checked against the live catalog, linted;
testing: staging first (enforced for protected environments), then deploy, applied and
recorded in _prisma_migrations exactly as `prisma migrate deploy` applies and records it;
the file is written into the migrations directory only once applied; then the diagnosis of
the original must show every reversed statement as not applied.
"""

from __future__ import annotations

from bot.database import connect
from bot.engine.model import Runbook, Step, StepContext
from bot.errors import ConflictError
from bot.prisma.history import RecordState
from bot.prisma.status import migration_status
from bot.runbooks.revert.apply import (
    apply_revert,
    check_reverted,
    staged_directory,
    write_migration,
)
from bot.runbooks.revert.params import RevertParams
from bot.runbooks.revert.plan import later_migrations
from bot.runbooks.status import migrations_dir, show_status
from bot.sql.names import QualifiedName
from bot.sql.statements import split_statements
from bot.store.records import CardKind
from bot.text import plural


def _review(ctx: StepContext) -> str:
    p = ctx.params
    ctx.card(
        CardKind.REVERT_REVIEW,
        f"Reverse migration {p['revert_name']} for {ctx.environment.name}",
        {"environment": ctx.environment.name, **p},
    )
    tested = p.get("staging_tested")
    if tested:
        ctx.tick_checklist(
            "before",
            "staging",
            f"applied on staging as {tested['name']} (sha256 {tested['checksum'][:12]})",
        )
    counts = [r["class"] for r in p["rows"]]
    return (
        f"{plural(len(counts), 'step')}: {counts.count('reversible')} reversible,"
        f" {counts.count('data_losing')} data-losing"
    )


def _write(ctx: StepContext) -> str:
    """After the apply: the file goes into the migrations directory only if the history
    shows the reverse applied with exactly the approved checksum."""
    p, env = ctx.params, ctx.environment
    directory = migrations_dir(env)
    with connect(env) as conn:
        status = migration_status(conn, directory)
    if not _applied(status, p["revert_name"], p["sql_sha256"]):
        raise ConflictError(
            f"`{p['revert_name']}` is not applied with the approved SQL; no file was written."
        )
    path = write_migration(directory, p["revert_name"], p["sql"])
    relative = f"{p['revert_name']}/migration.sql"
    ctx.say(
        f"Reverse migration written: `{path}`. Commit it to the application's repository,"
        " or the next deploy from a checkout without it reports the migration as missing:\n"
        f"`git -C {directory} add {relative} && git -C {directory} commit -m"
        f' "Revert {p["migration"]} ({ctx.operation.id})"`'
    )
    return str(path)


def _applied(status, name: str, sha256: str) -> bool:
    return any(
        r.state == RecordState.APPLIED and r.checksum == sha256 for r in status.rows_for(name)
    )


def _apply_plan(op, env) -> str:
    p = op.params
    tested = p.get("staging_tested")
    if tested:
        staging = f"tested: applied on staging as {tested['name']} at {tested['finished_at']}"
    elif env.protected:
        staging = "this run is the staging test"
    else:
        staging = "unprotected environment: no staging test required"
    steps = [f"  {i}. [{r['class']}] {r['effect']}" for i, r in enumerate(p["rows"], start=1)]
    return "\n".join(
        [
            f"REVERSE MIGRATION on environment {env.name} (operation {op.id})",
            f"original migration: {p['migration']}",
            f"new migration: {env.migrations_dir}/{p['revert_name']}/migration.sql (written"
            " there only after it applied)",
            f"sha256: {p['sql_sha256']}",
            "applied as `prisma migrate deploy` applies it and recorded in _prisma_migrations"
            " as it records it: the whole script as one simple query (one transaction),"
            " inside pg_advisory_lock(72707369)",
            staging,
            "steps (last change first):",
            *steps,
            "SQL edited in review: " + ("yes" if p.get("edited") else "no"),
            "sql:",
            p["sql"],
        ]
    )


def _apply(ctx: StepContext) -> str:
    """Re-checks the live history first (the original still applied, the file exactly what
    was approved), then applies from a staged copy of the migrations directory. A rerun
    after a crash finds the reverse applied and does nothing."""
    p, env = ctx.params, ctx.environment
    directory = migrations_dir(env)
    with connect(env) as conn:
        status = migration_status(conn, directory)
        if _applied(status, p["revert_name"], p["sql_sha256"]):
            return f"{p['revert_name']} is already applied (a rerun): nothing ran again"
        applied = {r.state for r in status.rows_for(p["migration"])}
        local = status.local(p["revert_name"])
        if RecordState.APPLIED not in applied:
            raise ConflictError(
                f"`{p['migration']}` changed since the review; nothing ran.",
                f"Check `/rollback status --env {env.name}` and start"
                f" `/rollback revert {p['migration']} --env {env.name}` again.",
            )
        later = later_migrations(status, p["migration"])
        if later:
            raise ConflictError(
                f"{', '.join(f'`{n}`' for n in later)} applied after `{p['migration']}` since"
                " the review; its reverse would ignore that. Nothing ran.",
                f"Check `/rollback status --env {env.name}` and start"
                f" `/rollback revert {p['migration']} --env {env.name}` again.",
            )
        if local is not None and local.checksum != p["sql_sha256"]:
            raise ConflictError(
                f"`{local.path}/migration.sql` is not the approved SQL; nothing ran.",
                f"Start `/rollback revert {p['migration']} --env {env.name}` again to review"
                " and approve the new file.",
            )
        with staged_directory(directory, p["revert_name"], p["sql"]) as staged:
            apply_revert(conn, staged, p["revert_name"], ctx.progress)
        backups = _backup_counts(conn, p["rows"])
    for line in backups:
        ctx.say(f"Backup {line}")
    ran = len(split_statements(p["sql"]))
    ctx.record(applied_statements=ran)
    return f"applied {p['revert_name']}: {plural(ran, 'statement')} in one transaction"


def _backup_counts(conn, rows: list[dict]) -> list[str]:
    lines = []
    for row in rows:
        if row.get("backup"):
            table = QualifiedName(*row["backup"])
            exists = conn.execute("SELECT to_regclass(%s)", (table.sql(),)).fetchone()[0]
            if exists is None:
                lines.append(f"{table.display()}: not created (the SQL was edited)")
                continue
            count = conn.execute(f"SELECT count(*) FROM {table.sql()}").fetchone()[0]
            lines.append(f"{table.display()}: {plural(count, 'row')} kept")
    return lines


def _verify(ctx: StepContext) -> str:
    name = ctx.params["migration"]
    diagnosis = check_reverted(ctx.environment, name)
    show_status(ctx, " after the revert")
    ctx.say(f"Diagnosis of `{name}` now: {diagnosis.summary}")
    return f"none of the reversed statements of {name} is in effect any more"


REVERT = Runbook(
    name="revert",
    title="reverse migration (option 2)",
    steps=(
        Step("review", "Review the reverse migration", _review, idempotent=True),
        Step(
            "apply",
            "Apply the reverse migration (backups first)",
            _apply,
            destructive=True,
            # A rerun finds the reverse applied (Prisma's history, with its checksum) and
            # does nothing; killed mid-script, Prisma's failed row makes deploy refuse.
            idempotent=True,
            plan=_apply_plan,
        ),
        Step(
            "write_migration",
            "Write the reverse migration into the migrations directory",
            _write,
            idempotent=True,
        ),
        Step("verify", "Verify: the original's changes are gone", _verify, idempotent=True),
    ),
    describe=lambda p: (
        f"Revert `{p.get('migration')}` with the new migration `{p.get('revert_name')}`."
    ),
    params=RevertParams,
)
