"""Runbook option 1 as services the front ends call: read an environment's migration
status with a diagnosis of each failed migration, and plan a resolve.

No Slack here. Every read opens its own connection (bot.database) and closes it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from bot.database import connect
from bot.errors import ConflictError, UserError
from bot.prisma.error_codes import (
    p3008_already_applied,
    p3011_never_applied,
    p3017_not_found,
)
from bot.prisma.history import RecordState
from bot.prisma.names import resolve_migration_name
from bot.prisma.recommendation import (
    NextStep,
    Recommendation,
    earlier_scripts,
    recommendation,
)
from bot.prisma.status import MigrationStatus, migration_status
from bot.settings import Environment
from bot.sql.diagnosis import Diagnosis, diagnose


def migrations_dir(env: Environment) -> Path:
    if env.migrations_dir is None:
        raise UserError(
            f"Environment {env.name} has no migrations_dir in the config.",
            "Add migrations_dir (the prisma/migrations directory) to its table.",
            code="config",
        )
    return env.migrations_dir


@dataclass(frozen=True)
class Assessment:
    """Status plus, for each failed migration, what actually took effect and what to do."""

    status: MigrationStatus
    diagnoses: dict[str, Diagnosis | None]
    recommendations: dict[str, Recommendation]


def assess(env: Environment) -> Assessment:
    with connect(env) as conn:
        status = migration_status(conn, migrations_dir(env))
        diagnoses: dict[str, Diagnosis | None] = {}
        recommendations: dict[str, Recommendation] = {}
        for name in dict.fromkeys(r.migration_name for r in status.failed):
            diagnoses[name] = _diagnose(conn, status, name)
            recommendations[name] = recommendation(status, diagnoses[name], migration=name)
    return Assessment(status, diagnoses, recommendations)


def _diagnose(conn, status: MigrationStatus, name: str) -> Diagnosis | None:
    local = status.local(name)
    if local is None or local.sql is None:
        return None  # missing from the directory: nothing to compare with
    return diagnose(
        conn,
        local.script,
        earlier_sql=earlier_scripts(status, name),
        stopped_by_error=any(row.logs for row in status.failed if row.migration_name == name),
    )


@dataclass(frozen=True)
class ResolvePlan:
    """What `/rollback resolve` will do, shown in its confirmation and bound to approval."""

    migration: str
    mode: str  # "rolled_back" or "applied"
    summary: str  # the diagnosis summary ("3 of 5 statements took effect: ...")
    reasons: tuple[str, ...]
    undo_sql: tuple[str, ...]  # statements undone first (failed and partly applied)

    def params(self) -> dict:
        return {
            "migration": self.migration,
            "mode": self.mode,
            "diagnosis": self.summary,
            "reasons": list(self.reasons),
            "undo_sql": list(self.undo_sql),
        }


def plan_resolve(env: Environment, name: str, *, applied: bool) -> ResolvePlan:
    """Refuses what the runbook's "When NOT to use" and Prisma refuse, with Prisma's code."""
    assessment = assess(env)
    status = assessment.status
    name = resolve_migration_name(name, status)
    states = {row.state for row in status.rows_for(name)}
    if applied:
        return _plan_applied(status, name, states)
    if not states:
        raise p3011_never_applied(name)
    if RecordState.FAILED not in states:
        if RecordState.APPLIED in states:
            raise ConflictError(
                f"Migration `{name}` cannot be rolled back because it is not in a failed"
                " state. (P3012)",
                f"It completed successfully: undo it with a reverse migration,"
                f" `/rollback revert {name}` (runbook option 2).",
                code="P3012",
            )
        raise ConflictError(
            f"Migration `{name}` is already rolled back; nothing to do.",
            "Fix the migration file, then re-run migrations.",
            code="already_rolled_back",
        )
    rec = assessment.recommendations[name]
    diagnosis = assessment.diagnoses[name]
    summary = diagnosis.summary if diagnosis else "The migration could not be diagnosed."
    if rec.step == NextStep.PITR:
        raise ConflictError(
            f"Resolving `{name}` is not safe: " + " ".join(rec.reasons),
            "The runbook says not to use option 1 when the database state is unknown: use"
            " `/rollback pitr` (option 3).",
            code="unknown_state",
        )
    undo = rec.undo.statements if rec.step == NextStep.UNDO_THEN_RESOLVE and rec.undo else ()
    return ResolvePlan(name, "rolled_back", summary, rec.reasons, tuple(undo))


def _plan_applied(status: MigrationStatus, name: str, states: set) -> ResolvePlan:
    if status.local(name) is None:
        raise p3017_not_found(name)
    if RecordState.APPLIED in states:
        raise p3008_already_applied(name)
    return ResolvePlan(
        name,
        "applied",
        "Recorded as applied without running it.",
        (
            f"`{name}` will be recorded as applied (resolve --applied): use it only"
            " when its changes are already in the database.",
        ),
        (),
    )


# --- plain data for cards (JSON: it is stored in the audit log) ---------------------------

_LOG_LINES = 3
_LIST_MAX = 15


def show_status(ctx, title_suffix: str = "") -> Assessment:
    """A runbook step's "check migration status": assess the environment and publish the
    status card (rendered by bot/slack/migration_views.py) in the incident thread."""
    env = ctx.environment
    assessment = assess(env)
    ctx.card(
        "migration_status",
        f"Migration status on {env.name}{title_suffix}",
        status_card_data(env.name, assessment),
    )
    return assessment


def status_card_data(env_name: str, assessment: Assessment) -> dict:
    status = assessment.status
    failed = []
    for row in status.failed:
        diagnosis = assessment.diagnoses.get(row.migration_name)
        rec = assessment.recommendations.get(row.migration_name)
        failed.append(
            {
                "name": row.migration_name,
                "started_at": row.started_at.isoformat(),
                "logs": "\n".join((row.logs or "").strip().splitlines()[:_LOG_LINES]),
                "diagnosis": diagnosis.summary
                if diagnosis
                else "Not diagnosed: the migration file is missing from the directory.",
                "statements": [
                    {"description": s.description, "verdict": str(s.verdict)}
                    for s in (diagnosis.statements if diagnosis else ())
                ],
                "recommendation": str(rec.step) if rec else None,
                "reasons": list(rec.reasons) if rec else [],
                "undo_sql": list(rec.undo.statements) if rec and rec.undo else [],
            }
        )
    holder = status.lock_holder.describe() if status.lock_holder else None
    return {
        "environment": env_name,
        "verdict": str(status.verdict),
        "message": status.message,
        "counts": {
            "applied": len(status.applied),
            "failed": len({r.migration_name for r in status.failed}),
            "rolled_back": len(status.rolled_back),
            "pending": len(status.pending),
            "edited": len(status.edited),
            "missing": len(status.missing),
        },
        "failed": failed[:_LIST_MAX],
        "pending": list(status.pending[:_LIST_MAX]),
        "more_pending": max(0, len(status.pending) - _LIST_MAX),
        "warnings": list(status.warnings[:_LIST_MAX]),
        "more_warnings": max(0, len(status.warnings) - _LIST_MAX),
        "lock_holder": holder,
    }
