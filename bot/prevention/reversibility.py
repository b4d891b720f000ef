"""The Migration Safety Checklist's "Is this change reversible?" for a migration not yet
deployed, from the reverse generator's plan (bot.sql.reverse) and the live database.

- reversible: its reverse restores the schema and nothing it destroys holds data now;
- data_losing: it drops a column or table that holds data now, or deletes rows: after it,
  only a backup (a snapshot, a backup table) has them; the counts come from the live
  database (without one, every drop counts as holding data: the safe side);
- irreversible: it changes what its SQL cannot say how to undo (rows updated or inserted,
  procedural code, statements the bot does not analyse).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from bot.prevention.acknowledgements import Acknowledged
from bot.sql.changes import ChangeKind
from bot.sql.impact import LiveImpact
from bot.sql.reverse import FOLLOWS, ReversePlan, ReverseStep


class Reversible(StrEnum):
    REVERSIBLE = "reversible"
    DATA_LOSING = "data_losing"
    IRREVERSIBLE = "irreversible"


_NEEDS = {
    Reversible.DATA_LOSING: Acknowledged.DATA_LOSS,
    Reversible.IRREVERSIBLE: Acknowledged.IRREVERSIBLE,
}


@dataclass(frozen=True)
class Reason:
    classification: Reversible
    text: str

    def to_dict(self) -> dict:
        return {"class": str(self.classification), "text": self.text}


@dataclass(frozen=True)
class Reversibility:
    classification: Reversible
    reasons: tuple[Reason, ...]  # one per step that is not plainly reversible

    @property
    def acknowledgement_needed(self) -> Acknowledged | None:
        return _NEEDS.get(self.classification)

    def to_dict(self) -> dict:
        return {
            "class": str(self.classification),
            "reasons": [r.to_dict() for r in self.reasons],
        }


def reversibility(plan: ReversePlan, live: LiveImpact | None) -> Reversibility:
    reasons = [r for step in plan.steps if (r := _reason(step, live)) is not None]
    order = list(Reversible)
    worst = max((r.classification for r in reasons), key=order.index, default=None)
    return Reversibility(worst or Reversible.REVERSIBLE, tuple(reasons))


def _reason(step: ReverseStep, live: LiveImpact | None) -> Reason | None:
    change = step.undoes
    if step.reversible:
        if step.residue:
            return Reason(Reversible.REVERSIBLE, step.effect)
        return None
    if FOLLOWS in step.note:
        return None  # it follows from an earlier step's reason, listed on its own
    if change.kind == ChangeKind.DROP_COLUMN:
        return _destroys(change, live, column=change.name)
    if change.kind == ChangeKind.DROP_TABLE:
        return _destroys(change, live, column=None)
    verb = change.description.split(" ", 1)[0].upper()
    if change.kind == ChangeKind.DATA_CHANGE and verb in ("DELETE", "TRUNCATE"):
        return _destroys(change, live, column=None, deletes=True)
    return Reason(Reversible.IRREVERSIBLE, f"{change.description}: {step.note}")


def _destroys(change, live: LiveImpact | None, *, column: str | None, deletes=False) -> Reason:
    target = change.target.resolved(live.default_schema) if live is not None else None
    contents = live.contents(target, column) if live is not None else None
    if contents is None:
        counted = "not counted: no database" if live is None else "it does not exist yet"
        if live is not None:
            # Created earlier in the same deploy: nothing is in it before the deploy.
            return Reason(
                Reversible.REVERSIBLE, f"{change.description}: nothing to lose ({counted})"
            )
        return Reason(Reversible.DATA_LOSING, f"{change.description} ({counted})")
    held = contents.values if column is not None else contents.rows
    noun = "non-null value" if column is not None else "row"
    amount = f"{'up to ' if deletes else ''}{held:,} {noun}{'' if held == 1 else 's'}"
    if held == 0:
        return Reason(
            Reversible.REVERSIBLE,
            f"{change.description}: holds no data now (0 {noun}s); its reverse is written by"
            " hand from the earlier migration",
        )
    return Reason(Reversible.DATA_LOSING, f"{change.description} destroys {amount}")
