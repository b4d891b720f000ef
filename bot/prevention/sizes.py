"""The size of a table a statement locks, from the live catalog: the planner's row
estimate (pg_class.reltuples, as fresh as the last ANALYZE or VACUUM) and its size on disk
with indexes and TOAST (pg_total_relation_size). Names are parameters, never pasted."""

from __future__ import annotations

from dataclasses import dataclass

import psycopg

from bot.sql.names import QualifiedName


@dataclass(frozen=True)
class TableSize:
    exists: bool
    rows: int | None = None  # estimate; None when never analysed
    bytes: int | None = None

    def describe(self) -> str:
        if not self.exists:
            return "does not exist yet"
        rows = "rows not estimated yet" if self.rows is None else f"~{self.rows:,} rows"
        return f"{rows}, {_human(self.bytes or 0)}"

    def to_dict(self) -> dict:
        return {"exists": self.exists, "rows": self.rows, "bytes": self.bytes}


def _human(size: int) -> str:
    value = float(size)
    for unit in ("B", "kB", "MB", "GB"):
        if value < 1024:
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} TB"


class TableSizes:
    def __init__(self, conn: psycopg.Connection):
        self.conn = conn
        self._known: dict[QualifiedName, TableSize] = {}

    def size(self, table: QualifiedName) -> TableSize:
        if table not in self._known:
            row = self.conn.execute(
                "SELECT c.reltuples::bigint, pg_total_relation_size(c.oid) FROM pg_class c"
                " JOIN pg_namespace n ON n.oid = c.relnamespace"
                " WHERE n.nspname = %s AND c.relname = %s AND c.relkind IN ('r', 'p', 'm')",
                (table.schema, table.name),
            ).fetchone()
            if row is None:
                self._known[table] = TableSize(False)
            else:
                # reltuples is -1 until the table is first analysed (PostgreSQL 14+).
                self._known[table] = TableSize(True, row[0] if row[0] >= 0 else None, row[1])
        return self._known[table]

    def table_of_index(self, index: QualifiedName) -> QualifiedName | None:
        row = self.conn.execute(
            "SELECT tn.nspname, t.relname FROM pg_index i"
            " JOIN pg_class ic ON ic.oid = i.indexrelid"
            " JOIN pg_namespace n ON n.oid = ic.relnamespace"
            " JOIN pg_class t ON t.oid = i.indrelid JOIN pg_namespace tn ON tn.oid = t.relnamespace"
            " WHERE n.nspname = %s AND ic.relname = %s",
            (index.schema, index.name),
        ).fetchone()
        return QualifiedName(row[0], row[1]) if row else None
