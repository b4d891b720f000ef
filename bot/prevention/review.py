"""One migration reviewed before it is deployed: the runbook's Migration Safety Checklist
answered with evidence.

- "Is this change backward compatible?" / "Can the application work with both old and new
  schema?": each schema change classified (compatibility.py) with its expand/contract way;
- "Is there a data migration needed?": the data-changing statements in the file, and the
  backfills its schema changes need (NOT NULL on a table that has rows or NULLs);
- "What's the rollback plan?": the reverse SQL the generator writes (bot.sql.reverse), each
  step with its class;
- "Is this change reversible?": reversible / data-losing / irreversible, with the rows and
  values it destroys counted in the live database when there is one;
- squawk's findings (bot.sql.lint) and the locks each statement takes (locks.py) with the
  size of the table it takes them on.

Read-only: the live database is only asked (catalog and counts, under a statement timeout).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import StrEnum

import psycopg

from bot.errors import UserError
from bot.prevention.acknowledgements import Acknowledged, Acknowledgements, acknowledgements
from bot.prevention.compatibility import Compatibility, CompatibilityFinding, classify
from bot.prevention.locks import INDEX_PREFIX, Lock, locks_of
from bot.prevention.reversibility import Reversibility, reversibility
from bot.prevention.sizes import TableSize, TableSizes
from bot.sql.changes import ChangeKind
from bot.sql.impact import LiveImpact
from bot.sql.lint import LintResult, lint
from bot.sql.names import QualifiedName
from bot.sql.reverse import Contents, ReversePlan, reverse_script
from bot.sql.schema_model import Index
from bot.sql.timeline import Timeline, migration_timeline
from bot.text import plural

_TEXT_MAX = 200  # a statement as quoted on the card; the file has all of it


class Verdict(StrEnum):
    PASS = "pass"  # nothing destroyed, or destruction acknowledged
    ACKNOWLEDGED = "acknowledged"  # data-losing or irreversible, acknowledged in the file
    BLOCKED = "blocked"  # data-losing or irreversible, not acknowledged
    ERROR = "error"  # the file cannot be reviewed (it does not parse)


@dataclass(frozen=True)
class LockReview:
    lock: Lock
    table: QualifiedName  # resolved; for DROP INDEX the index's table when the catalog knows
    size: TableSize | None  # None: no live database

    @property
    def shown_table(self) -> str:
        if self.table.name.startswith(INDEX_PREFIX):
            index = QualifiedName(self.table.schema, self.table.name.removeprefix(INDEX_PREFIX))
            return f"the table of index {index.display()}"
        return self.table.display()

    def to_dict(self) -> dict:
        data = self.lock.to_dict()
        data["table"] = self.shown_table
        data["size"] = self.size.to_dict() if self.size else None
        return data


@dataclass(frozen=True)
class StatementReview:
    line: int
    text: str
    findings: tuple[CompatibilityFinding, ...]
    locks: tuple[LockReview, ...]

    @property
    def compatibility(self) -> Compatibility:
        return worst(f.compatibility for f in self.findings)

    def to_dict(self) -> dict:
        return {
            "line": self.line,
            "sql": self.text,
            "compatibility": str(self.compatibility),
            "findings": [f.to_dict() for f in self.findings],
            "locks": [lock.to_dict() for lock in self.locks],
        }


def worst(values) -> Compatibility:
    order = list(Compatibility)
    return max(values, key=order.index, default=Compatibility.COMPATIBLE)


@dataclass(frozen=True)
class MigrationReview:
    name: str
    checksum: str | None
    statements: tuple[StatementReview, ...] = ()
    data_migration: tuple[str, ...] = ()  # what changes data, and what needs a backfill
    reverse: ReversePlan | None = None
    reversibility: Reversibility | None = None
    lint: LintResult = field(default_factory=LintResult)
    acknowledged: Acknowledgements = field(default_factory=Acknowledgements)
    live: bool = False  # counts and sizes come from a live database
    error: str | None = None  # the file could not be reviewed

    @property
    def compatibility(self) -> Compatibility:
        return worst(s.compatibility for s in self.statements)

    @property
    def verdict(self) -> Verdict:
        if self.error is not None or self.reversibility is None:
            return Verdict.ERROR
        needed = self.reversibility.acknowledgement_needed
        if needed is None:
            return Verdict.PASS
        return Verdict.ACKNOWLEDGED if self.acknowledged.covers(needed) else Verdict.BLOCKED

    @property
    def fails_ci(self) -> bool:
        return self.verdict in (Verdict.BLOCKED, Verdict.ERROR)

    @property
    def needed_acknowledgement(self) -> Acknowledged | None:
        return self.reversibility.acknowledgement_needed if self.reversibility else None


def review_migration(
    name: str,
    script: str,
    *,
    checksum: str | None = None,
    earlier_sql: Sequence[str] = (),
    conn: psycopg.Connection | None = None,
    statement_timeout: str = "60s",
    run_lint: bool = True,
) -> MigrationReview:
    """``earlier_sql``: every migration that will have run before this one, in order."""
    acks = acknowledgements(script)
    live = LiveImpact(conn, statement_timeout=statement_timeout) if conn is not None else None
    default_schema = live.default_schema if live else "public"
    try:
        timeline = migration_timeline(
            script, default_schema=default_schema, earlier_sql=list(earlier_sql)
        )
        plan = reverse_script(
            script, default_schema=default_schema, earlier_sql=list(earlier_sql), live=_Before(live)
        )
    except UserError as error:
        return MigrationReview(name, checksum, acknowledged=acks, error=error.message)
    sizes = TableSizes(conn) if conn is not None else None
    statements = tuple(
        _statement_review(effect, default_schema, sizes) for effect in timeline.statements
    )
    return MigrationReview(
        name,
        checksum,
        statements,
        _data_migration(timeline, live),
        plan,
        reversibility(plan, live),
        lint(script) if run_lint else LintResult(unavailable="not run"),
        acks,
        live is not None,
    )


class _Before:
    """The live catalog as the reverse generator asks it, before the migration ran: what
    the migration creates does not exist yet and so holds nothing now (its reverse drops
    only what is written after the deploy)."""

    def __init__(self, live: LiveImpact | None):
        self.live = live

    def contents(self, table, column):
        found = self.live.contents(table, column) if self.live else None
        return found if found is not None else Contents(0)

    def backup_of(self, table, column):
        return self.live.backup_of(table, column) if self.live else None


def _statement_review(effect, default_schema: str, sizes: TableSizes | None) -> StatementReview:
    statement = effect.statement
    findings = tuple(classify(change) for change in effect.changes)
    locks = []
    for lock in locks_of(statement.node):
        table = lock.table.resolved(default_schema)
        if table.name.startswith(INDEX_PREFIX):
            table = _table_of_index(effect.before, table, sizes)
        size = sizes.size(table) if sizes and not table.name.startswith(INDEX_PREFIX) else None
        locks.append(LockReview(lock, table, size))
    text = " ".join(statement.text.split())
    if len(text) > _TEXT_MAX:
        text = text[: _TEXT_MAX - 1] + "…"
    return StatementReview(statement.line, text, findings, tuple(locks))


def _table_of_index(model, marker: QualifiedName, sizes: TableSizes | None) -> QualifiedName:
    """The table a DROP or RENAME of an index locks: the schema model of the migrations
    before knows it, else the live catalog; else the marker stays (shown as "the table of
    index ...")."""
    index = QualifiedName(marker.schema, marker.name.removeprefix(INDEX_PREFIX))
    relation = model.relation(index)
    if isinstance(relation, Index):
        table = model.relation_by_ident(relation.table)
        if table is not None:
            return table.name
    found = sizes.table_of_index(index) if sizes else None
    return found or marker


def _data_migration(timeline: Timeline, live: LiveImpact | None) -> tuple[str, ...]:
    """The data-changing statements, then the backfills the schema changes need."""
    found = []
    for effect in timeline.statements:
        for change in effect.changes:
            if change.kind in (ChangeKind.DATA_CHANGE, ChangeKind.DO_BLOCK):
                found.append(f"line {effect.statement.line}: {change.description} changes data")
            need = _backfill_need(change, live)
            if need:
                found.append(f"line {effect.statement.line}: {need}")
    return tuple(found)


def _backfill_need(change, live: LiveImpact | None) -> str | None:
    if change.kind == ChangeKind.ADD_COLUMN:
        spec = change.column
        if (
            spec is None
            or not spec.not_null
            or classify(change).compatibility != Compatibility.BREAKING
        ):
            return None
        contents = live.contents(_resolved(change, live), None) if live else None
        if contents is not None and contents.rows == 0:
            return None
        rows = f"{contents.rows:,} rows" if contents else "rows (not counted: no database)"
        return (
            f"{change.description} is NOT NULL without a DEFAULT and {change.target.display()}"
            f" has {rows}: the statement fails until they get a value (add it nullable,"
            " backfill, then SET NOT NULL)"
        )
    if change.kind == ChangeKind.SET_NOT_NULL:
        contents = live.contents(_resolved(change, live), change.name) if live else None
        if contents is None:
            return (
                (
                    f"{change.description} fails if any row holds NULL (not counted: no"
                    " database): backfill them first"
                )
                if live is None
                else None
            )
        nulls = contents.rows - (contents.values or 0)
        if nulls:
            hold = "holds" if nulls == 1 else "hold"
            return f"{change.description}: {plural(nulls, 'row')} {hold} NULL: backfill them first"
    return None


def _resolved(change, live: LiveImpact) -> QualifiedName:
    return change.target.resolved(live.default_schema)
