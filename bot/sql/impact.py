"""What a reverse migration would destroy, read from the live catalog before it is shown.

The SQL alone does not say that ``users.bio`` holds 12,345 values, that a view reads it or
that another table's foreign key points at it. These read-only questions answer that for
the review card and the approval text; every name is passed as a parameter or composed
with psycopg's sql.Identifier, never pasted into SQL.
"""

from __future__ import annotations

from dataclasses import dataclass

import psycopg
from psycopg import sql

from bot.sql.catalog import current_schema
from bot.sql.changes import ChangeKind
from bot.sql.names import QualifiedName
from bot.sql.reverse import Contents, ReversePlan, ReverseStep, StepClass


class LiveImpact:
    """The generator's LiveData over one connection (bot.sql.reverse.LiveData)."""

    def __init__(self, conn: psycopg.Connection, *, statement_timeout: str | None = None):
        self.conn = conn
        self.default_schema = current_schema(conn)
        if statement_timeout:
            # Exact counts scan the table: bounded, so a huge table fails the review
            # instead of holding the incident up.
            conn.execute("SELECT set_config('statement_timeout', %s, false)", (statement_timeout,))

    def _oid(self, table: QualifiedName) -> int | None:
        row = self.conn.execute(
            "SELECT c.oid FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
            " WHERE n.nspname = %s AND c.relname = %s AND c.relkind IN ('r', 'p')",
            (table.schema, table.name),
        ).fetchone()
        return row[0] if row else None

    def _has_column(self, oid: int, column: str) -> bool:
        row = self.conn.execute(
            "SELECT 1 FROM pg_attribute WHERE attrelid = %s AND attname = %s"
            " AND attnum > 0 AND NOT attisdropped",
            (oid, column),
        ).fetchone()
        return row is not None

    def contents(self, table: QualifiedName, column: str | None) -> Contents | None:
        oid = self._oid(table)
        if oid is None or (column is not None and not self._has_column(oid, column)):
            return None
        target = sql.Identifier(table.schema, table.name)
        counted = sql.Identifier(column) if column else sql.SQL("NULL")
        rows, values = self.conn.execute(
            sql.SQL("SELECT count(*), count({}) FROM {}").format(counted, target)
        ).fetchone()
        columns, text_columns = self._columns(oid)
        return Contents(
            rows, values if column else None, self._primary_key(oid), columns, text_columns
        )

    def _columns(self, oid: int) -> tuple[tuple[str, ...], frozenset[str]]:
        """Every column, and those of a type defined outside pg_catalog (an enum, a domain,
        a composite: what a backup keeps as text)."""
        rows = self.conn.execute(
            "SELECT a.attname, tn.nspname NOT IN ('pg_catalog', 'information_schema')"
            " FROM pg_attribute a JOIN pg_type t ON t.oid = a.atttypid"
            " JOIN pg_namespace tn ON tn.oid = t.typnamespace"
            " WHERE a.attrelid = %s AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum",
            (oid,),
        ).fetchall()
        return tuple(r[0] for r in rows), frozenset(r[0] for r in rows if r[1])

    def _primary_key(self, oid: int) -> tuple[str, ...]:
        rows = self.conn.execute(
            "SELECT a.attname FROM pg_constraint con"
            " CROSS JOIN LATERAL unnest(con.conkey) WITH ORDINALITY AS k(attnum, position)"
            " JOIN pg_attribute a ON a.attrelid = con.conrelid AND a.attnum = k.attnum"
            " WHERE con.conrelid = %s AND con.contype = 'p' ORDER BY k.position",
            (oid,),
        ).fetchall()
        return tuple(r[0] for r in rows)

    def backup_of(self, table: QualifiedName, column: str | None) -> QualifiedName | None:
        """The newest table in the same schema named like a backup of ``table`` (the bot's
        ``<table>_<column>_backup_<date>``, the runbook's ``users_column_backup``, option
        4's ``<table>_backup_<stamp>``) that holds ``column`` when one is given."""
        rows = self.conn.execute(
            "SELECT c.oid, c.relname FROM pg_class c"
            " JOIN pg_namespace n ON n.oid = c.relnamespace"
            " WHERE n.nspname = %s AND c.relkind IN ('r', 'p')"
            " AND left(c.relname, length(%s) + 1) = %s || '_'"
            " AND strpos(c.relname, 'backup') > 0 ORDER BY c.relname DESC",
            (table.schema, table.name, table.name),
        ).fetchall()
        for oid, name in rows:
            if column is None or self._has_column(oid, column):
                return QualifiedName(table.schema, name)
        return None

    def dependents(self, table: QualifiedName, column: str | None) -> tuple[str, ...]:
        """Views reading it and foreign keys of other tables referencing it: PostgreSQL
        refuses a DROP without CASCADE while they exist (docs, "Dependency Tracking")."""
        oid = self._oid(table)
        if oid is None:
            return ()
        views = self.conn.execute(
            "SELECT DISTINCT format('view %%I.%%I', vn.nspname, v.relname) FROM pg_depend d"
            " JOIN pg_rewrite r ON r.oid = d.objid JOIN pg_class v ON v.oid = r.ev_class"
            " JOIN pg_namespace vn ON vn.oid = v.relnamespace"
            " WHERE d.classid = 'pg_rewrite'::regclass AND d.refclassid = 'pg_class'::regclass"
            " AND d.refobjid = %(oid)s AND v.oid <> %(oid)s AND (%(column)s::text IS NULL"
            " OR d.refobjsubid = (SELECT attnum FROM pg_attribute WHERE attrelid = %(oid)s"
            " AND attname = %(column)s))",
            {"oid": oid, "column": column},
        ).fetchall()
        foreign_keys = self.conn.execute(
            "SELECT format('foreign key %%I on %%I.%%I', con.conname, n.nspname, c.relname)"
            " FROM pg_constraint con JOIN pg_class c ON c.oid = con.conrelid"
            " JOIN pg_namespace n ON n.oid = c.relnamespace"
            " WHERE con.contype = 'f' AND con.confrelid = %(oid)s AND con.conrelid <> %(oid)s"
            " AND (%(column)s::text IS NULL OR (SELECT attnum FROM pg_attribute"
            " WHERE attrelid = %(oid)s AND attname = %(column)s) = ANY (con.confkey))",
            {"oid": oid, "column": column},
        ).fetchall()
        return tuple(sorted(r[0] for r in views)) + tuple(sorted(r[0] for r in foreign_keys))


@dataclass(frozen=True)
class StepImpact:
    """One row of the review card's classification table."""

    classification: StepClass
    effect: str  # "drops column users.bio (12,345 non-null values; copied first to ...)"
    sql: tuple[str, ...]
    dependents: tuple[str, ...]  # what blocks (or would cascade from) its DROP
    backup: QualifiedName | None = None  # the backup table the step creates first
    rows: int | None = None  # rows of the table it copies, at review time

    def to_dict(self) -> dict:
        return {
            "class": str(self.classification),
            "effect": self.effect,
            "sql": list(self.sql),
            "dependents": list(self.dependents),
            "backup": [self.backup.schema, self.backup.name] if self.backup else None,
            "rows": self.rows,
        }


def plan_impact(plan: ReversePlan, live: LiveImpact) -> tuple[StepImpact, ...]:
    return tuple(_step_impact(step, live) for step in plan.steps)


def _step_impact(step: ReverseStep, live: LiveImpact) -> StepImpact:
    dependents: tuple[str, ...] = ()
    if step.drops_data:
        # Asked under the names the objects have now (a later rename moved them).
        now = step.current or step.undoes
        column = now.name if now.kind == ChangeKind.ADD_COLUMN else None
        dependents = live.dependents(now.target, column)
    effect = step.effect
    if dependents:
        effect += (
            f"; {', '.join(dependents)} {'depends' if len(dependents) == 1 else 'depend'} on"
            " it: the DROP fails (no CASCADE) until"
            " they are dropped first"
        )
    backup = step.backup.name if step.backup else None
    rows = step.contents.rows if step.contents else None
    return StepImpact(step.classification, effect, step.statements, dependents, backup, rows)
