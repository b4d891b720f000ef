"""Runbook option 2, "Create Reverse Migration": the plan `/rollback revert` shows for
review: the reverse of a migration that completed (generated, classified, checked against
the live catalog, linted), and, in a protected environment other than staging, the proof
that it was tested on staging first.

No Slack here. Every read opens its own connection (bot.database) and closes it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime

from bot.clock import shown_utc
from bot.database import connect
from bot.errors import ConflictError, NotFound, UserError
from bot.prisma.history import (
    RecordState,
    read_history,
)
from bot.prisma.migrations_dir import checksum, read_migrations_dir
from bot.prisma.names import resolve_migration_name
from bot.prisma.recommendation import earlier_scripts
from bot.prisma.status import MigrationStatus, migration_status
from bot.runbooks.status import migrations_dir
from bot.settings import Config, Environment
from bot.sql.impact import LiveImpact, plan_impact
from bot.sql.lint import lint
from bot.sql.reverse import ReversePlan, reverse_script

STAGING = "staging"
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
        local = _completed_migration(env, status, name)
        _refuse_not_last(env, status, name)
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
    _refuse_blocked(env, status, new_name)
    if len(new_name) > MIGRATION_NAME_MAX:
        raise UserError(
            f"The reverse migration's name would be longer than Prisma's {MIGRATION_NAME_MAX}"
            " characters.",
            "Write the reverse migration by hand (runbook option 2) or use `/rollback sql`.",
        )
    return RevertPlan(
        env.name, name, new_name, sql, rows, lint(sql).to_dict(), tested, now.isoformat()
    )


def _refuse_blocked(env: Environment, status: MigrationStatus, new_name: str) -> None:
    """What would make the deploy of the reverse fail, known before anyone reviews,
    ticks a checklist or approves: a failed migration (Prisma refuses every deploy, P3009)
    and other pending migrations (Prisma would apply them too, in name order)."""
    if status.failed:
        names = ", ".join(f"`{r.migration_name}`" for r in status.failed)
        raise ConflictError(
            f"{env.name} has a failed migration ({names}): `prisma migrate deploy` refuses"
            " to apply anything until it is resolved (P3009), so the reverse could not be"
            " applied. Nothing was started.",
            f"Resolve it first: `/rollback resolve {status.failed[0].migration_name}"
            f" --env {env.name}` (runbook option 1).",
            code="failed_migration",
        )
    others = [n for n in status.pending if n != new_name]
    if others:
        raise ConflictError(
            f"{env.name} has pending migrations ({', '.join(f'`{n}`' for n in others)}):"
            " Prisma would apply them together with the reverse. Nothing was started.",
            f"Deploy them (`/rollback deploy --env {env.name}`) or remove them from the"
            " migrations directory, then try again.",
            code="pending_migrations",
        )


def _completed_migration(env: Environment, status: MigrationStatus, name: str):
    states = {row.state for row in status.rows_for(name)}
    if RecordState.APPLIED not in states:
        if not states:
            raise NotFound(
                f"Migration `{name}` cannot be reverted because it was never applied to the"
                " database: there is nothing to undo.",
                f"Check the name and the environment with `/rollback status --env {env.name}`.",
                code="never_applied",
            )
        if RecordState.FAILED in states:
            raise ConflictError(
                f"Migration `{name}` failed; a reverse migration is for one that completed.",
                f"Use `/rollback resolve {name} --env {env.name}` (runbook option 1).",
                code="failed",
            )
        raise ConflictError(
            f"Migration `{name}` is rolled back; there is nothing to revert.",
            f"Check `/rollback status --env {env.name}`.",
            code="rolled_back",
        )
    done = [n for n in status.applied if is_revert_of(n, name)]
    if done:
        raise ConflictError(
            f"Migration `{name}` was already reverted by `{done[-1]}`.",
            f"Check `/rollback status --env {env.name}`.",
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


def later_migrations(status: MigrationStatus, name: str) -> list[str]:
    """Migrations applied after ``name`` (later in the directory or in the history), in
    the order they were applied, without any that a later revert already undid (it and its
    revert cancel out)."""
    applied = list(status.applied)
    names = status.directory.names
    position = names.index(name) if name in names else len(names)
    after_in_directory = set(names[position + 1 :])
    started = applied.index(name) if name in applied else len(applied)
    later = [
        n for i, n in enumerate(applied) if n != name and (i > started or n in after_in_directory)
    ]
    undone = {n for n in later for r in later if is_revert_of(r, n)}
    return [n for n in later if n not in undone and not any(is_revert_of(n, u) for u in undone)]


def _refuse_not_last(env: Environment, status: MigrationStatus, name: str) -> None:
    """The reverse undoes ``name`` on the schema as ``name`` left it: on top of later
    migrations it would ignore what they changed (a column it drops may carry their index
    or foreign key; a table it drops may hold their columns)."""
    later = later_migrations(status, name)
    if not later:
        return
    listed = ", ".join(f"`{n}`" for n in later)
    were = "was" if len(later) == 1 else "were"
    raise ConflictError(
        f"`{name}` is not the last migration applied to {env.name}: {listed} {were} applied"
        f" after it, and a reverse of `{name}` alone would ignore what "
        + ("it" if len(later) == 1 else "they")
        + " changed.",
        (
            f"Revert `{later[0]}` first (`/rollback revert {later[0]} --env {env.name}`)"
            if len(later) == 1
            else f"Revert them first, newest first"
            f" (`/rollback revert {later[-1]} --env {env.name}`)"
        )
        + f", then `{name}`; or restore a point in time before `{name}` with"
        f" `/rollback pitr --env {env.name}` (option 3).",
        code="not_last",
    )


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
