"""/rollback sql: runbook option 4, manual SQL, made safer than psql.

The runbook's session (BEGIN; statements; SELECT * FROM affected_table LIMIT 10; COMMIT or
ROLLBACK) becomes: a dry run rolled back (counts and sample rows on a card), the
before-checklist, an approval bound to the SHA-256 of the exact SQL, then one transaction
with backups of what is destroyed, held open until the requester clicks Commit or Roll back.
"""

from __future__ import annotations

from contextlib import closing
from dataclasses import dataclass, field

from bot.database import connect
from bot.engine.model import Runbook, Step, StepContext
from bot.errors import UserError
from bot.prisma.resolve import mark_rolled_back, remove_from_history
from bot.sql.manual import ManualSql, ManualSqlError, analyse
from bot.sql.manual_run import RunResult, apply, dry_run
from bot.sql.session import Limits as Timeouts
from bot.store.records import CardKind

COMMIT_CHOICES = {"commit": "Commit", "rollback": "Roll back"}


@dataclass(frozen=True)
class SqlParams:
    sql: str  # exactly as submitted: analysed, approved (by its sha256) and run as is
    verification: str | None
    reason: str
    backup_stamp: str
    sql_sha256: str
    lock_timeout: str
    statement_timeout: str
    decision_timeout_seconds: float
    history_migration: str | None = None
    history_action: str | None = None  # "rolled_back" or "remove"
    # recorded by the steps
    dry_run_rowcounts: list[int | None] = field(default_factory=list)
    committed: bool = False
    backup_tables: list[str] = field(default_factory=list)
    history_updated: str | None = None


def start(
    engine,
    env_name: str,
    requester: str,
    sql: str,
    verification: str,
    reason: str,
    history: tuple[str, str] = ("", ""),
):
    """Validates the submitted SQL (a ManualSqlError names the field at fault) and starts the
    operation; the dry run begins at once."""
    if not reason.strip():
        raise ManualSqlError("reason", "Give a reason: it goes into the incident log.")
    stamp = engine.clock().strftime("%Y%m%d_%H%M%S")
    manual = analyse(sql, verification, stamp=stamp)
    migration, action = history
    if bool(migration) != bool(action):
        field = "history_action" if migration else "history"
        raise ManualSqlError(
            field, "Choose both the migration and what to do with its history (or neither)."
        )
    config = engine.config
    params = {
        "sql": sql,
        "verification": manual.verification,
        "reason": reason.strip(),
        "backup_stamp": stamp,
        "sql_sha256": manual.sha256,
        "lock_timeout": config.sql_lock_timeout,
        "statement_timeout": config.sql_statement_timeout,
        "decision_timeout_seconds": config.sql_decision_timeout_seconds,
    }
    if migration:
        params.update(history_migration=migration, history_action=action)
    return engine.start("sql", env_name, requester, params)


def manual_sql(params: dict) -> ManualSql:
    """The analysis of the operation's SQL (validated at submission; re-read from params
    so the plan, the dry run and the real run all use the very same text)."""
    return analyse(params["sql"], params.get("verification"), stamp=params["backup_stamp"])


def _timeouts(params: dict, *, holding: bool = False) -> Timeouts:
    idle = float(params["decision_timeout_seconds"]) + 60 if holding else None
    return Timeouts(params["lock_timeout"], params["statement_timeout"], idle)


def plan_apply(op, env) -> str:
    manual = manual_sql(op.params)
    backups = [f"  {b.describe()}" for b in manual.backups] or ["  none"]
    statements = [
        f"  {s.statement.index + 1}. line {s.statement.line}: {s.effect} ({s.why})"
        for s in manual.statements
    ]
    return "\n".join(
        [
            "MANUAL SQL in one transaction; commit only when the requester clicks Commit",
            f"environment: {env.name}",
            f"operation: {op.id}",
            f"reason: {op.params.get('reason', '')}",
            f"sql sha256: {manual.sha256}",
            "statements:",
            *statements,
            "backup tables (created in the same transaction, before each statement):",
            *backups,
            f"verification query: {manual.verification or 'none'}",
            f"then, after COMMIT: {_history_plan(op.params)}",
            "sql:",
            manual.sql,
        ]
    )


def _history_plan(params: dict) -> str:
    name = params.get("history_migration")
    if not name:
        return "no change to _prisma_migrations"
    if params.get("history_action") == "remove":
        return (
            f"DELETE FROM _prisma_migrations WHERE migration_name = '{name}'"
            " (inside pg_advisory_lock(72707369))"
        )
    return f'prisma migrate resolve --rolled-back "{name}" (inside pg_advisory_lock(72707369))'


def _update_history(ctx: StepContext) -> str:
    """Prisma's history, through the option 1 code and its advisory lock, never free SQL."""
    name = ctx.params.get("history_migration")
    if not name:
        return ""
    with closing(connect(ctx.environment)) as conn:
        if ctx.params.get("history_action") == "remove":
            count = remove_from_history(conn, name)
            done = f"removed {count} history row(s) of {name}"
        else:
            done = f"marked {name} rolled back ({len(mark_rolled_back(conn, name))} row(s))"
    ctx.record(history_updated=done)
    return f"; {done}"


def card_data(manual: ManualSql, result: RunResult) -> dict:
    return {"sha256": manual.sha256, "verification_sql": manual.verification, **result.to_dict()}


def _dry_run(ctx: StepContext) -> str:
    manual = manual_sql(ctx.params)
    with closing(connect(ctx.environment, autocommit=False)) as conn:
        result = dry_run(conn, manual, _timeouts(ctx.params))
    ctx.card(
        CardKind.SQL_DRY_RUN,
        f"Dry run on {ctx.environment.name}: rolled back, nothing was changed",
        card_data(manual, result),
    )
    ctx.record(dry_run_rowcounts=[s.rowcount for s in result.statements])
    if manual.verification:
        ctx.tick_checklist("before", "verification", "verification query run in the dry run")
    return f"{_rows(result)}; rolled back"


def _apply(ctx: StepContext) -> str:
    manual = manual_sql(ctx.params)
    timeout = float(ctx.params["decision_timeout_seconds"])

    def decide(result: RunResult) -> str:
        ctx.card(
            CardKind.SQL_BEFORE_COMMIT,
            f"Ran on {ctx.environment.name}, not committed yet: check the result",
            card_data(manual, result),
        )
        return ctx.ask("Commit or roll back?", COMMIT_CHOICES, timeout=timeout, default="rollback")

    with closing(connect(ctx.environment, autocommit=False)) as conn:
        result = apply(conn, manual, _timeouts(ctx.params, holding=True), decide)
    if not result.committed:
        raise UserError(
            "Rolled back: nothing was committed and no backup table was kept.",
            "Start `/rollback sql` again when the SQL is ready.",
        )
    backups = [b.name for b in result.backups if b.rows is not None]
    ctx.record(committed=True, backup_tables=backups)
    history = _update_history(ctx)
    return (
        f"committed; {_rows(result)}"
        + (f"; backups: {', '.join(backups)}" if backups else "")
        + history
    )


def _verify(ctx: StepContext) -> str:
    manual = manual_sql(ctx.params)
    found = []
    with closing(connect(ctx.environment, autocommit=True)) as conn:
        for name in ctx.params.get("backup_tables", []):
            backup = next(b.name for b in manual.backups if b.name.display() == name)
            rows = conn.execute(f"SELECT count(*) FROM {backup.sql()}").fetchone()[0]
            found.append(f"{name}: {rows} rows")
        if manual.verification:
            # Read-only: the check after COMMIT must not change anything itself.
            conn.execute("BEGIN READ ONLY")
            rows = conn.execute(manual.verification.encode()).fetchall()
            conn.execute("ROLLBACK")
            found.append(f"verification query: {len(rows)} row(s)")
    for line in found:
        ctx.say(f"After commit: {line}")
    return "; ".join(found) or "committed; no verification query given"


def _rows(result: RunResult) -> str:
    counts = [s.rowcount for s in result.statements if s.rowcount is not None]
    return f"{len(result.statements)} statement(s), {sum(counts)} row(s) affected"


def _describe(params: dict) -> str:
    sha = params.get("sql_sha256", "")[:12]
    return f"Manual SQL (sha256 {sha}). Reason: {params.get('reason', '')}"


SQL = Runbook(
    name="sql",
    title="manual SQL rollback",
    steps=(
        Step(
            "dry_run",
            "Dry run in a transaction that is rolled back",
            _dry_run,
            idempotent=True,
        ),
        Step(
            "apply",
            "Run the SQL with backups; commit on the requester's word",
            _apply,
            # It writes, so it is gated everywhere (checklist) and, in protected
            # environments, approved against the exact SQL's hash.
            destructive=True,
            # A crash after COMMIT but before this step was recorded must not run it twice.
            idempotent=False,
            plan=plan_apply,
        ),
        Step("verify", "Verify after commit", _verify, idempotent=True),
    ),
    checklists=("before", "after"),
    describe=_describe,
    params=SqlParams,
)
