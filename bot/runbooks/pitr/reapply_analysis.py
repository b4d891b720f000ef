"""What each migration PITR's re-apply would deploy does, with the analysis revert uses:
"safe" once meant only "not the failed one", and the bot offered a generated
``DROP TABLE "Project"`` as safe with its name only.

Each candidate is replayed on the model of the schema before it (its history), its undo
classified (bot.sql.reverse): a change whose undo is impossible destroys data, so the
migration is data-losing; the rows it would destroy are counted on the restored database
(before anything is deployed there); squawk's findings are added. Data-losing migrations
are never chosen by default.
"""

from __future__ import annotations

from dataclasses import dataclass

import psycopg

from bot.prisma.recommendation import earlier_scripts
from bot.prisma.status import MigrationStatus
from bot.sql.changes import ChangeKind
from bot.sql.impact import LiveImpact
from bot.sql.lint import lint
from bot.sql.reverse import reverse_script

REVERSIBLE = "reversible"
DATA_LOSING = "data_losing"


@dataclass(frozen=True)
class Candidate:
    name: str
    classification: str  # REVERSIBLE or DATA_LOSING
    effects: list[str]  # what it does that cannot be undone, with counts
    findings: list[str]  # squawk
    sql: str

    def to_dict(self) -> dict:
        return {
            "name": self.name,
            "class": self.classification,
            "effects": self.effects,
            "findings": self.findings,
            "sql": self.sql,
        }


def analyse(conn: psycopg.Connection, status: MigrationStatus, name: str) -> Candidate:
    local = status.local(name)
    script = local.script if local is not None and local.sql is not None else ""
    live = LiveImpact(conn)
    plan = reverse_script(
        script, default_schema=live.default_schema, earlier_sql=earlier_scripts(status, name)
    )
    effects = []
    for step in plan.steps:
        if step.reversible:
            continue
        change = step.undoes
        effects.append(f"{change.description}{_destroyed(live, change)}: cannot be undone")
    findings = [f"{f.rule}: {f.message}" for f in lint(script).findings] if script else []
    return Candidate(name, DATA_LOSING if effects else REVERSIBLE, effects, findings, script)


def _destroyed(live: LiveImpact, change) -> str:
    """The rows a drop would destroy, counted on the restored database now."""
    if change.kind == ChangeKind.DROP_TABLE:
        found = live.contents(change.target, None)
        return f" ({found.rows:,} rows on the restored database)" if found else ""
    if change.kind == ChangeKind.DROP_COLUMN and change.name:
        found = live.contents(change.target, change.name)
        if found:
            return f" ({found.values or 0:,} non-null values in {found.rows:,} rows)"
    return ""
