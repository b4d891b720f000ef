"""The next step of the runbook for a migration, with the reasons that lead to it.

The runbook's rules, made into checks:
- option 1 (resolve --rolled-back) only when the migration failed, the database is "in a
  known state" and "you can identify which changes were applied";
- never on a migration that completed ("When NOT to use"): that is option 2, a reverse
  migration;
- unknown state, or changes that cannot be undone: option 3, point-in-time recovery.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from bot.prisma.history import RecordState
from bot.prisma.status import MigrationStatus
from bot.sql.changes import ChangeKind
from bot.sql.diagnosis import Diagnosis
from bot.sql.reverse import UNKNOWN_WHETHER_IT_RAN, ReversePlan, ReverseStep, reverse_plan
from bot.text import plural


class NextStep(StrEnum):
    RESOLVE_ROLLED_BACK = "resolve_rolled_back"  # option 1 as is
    UNDO_THEN_RESOLVE = "undo_then_resolve"  # option 1 after undoing what took effect
    REVERT = "revert"  # option 2: a reverse migration
    PITR = "pitr"  # option 3: point-in-time recovery
    NOTHING = "nothing"  # no failed migration to act on


RUNBOOK_OPTION = {
    NextStep.RESOLVE_ROLLED_BACK: 1,
    NextStep.UNDO_THEN_RESOLVE: 1,
    NextStep.REVERT: 2,
    NextStep.PITR: 3,
}


@dataclass(frozen=True)
class Recommendation:
    step: NextStep
    migration: str | None
    reasons: tuple[str, ...]
    undo: ReversePlan | None = None  # UNDO_THEN_RESOLVE: exactly the applied statements

    @property
    def runbook_option(self) -> int | None:
        return RUNBOOK_OPTION.get(self.step)

    @property
    def command(self) -> str | None:
        """The Prisma command this step ends with, as the runbook writes it."""
        if self.step in (NextStep.RESOLVE_ROLLED_BACK, NextStep.UNDO_THEN_RESOLVE):
            return f'prisma migrate resolve --rolled-back "{self.migration}"'
        return None


def recommendation(
    status: MigrationStatus, diagnosis: Diagnosis | None, *, migration: str | None = None
) -> Recommendation:
    """What to do about ``migration`` (default: the most recent failed migration).

    ``diagnosis`` is the diagnosis of that migration's SQL against the live database, or
    None when it could not be made.
    """
    name = migration or _latest_failed(status)
    if name is None:
        return Recommendation(NextStep.NOTHING, None, ("No migration is in a failed state.",))
    states = {row.state for row in status.rows_for(name)}
    if RecordState.FAILED in states:
        return _for_failed(status, diagnosis, name)
    if RecordState.APPLIED in states:
        return _for_succeeded(status, diagnosis, name)
    reason = "it is already rolled back" if states else "it was never applied"
    return Recommendation(NextStep.NOTHING, name, (f"`{name}` needs no resolve: {reason}.",))


def _latest_failed(status: MigrationStatus) -> str | None:
    return status.failed[-1].migration_name if status.failed else None


def _for_failed(status: MigrationStatus, diagnosis: Diagnosis | None, name: str) -> Recommendation:
    if diagnosis is None:
        return _pitr(name, "The database state is unknown: the migration could not be diagnosed.")
    if diagnosis.statements and not diagnosis.points:
        return _pitr(
            name,
            "The catalog matches no point of the migration, so something changed the schema"
            " since it failed: " + "; ".join(diagnosis.mismatches[:3]) + ".",
        )
    plan = reverse_plan(diagnosis, earlier_sql=earlier_scripts(status, name))
    if not plan.complete:
        unknown = [s.undoes.description for s in plan.irreversible if _unknown(s)]
        if unknown:
            return _pitr(
                name, f"Whether these took effect cannot be checked: {'; '.join(unknown)}."
            )
        return _pitr(name, *_irreversible_reasons(plan))
    kept = _residue_reasons(plan)
    if not plan.statements:
        return Recommendation(
            NextStep.RESOLVE_ROLLED_BACK,
            name,
            (
                f"`{name}` failed and none of its {len(diagnosis.statements)} statements took "
                "effect: the database is as before it."
                if not diagnosis.applied
                else f"`{name}` failed part-way: {diagnosis.summary} Nothing needs undoing.",
                *kept,
                "Mark it rolled back, fix the migration file, then re-run migrations.",
            ),
        )
    return Recommendation(
        NextStep.UNDO_THEN_RESOLVE,
        name,
        (
            f"`{name}` failed part-way: {diagnosis.summary}",
            f"Undo exactly those {plural(len(plan.statements), 'change')} in one transaction,"
            " then mark it rolled back, fix the file and re-run migrations.",
            *kept,
        ),
        plan,
    )


def _unknown(step: ReverseStep) -> bool:
    return step.note == UNKNOWN_WHETHER_IT_RAN


def _residue_reasons(plan: ReversePlan) -> list[str]:
    """What an undo leaves on purpose, and what that means for re-running the migration."""
    reasons = []
    for step in plan.residues:
        reason = f"The {step.residue} stays ({step.note})"
        if step.undoes.kind == ChangeKind.ADD_ENUM_VALUE:
            reason += (
                ": re-running the migration fails on its ADD VALUE unless the file says"
                " ADD VALUE IF NOT EXISTS"
            )
        reasons.append(reason + ".")
    return reasons


def _for_succeeded(
    status: MigrationStatus, diagnosis: Diagnosis | None, name: str
) -> Recommendation:
    reasons = [
        f"`{name}` completed successfully: resolve --rolled-back is refused for it (P3012); "
        "the runbook undoes a completed migration with a reverse migration."
    ]
    if diagnosis is not None:
        plan = reverse_plan(diagnosis, earlier_sql=earlier_scripts(status, name))
        if not plan.complete:
            return _pitr(name, reasons[0], *_irreversible_reasons(plan))
    return Recommendation(NextStep.REVERT, name, tuple(reasons))


def _pitr(name: str, *reasons: str) -> Recommendation:
    return Recommendation(
        NextStep.PITR,
        name,
        (*reasons, "Restore the database to a point in time before the migration (option 3)."),
    )


def _irreversible_reasons(plan: ReversePlan) -> list[str]:
    return [f"Cannot undo {step.undoes.description}: {step.note}." for step in plan.irreversible]


def earlier_scripts(status: MigrationStatus, name: str) -> list[str]:
    """Scripts of the migrations applied before ``name``, in directory order: the history
    the diagnosis and the reverse replay to know the schema before it (bot.sql.timeline)."""
    applied = set(status.applied)
    names = status.directory.names
    before = names[: names.index(name)] if name in names else names
    return [
        status.directory.get(n).script
        for n in before
        if n in applied and status.directory.get(n).sql is not None
    ]
