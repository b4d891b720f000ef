"""Migration status as every runbook option reads it: Prisma's status of an environment,
what each failed migration actually changed (its diagnosis) and the recommended next step;
the status card a step publishes; and where the environment's migrations live.

`/rollback status`, the break-glass `status` and the check/verify steps of options 1-3
all read it here. No Slack here: the card is plain data (JSON, kept in the audit log),
rendered by bot/slack/migration_views.py. Every read opens its own connection and closes it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from bot.database import connect
from bot.errors import UserError
from bot.prisma.error_codes import database_error
from bot.prisma.recommendation import Recommendation, earlier_scripts, recommendation
from bot.prisma.status import MigrationStatus, StatusVerdict, migration_status
from bot.settings import Environment
from bot.sql.diagnosis import Diagnosis, diagnose
from bot.store.records import CardKind
from bot.text import plural


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


# --- plain data for cards (JSON: it is stored in the audit log) ---------------------------

_LOG_LINES = 3
_LIST_MAX = 15


def show_status(ctx, title_suffix: str = "") -> Assessment:
    """A runbook step's "check migration status": assess the environment and publish the
    status card (rendered by bot/slack/migration_views.py) in the incident thread."""
    env = ctx.environment
    assessment = assess(env)
    ctx.card(
        CardKind.MIGRATION_STATUS,
        f"Migration status on {env.name}{title_suffix}",
        status_card_data(env.name, assessment),
    )
    return assessment


def headline(status) -> tuple[str, bool]:
    """The worst state the card shows, and whether all is well. Prisma says "up to date"
    beside a migration that was rolled back and is still in the directory (it is pending:
    deploy applies it again); the headline never contradicts the counts under it."""
    failed = len({r.migration_name for r in status.failed})
    problems = [
        (failed, "failed"),
        (len(status.pending), "pending"),
        (len(status.edited), "edited after being applied"),
        (len(status.missing), "in the database but not in the directory"),
    ]
    shown = [f"{n} {what}" for n, what in problems if n]
    if shown:
        return ", ".join(shown), False
    if status.verdict != StatusVerdict.UP_TO_DATE:
        return str(status.verdict).replace("_", " "), False
    if status.warnings:
        return f"up to date, {plural(len(status.warnings), 'warning')}", False
    return "up to date", True


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
                # The fact that matters: PostgreSQL's error, not Prisma's preamble.
                "error": database_error(row.logs or ""),
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
        "headline": headline(status),
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
