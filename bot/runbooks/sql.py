"""/rollback sql: runbook option 4, manual SQL, made safer than psql.

The runbook's session (BEGIN; statements; SELECT * FROM affected_table LIMIT 10; COMMIT or
ROLLBACK) becomes: a dry run rolled back (its counts on a card in the incident thread, its
sample rows and verification result to the requester alone), the before-checklist, an
approval bound to the SHA-256 of the exact SQL and to the dry run's row counts, then one
transaction with exact backups of what is destroyed, held open until the requester clicks
Commit or Roll back with the counts and the verification result in front of them. What the
SQL may be and how it runs: bot/sql/manual.py and bot/sql/manual_run.py.
"""

from __future__ import annotations

from contextlib import closing
from dataclasses import dataclass, field
from typing import Any

from bot.clock import duration_seconds
from bot.database import connect
from bot.engine.model import PlanChanged, RolledBack, Runbook, Step, StepContext
from bot.errors import UserError
from bot.prisma.resolve import mark_rolled_back, remove_from_history
from bot.sql.manual import ManualSql, ManualSqlError, analyse
from bot.sql.manual_plan import PlanContext, decision_text, plan_text
from bot.sql.manual_run import CountsChanged, RunResult, apply, dry_run, verify_after_commit
from bot.sql.session import Limits
from bot.store.records import CardKind
from bot.text import one_line_reason, plural, refuse_invisible

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
    # The dry run's own (smaller) limits; operations started before they existed use these.
    dry_run_lock_timeout: str = "2s"
    dry_run_statement_timeout: str = "15s"
    dry_run_total_timeout: str = "30s"
    history_migration: str | None = None
    history_action: str | None = None  # "rolled_back" or "remove"
    # recorded by the steps
    dry_run: dict[str, Any] = field(default_factory=dict)  # counts only: no row of data
    dry_run_counts: list[Any] = field(default_factory=list)  # what the approval binds
    previous_dry_run: dict[str, Any] | None = None  # the counts an earlier approval saw
    committed: bool = False
    backup_tables: list[str] = field(default_factory=list)  # as shown
    backup_table_names: list[str] = field(default_factory=list)  # the same, as SQL
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
    reason = _typed_text_checked(reason, sql, verification)
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
        "dry_run_lock_timeout": config.sql_dry_run_lock_timeout,
        "dry_run_statement_timeout": config.sql_dry_run_statement_timeout,
        "dry_run_total_timeout": config.sql_dry_run_total_timeout,
        "decision_timeout_seconds": config.sql_decision_timeout_seconds,
    }
    if migration:
        params.update(history_migration=migration, history_action=action)
    return engine.start("sql", env_name, requester, params)


def _typed_text_checked(reason: str, sql: str, verification: str | None) -> str:
    """The reason as kept (one line, capped); SQL and verification without hidden
    characters. Checked here, on the server, whatever the modal allowed."""
    typed = (("sql", sql, "SQL"), ("verification", verification or "", "verification query"))
    for field_name, text, what in typed:
        try:
            refuse_invisible(text, what)
        except UserError as error:
            raise ManualSqlError(field_name, error.message, error.hint) from None
    try:
        return one_line_reason(reason)
    except UserError as error:
        raise ManualSqlError("reason", error.message, error.hint) from None


def manual_sql(params: dict) -> ManualSql:
    """The analysis of the operation's SQL (validated at submission; re-read from params
    so the plan, the dry run and the real run all use the very same text)."""
    return analyse(params["sql"], params.get("verification"), stamp=params["backup_stamp"])


def _limits(params: dict, *, holding: bool = False) -> Limits:
    idle = float(params["decision_timeout_seconds"]) + 60 if holding else None
    return Limits(params["lock_timeout"], params["statement_timeout"], idle)


def _dry_run_limits(params: dict) -> Limits:
    """Before anyone approved: the dry run's own, smaller limits ([sql] dry_run_*), and a
    budget for all of it (its locks are held until it ends)."""
    return Limits(
        params.get("dry_run_lock_timeout", "2s"),
        params.get("dry_run_statement_timeout", "15s"),
        total_seconds=duration_seconds(params.get("dry_run_total_timeout", "30s")),
    )


def plan_apply(op, env) -> str:
    """The approval's text: what writes first, with the dry run's counts and backups, then
    the full SQL; it binds the SQL's hash and the counts (bot/sql/manual_plan.py)."""
    p = op.params
    context = PlanContext(env.name, op.id, p.get("reason", ""), _history_plan(p))
    return plan_text(
        manual_sql(p),
        context,
        p.get("dry_run") or {},
        p.get("dry_run_counts") or [],
        p.get("previous_dry_run"),
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
            done = f"removed {plural(count, 'history row')} of {name}"
        else:
            done = f"marked {name} rolled back ({plural(len(mark_rolled_back(conn, name)), 'row')})"
    ctx.record(history_updated=done)
    return f"; {done}"


def card_data(manual: ManualSql, result: RunResult, *, rows: bool) -> dict:
    """A result for a card: counts only for the channel and the audit log; with the sample
    rows and the verification result (``rows``) for the requester alone."""
    data = result.to_dict(samples=rows)
    return {"sha256": manual.sha256, "verification_sql": manual.verification, **data}


def _dry_run(ctx: StepContext) -> str:
    manual = manual_sql(ctx.params)
    with closing(connect(ctx.environment, autocommit=False)) as conn:
        result = dry_run(conn, manual, _dry_run_limits(ctx.params))
    env = ctx.environment.name
    counts = card_data(manual, result, rows=False)
    ctx.card(CardKind.SQL_DRY_RUN, f"Dry run on {env}: rolled back, nothing was changed", counts)
    ctx.for_requester(
        CardKind.SQL_ROWS,
        f"Dry run on {env}: its rows, for you only (rolled back)",
        card_data(manual, result, rows=True),
    )
    ctx.record(dry_run=counts, dry_run_counts=result.counts())
    if manual.verification:
        ctx.tick_checklist("before", "verification", "verification query run in the dry run")
    # The step's result is shown in the status message (the card): counts only, as the
    # channel gets them; the rows went to the requester alone above.
    return f"{_rows(result)}{_verified(result)}; rolled back"


def _apply(ctx: StepContext) -> str:
    manual = manual_sql(ctx.params)
    timeout = float(ctx.params["decision_timeout_seconds"])
    env = ctx.environment

    def decide(result: RunResult) -> str:
        ctx.for_requester(
            CardKind.SQL_ROWS,
            f"Ran on {env.name}, not committed yet: its rows, for you only",
            card_data(manual, result, rows=True),
        )
        # Rows in the channel only once a second person approved (a protected environment).
        evidence = decision_text(
            env.name, result.to_dict(), manual.verification, rows=env.protected
        )
        return ctx.ask(
            evidence.prompt,
            COMMIT_CHOICES,
            timeout=timeout,
            default="rollback",
            table=evidence.table,
        )

    # In a protected environment the approver approved the dry run's counts too.
    approved = ctx.params.get("dry_run_counts") if env.protected else None
    try:
        with closing(connect(env, autocommit=False)) as conn:
            result = apply(conn, manual, _limits(ctx.params, holding=True), decide, approved)
    except CountsChanged as changed:
        ctx.record(
            previous_dry_run=ctx.params.get("dry_run"),
            dry_run=card_data(manual, changed.result, rows=False),
            dry_run_counts=changed.now,
        )
        raise PlanChanged(
            "the real run found other row counts than the approved dry run; it was rolled"
            " back, nothing was committed. A new approval, showing both, is needed."
        ) from None
    if not result.committed:
        raise RolledBack("Nothing was committed and no backup table was kept.")
    kept = [b for b in result.backups if b.rows is not None and not b.skipped]
    backups = [b.name for b in kept]
    ctx.record(committed=True, backup_tables=backups, backup_table_names=[b.table for b in kept])
    history = _update_history(ctx)
    return (
        f"committed; {_rows(result)}"
        + (f"; backups: {', '.join(backups)}" if backups else "")
        + history
    )


def _verify(ctx: StepContext) -> str:
    manual = manual_sql(ctx.params)
    found = []
    shown, tables = ctx.params.get("backup_tables", []), ctx.params.get("backup_table_names", [])
    with closing(connect(ctx.environment, autocommit=True)) as conn:
        for name, table in zip(shown, tables, strict=True):
            rows = conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
            found.append(f"{name}: {plural(rows, 'row')}")
    if manual.verification:
        with closing(connect(ctx.environment, autocommit=False)) as conn:
            result = verify_after_commit(conn, manual, _limits(ctx.params))
        found.append(f"verification query: {plural(result.total, 'row')}")
    for line in found:
        ctx.say(f"After commit: {line}")
    return "; ".join(found) or "committed; no verification query given"


def _verified(result: RunResult) -> str:
    if result.verification is None:
        return ""
    return f"; verification query: {plural(result.verification.total, 'row')}"


def _rows(result: RunResult) -> str:
    counts = [s.rowcount for s in result.statements if s.rowcount is not None]
    return f"{plural(len(result.statements), 'statement')}, {plural(sum(counts), 'row')} affected"


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
