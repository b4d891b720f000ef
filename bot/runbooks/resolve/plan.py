"""Runbook option 1, "Prisma Migrate Resolve": the plan `/rollback resolve` confirms and the
operation then carries out (bot/runbooks/resolve/steps.py).

No Slack here. Every read opens its own connection (bot.database) and closes it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from bot.clock import utcnow
from bot.database import connect
from bot.errors import ConflictError
from bot.prisma.error_codes import (
    p3008_already_applied,
    p3011_never_applied,
    p3017_not_found,
)
from bot.prisma.history import RecordState
from bot.prisma.names import resolve_migration_name
from bot.prisma.recommendation import NextStep, earlier_scripts
from bot.prisma.status import MigrationStatus
from bot.runbooks.status import assess
from bot.settings import Environment
from bot.sql.diagnosis import Diagnosis, Verdict
from bot.sql.impact import LiveImpact
from bot.sql.reverse import ReversePlan, reverse_plan


@dataclass(frozen=True)
class ResolvePlan:
    """What `/rollback resolve` will do, shown in its confirmation and bound to approval."""

    migration: str
    mode: str  # "rolled_back" or "applied"
    summary: str  # the diagnosis summary ("3 of 5 statements took effect: ...")
    reasons: tuple[str, ...]
    undo_sql: tuple[str, ...]  # statements undone first (failed and partly applied)
    # what the undo does, one line a step: "drops table public.Proposal (5 rows; copied
    # first to public.Proposal_backup_20261202)"
    undo_effects: tuple[str, ...] = ()
    backup_stamp: str | None = None  # the backup tables' date (UTC yyyymmdd)
    # --applied on a failed migration: its statements that did not take effect
    not_applied: tuple[str, ...] = ()

    def params(self) -> dict:
        return {
            "migration": self.migration,
            "mode": self.mode,
            "diagnosis": self.summary,
            "reasons": list(self.reasons),
            "undo_sql": list(self.undo_sql),
            "undo_effects": list(self.undo_effects),
            "backup_stamp": self.backup_stamp,
            "not_applied": list(self.not_applied),
        }


def plan_resolve(
    env: Environment, name: str, *, applied: bool, now: datetime | None = None
) -> ResolvePlan:
    """Refuses what the runbook's "When NOT to use" and Prisma refuse, with Prisma's code."""
    assessment = assess(env)
    status = assessment.status
    name = resolve_migration_name(name, status)
    states = {row.state for row in status.rows_for(name)}
    if applied:
        return _plan_applied(status, name, states, assessment.diagnoses.get(name))
    if not states:
        raise p3011_never_applied(name)
    if RecordState.FAILED not in states:
        if RecordState.APPLIED in states:
            raise ConflictError(
                f"Migration `{name}` cannot be rolled back because it is not in a failed"
                " state. (P3012)",
                f"It completed successfully: undo it with a reverse migration,"
                f" `/rollback revert {name} --env {env.name}` (runbook option 2).",
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
            f" `/rollback pitr --env {env.name}` (option 3).",
            code="unknown_state",
        )
    if rec.step != NextStep.UNDO_THEN_RESOLVE or not rec.undo:
        return ResolvePlan(name, "rolled_back", summary, rec.reasons, ())
    stamp = f"{now or utcnow():%Y%m%d}"
    undo = undo_with_backups(env, status, diagnosis, name, stamp)
    effects = tuple(step.effect for step in undo.steps if step.statements)
    return ResolvePlan(name, "rolled_back", summary, rec.reasons, undo.statements, effects, stamp)


def undo_with_backups(
    env: Environment, status: MigrationStatus, diagnosis: Diagnosis, name: str, stamp: str
) -> ReversePlan:
    """The undo of what took effect, as revert builds a reverse: each table or column it
    drops is first copied into a backup table (``<table>_backup_<stamp>``,
    ``<table>_<column>_backup_<stamp>``), with what it holds counted on the live database."""
    with connect(env) as conn:
        return reverse_plan(
            diagnosis,
            earlier_sql=earlier_scripts(status, name),
            live=LiveImpact(conn),
            backup_stamp=stamp,
        )


def _plan_applied(
    status: MigrationStatus, name: str, states: set, diagnosis: Diagnosis | None
) -> ResolvePlan:
    if status.local(name) is None:
        raise p3017_not_found(name)
    if RecordState.APPLIED in states:
        raise p3008_already_applied(name)
    # A failed migration recorded as applied although some of its statements never ran:
    # the next migrations build on a schema that is not there. Shown, and confirmed.
    not_applied = tuple(
        f"statement {n}: {s.description or s.statement.text[:80]} ({s.verdict.replace('_', ' ')})"
        for n, s in enumerate(diagnosis.statements if diagnosis else (), start=1)
        if s.verdict != Verdict.APPLIED
    )
    return ResolvePlan(
        name,
        "applied",
        "Recorded as applied without running it.",
        (
            f"`{name}` will be recorded as applied (resolve --applied): use it only"
            " when its changes are already in the database.",
        ),
        (),
        not_applied=not_applied,
    )
