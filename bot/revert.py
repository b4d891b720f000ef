"""Runbook option 2, "Create Reverse Migration", as services the front ends call: plan the
reverse of a migration that completed, check it was tested on staging first, write it as a
new Prisma migration, apply it as `prisma migrate deploy` would, and check the result.

No Slack here. Every read opens its own connection (bot.database) and closes it.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import psycopg
from pglast import ast

from bot.clock import shown_utc
from bot.database import connect
from bot.errors import ConflictError, NotFound, UserError
from bot.migrations import migrations_dir
from bot.prisma.advisory_lock import DEFAULT_LOCK_TIMEOUT, prisma_advisory_lock
from bot.prisma.connection import autocommit_connection
from bot.prisma.deploy import _database_error as database_error
from bot.prisma.error_codes import p3009_failed_migrations, p3018_failed_to_apply, p3018_message
from bot.prisma.history import (
    RecordState,
    add_applied_step,
    insert_started,
    read_history,
    set_finished,
    set_logs,
)
from bot.prisma.migrations_dir import checksum, read_migrations_dir
from bot.prisma.names import resolve_migration_name
from bot.prisma.status import MigrationStatus, migration_status
from bot.settings import Config, Environment
from bot.sql.changes import ChangeKind
from bot.sql.diagnosis import Diagnosis, Verdict, diagnose
from bot.sql.impact import LiveImpact, plan_impact
from bot.sql.lint import lint
from bot.sql.reverse import ReversePlan, reverse_script
from bot.sql.statements import split_statements

STAGING = "staging"
# Slack's plain_text_input holds at most 3000 characters (Block Kit reference).
SQL_MAX_CHARS = 3000
# _prisma_migrations.migration_name is VARCHAR(255) (prisma-engines, create_migrations_table).
MIGRATION_NAME_MAX = 255
_TIMESTAMP = re.compile(r"\d{14}")


def revert_name(original: str, now: datetime) -> str:
    """``<UTC yyyymmddhhmmss>_revert_<original>``: what the runbook's
    ``db:migrate:create --name revert_<original>`` creates."""
    return f"{now:%Y%m%d%H%M%S}_revert_{original}"


def is_revert_of(name: str, original: str) -> bool:
    stamp, _, rest = name.partition("_revert_")
    return rest == original and bool(_TIMESTAMP.fullmatch(stamp))


@dataclass(frozen=True)
class RevertPlan:
    """What `/rollback revert` shows for review and, once submitted, runs."""

    environment: str
    migration: str  # the original, as named in the history
    revert_name: str  # the new migration's directory name
    sql: str  # the migration.sql to write
    rows: tuple[dict, ...]  # the classification table: class, effect, sql, dependents
    lint: dict  # LintResult.to_dict()
    staging_tested: dict | None  # {"name", "checksum", "finished_at"} outside staging
    stamp: str  # the UTC moment the plan was made, ISO (names and backups derive from it)

    @property
    def sha256(self) -> str:
        return checksum(self.sql.encode("utf-8"))

    def params(self) -> dict:
        return {
            "migration": self.migration,
            "revert_name": self.revert_name,
            "sql": self.sql,
            "sql_sha256": self.sha256,
            "generated_sha256": self.sha256,
            "rows": list(self.rows),
            "lint": self.lint,
            "staging_tested": self.staging_tested,
            "stamp": self.stamp,
        }


def plan_revert(config: Config, env: Environment, name: str, now: datetime) -> RevertPlan:
    """The reverse migration of ``name`` in ``env``; refuses, with what to do instead, a
    migration that was never applied, one already reverted, an irreversible plan, and, in
    a protected environment other than staging, SQL not yet applied on staging."""
    directory = migrations_dir(env)
    with connect(env) as conn:
        status = migration_status(conn, directory)
        name = resolve_migration_name(name, status)
        local = _completed_migration(status, name)
        tested = _staging_tested(config, env, name)
        live = LiveImpact(conn, statement_timeout=config.sql_statement_timeout)
        plan = reverse_script(
            local.script,
            default_schema=live.default_schema,
            earlier_sql=earlier_scripts(status, name),
            live=live,
            backup_stamp=f"{now:%Y%m%d}",
        )
        _refuse_irreversible(name, plan)
        rows = tuple(row.to_dict() for row in plan_impact(plan, live))
    if tested is not None:
        sql, new_name = tested.pop("sql"), tested["name"]
    else:
        new_name = revert_name(name, now)
        sql = plan.script(
            lock_timeout=config.sql_lock_timeout,
            statement_timeout=config.sql_statement_timeout,
            title=f"Reverse of {name}, written by rollback-bot at {shown_utc(now, 'minutes')}",
        )
    if len(new_name) > MIGRATION_NAME_MAX:
        raise UserError(
            f"The reverse migration's name would be longer than Prisma's {MIGRATION_NAME_MAX}"
            " characters.",
            "Write the reverse migration by hand (runbook option 2) or use `/rollback sql`.",
        )
    return RevertPlan(
        env.name, name, new_name, sql, rows, lint(sql).to_dict(), tested, now.isoformat()
    )


def _completed_migration(status: MigrationStatus, name: str):
    states = {row.state for row in status.rows_for(name)}
    if RecordState.APPLIED not in states:
        if not states:
            raise NotFound(
                f"Migration `{name}` cannot be reverted because it was never applied to the"
                " database: there is nothing to undo.",
                "Check the name and the environment with `/rollback status`.",
                code="never_applied",
            )
        if RecordState.FAILED in states:
            raise ConflictError(
                f"Migration `{name}` failed; a reverse migration is for one that completed.",
                f"Use `/rollback resolve {name}` (runbook option 1).",
                code="failed",
            )
        raise ConflictError(
            f"Migration `{name}` is rolled back; there is nothing to revert.",
            "Check `/rollback status`.",
            code="rolled_back",
        )
    done = [n for n in status.applied if is_revert_of(n, name)]
    if done:
        raise ConflictError(
            f"Migration `{name}` was already reverted by `{done[-1]}`.", "Check `/rollback status`."
        )
    local = status.local(name)
    if local is None or local.sql is None:
        raise NotFound(
            f"`{name}` is in the database history but its migration.sql is not in the"
            " migrations directory, so the bot cannot tell what to reverse.",
            "Restore the file (from git) and try again.",
        )
    if name in status.edited:
        raise ConflictError(
            f"`{name}`'s migration.sql was edited after it was applied (checksum mismatch):"
            " the bot cannot tell what actually ran.",
            "Restore the file as it was applied (from git), then try again.",
        )
    return local


def earlier_scripts(status: MigrationStatus, name: str) -> list[str]:
    """Scripts of the migrations applied before ``name``, in directory order: they define
    the columns, indexes and constraints the migration changed or dropped."""
    applied = set(status.applied)
    names = status.directory.names
    before = names[: names.index(name)]
    return [status.local(n).script for n in before if n in applied and status.local(n).sql]


def _refuse_irreversible(name: str, plan: ReversePlan) -> None:
    if plan.complete:
        return
    reasons = "; ".join(f"{s.undoes.description}: {s.note}" for s in plan.irreversible)
    raise ConflictError(
        f"`{name}` cannot be reversed by a migration: {reasons}.",
        "Restore what it destroyed from the backup table named above with `/rollback sql`"
        " (option 4), or use `/rollback pitr` (option 3).",
        code="irreversible",
    )


# --- staging first ---------------------------------------------------------------------


def needs_staging_first(env: Environment) -> bool:
    """The runbook's "Test in staging - Verify rollback works in staging first"."""
    return env.protected and env.name != STAGING


def _staging_tested(config: Config, env: Environment, name: str) -> dict | None:
    if not needs_staging_first(env):
        return None
    refusal = ConflictError(
        f"The reverse of `{name}` has not been applied successfully on staging yet, and"
        f" {env.name} is protected: the runbook tests a rollback in staging first.",
        f"Run `/rollback revert {name} --env staging` first, then come back here.",
        code="staging_first",
    )
    staging = config.environments.get(STAGING)
    if staging is None:
        raise refusal
    staging_dir = read_migrations_dir(migrations_dir(staging))
    with connect(staging) as conn:
        history = read_history(conn) or ()
    for row in reversed(history):
        if not is_revert_of(row.migration_name, name) or row.state != RecordState.APPLIED:
            continue
        local = staging_dir.get(row.migration_name)
        if local is not None and local.checksum == row.checksum:
            return {
                "name": row.migration_name,
                "checksum": row.checksum,
                "finished_at": row.finished_at.isoformat(),
                "sql": local.script,
            }
    raise refusal


def check_staging_tested(plan: dict, sql: str) -> None:
    """Outside staging the SQL must be the very script staging applied (same checksum)."""
    tested = plan.get("staging_tested")
    if tested and checksum(sql.encode("utf-8")) != tested["checksum"]:
        raise SqlFieldError(
            "This SQL differs from what was applied on staging"
            f" (`{tested['name']}`); only the tested SQL may run here.",
            "Undo your edit, or test the edited SQL on staging first with"
            f" `/rollback revert {plan['migration']} --env staging`.",
        )


# --- the edited SQL ----------------------------------------------------------------------


class SqlFieldError(UserError):
    """The SQL field of the review modal is at fault (shown as a field error)."""


def check_sql(sql: str) -> str:
    """The edited SQL must parse, change something, stay within Slack's field size and
    leave the transaction to the bot (Prisma runs a migration as one implicit
    transaction; a COMMIT inside would split it)."""
    if not sql.strip():
        raise SqlFieldError("The SQL is empty.", "Paste the reverse SQL back in.")
    if len(sql) > SQL_MAX_CHARS:
        raise SqlFieldError(f"The SQL is longer than {SQL_MAX_CHARS} characters.")
    try:
        statements = split_statements(sql)
    except UserError as error:
        raise SqlFieldError(error.message, error.hint) from None
    for statement in statements:
        if isinstance(statement.node, ast.TransactionStmt):
            raise SqlFieldError(
                f"Line {statement.line}: no BEGIN/COMMIT/ROLLBACK; the bot runs the whole"
                " migration in one transaction.",
                "Remove the transaction statements.",
            )
    if not any(not isinstance(s.node, ast.VariableSetStmt) for s in statements):
        raise SqlFieldError("The SQL only sets settings; it reverses nothing.")
    return sql if sql.endswith("\n") else sql + "\n"


# --- write and apply ---------------------------------------------------------------------


def write_migration(directory: Path, name: str, sql: str) -> Path:
    """``<directory>/<name>/migration.sql``; the same file already there is fine (staging
    and production may share one migrations directory), a different one is refused."""
    if "/" in name or name.startswith("."):  # names come from revert_name(), never typed
        raise ValueError(name)
    path = directory / name / "migration.sql"
    if path.exists():
        if path.read_bytes() != sql.encode("utf-8"):
            raise ConflictError(
                f"`{path}` already exists with other content; nothing was written.",
                "Remove it, or start `/rollback revert` again.",
            )
        return path
    path.parent.mkdir(parents=False, exist_ok=True)
    path.write_bytes(sql.encode("utf-8"))
    return path


Progress = Callable[[int, int, str], None]


def apply_revert(
    conn: psycopg.Connection,
    directory: Path,
    name: str,
    on_progress: Progress,
    *,
    lock_timeout: float = DEFAULT_LOCK_TIMEOUT,
) -> int:
    """Apply the one pending migration ``name`` exactly as `prisma migrate deploy` records
    it (row inserted, script run, applied_steps_count + 1, finished_at; on error the logs
    and P3018), its statements run one by one inside ONE transaction so each is reported.
    Returns the number of statements run."""
    migrations = read_migrations_dir(directory)
    migrations.check_provider()
    migration = migrations.get(name)
    if migration is None or migration.sql is None:
        raise NotFound(f"`{name}/migration.sql` is not in the migrations directory.")
    statements = split_statements(migration.script)
    with autocommit_connection(conn) as conn, prisma_advisory_lock(conn, lock_timeout):
        history = read_history(conn) or ()
        failed = [(r.migration_name, r.started_at, r.logs) for r in history if r.failed]
        if failed:
            raise p3009_failed_migrations(failed)
        live = {r.migration_name for r in history if r.rolled_back_at is None}
        pending = [m.name for m in migrations.migrations if m.name not in live]
        if pending != [name]:
            raise ConflictError(
                f"Pending migrations other than `{name}`: "
                + ", ".join(f"`{n}`" for n in pending if n != name)
                + ". Prisma would apply them too, in name order; nothing was applied.",
                "Deploy or remove them first (`/rollback deploy`), then try again.",
            )
        row_id = insert_started(conn, name, migration.checksum)
        try:
            with conn.transaction():
                for done, statement in enumerate(statements):
                    on_progress(done, len(statements), _first_line(statement.text))
                    conn.execute(statement.text, prepare=False)
        except psycopg.Error as exc:
            code, error = database_error(exc)
            set_logs(conn, row_id, p3018_message(name, code, error))
            raise p3018_failed_to_apply(name, code, error) from exc
        add_applied_step(conn, row_id)
        set_finished(conn, row_id)
    on_progress(len(statements), len(statements), "committed")
    return len(statements)


def _first_line(text: str) -> str:
    line = text.strip().splitlines()[0] if text.strip() else ""
    return line if len(line) <= 120 else line[:119] + "…"


# --- afterwards --------------------------------------------------------------------------


def still_in_effect(diagnosis: Diagnosis, original: ReversePlan) -> list[str]:
    """Statements of the original that do not show as "not applied" after the revert.

    ``original``: the reverse plan of the original script; a statement it undid with no SQL
    (the column already was like that before) is left out. A SET DEFAULT reversed to the
    previous default shows as "unknown" (another default is set: the old one), which is
    what reversed looks like for it.
    """
    nothing_ran = {step.undoes for step in original.steps if step.reversible and not step.sql}
    left = []
    for statement in diagnosis.statements:
        changes = [c.change for c in statement.changes]
        if statement.verdict == Verdict.NOT_APPLIED or all(c in nothing_ran for c in changes):
            continue
        defaults_only = {c.kind for c in changes} <= {ChangeKind.SET_DEFAULT}
        if statement.verdict == Verdict.UNKNOWN and defaults_only:
            continue
        left.append(f"{statement.description} ({statement.verdict})")
    return left


def check_reverted(env: Environment, name: str) -> Diagnosis:
    """The option 1 diagnosis of the original after the revert: every statement the
    revert undid must say "not applied"; otherwise a ConflictError names the rest."""
    with connect(env) as conn:
        status = migration_status(conn, migrations_dir(env))
        script = status.local(name).script
        diagnosis = diagnose(conn, script, earlier_sql=earlier_scripts(status, name))
    left = diagnosis.differences_from_before()
    if left:
        raise ConflictError(
            f"After the revert, these statements of `{name}` still show as in effect: "
            + "; ".join(left)
            + ".",
            "Check the database with `/rollback status`; the reverse SQL was edited or"
            " something changed it since.",
        )
    return diagnosis
