"""Read-only questions to the live catalog (pg_catalog), every name passed as a parameter.

These answer "does this object exist now, and how is it defined": what the diagnosis needs
to tell whether a statement of a failed migration took effect.
"""

from __future__ import annotations

from dataclasses import dataclass

import psycopg
from psycopg import sql

from bot.sql.names import QualifiedName

# Relation kinds of pg_class.relkind (PostgreSQL docs, pg_class).
TABLE_KINDS = ("r", "p")  # ordinary, partitioned
INDEX_KINDS = ("i", "I")  # index, partitioned index


@dataclass(frozen=True)
class ColumnState:
    """A column as the catalog defines it now."""

    type: str  # format_type(atttypid, atttypmod), e.g. "character varying(20)"
    not_null: bool
    default: str | None  # pg_get_expr(adbin), e.g. "'x'::text"; None when it has none


class Catalog:
    """The catalog of one database, seen through one connection."""

    def __init__(self, conn: psycopg.Connection, default_schema: str | None = None):
        self.conn = conn
        self.default_schema = default_schema or current_schema(conn)

    def _one(self, query: str, params: tuple) -> tuple | None:
        return self.conn.execute(query, params).fetchone()

    def relation_kind(self, name: QualifiedName) -> str | None:
        row = self._one(
            "SELECT c.relkind FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
            " WHERE n.nspname = %s AND c.relname = %s",
            (name.schema, name.name),
        )
        return row[0] if row else None

    def table_exists(self, name: QualifiedName) -> bool:
        return self.relation_kind(name) in TABLE_KINDS

    def index_exists(self, name: QualifiedName) -> bool:
        return self.relation_kind(name) in INDEX_KINDS

    def column(self, table: QualifiedName, column: str) -> ColumnState | None:
        row = self._one(
            "SELECT format_type(a.atttypid, a.atttypmod), a.attnotnull,"
            " pg_get_expr(d.adbin, d.adrelid)"
            " FROM pg_attribute a"
            " JOIN pg_class c ON c.oid = a.attrelid"
            " JOIN pg_namespace n ON n.oid = c.relnamespace"
            " LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum"
            " WHERE n.nspname = %s AND c.relname = %s AND a.attname = %s"
            " AND a.attnum > 0 AND NOT a.attisdropped",
            (table.schema, table.name, column),
        )
        return ColumnState(*row) if row else None

    def constraint_type(self, table: QualifiedName, constraint: str) -> str | None:
        """pg_constraint.contype ('p', 'f', 'u', 'c', 'x', ...) of a table's constraint."""
        row = self._one(
            "SELECT con.contype FROM pg_constraint con"
            " JOIN pg_class c ON c.oid = con.conrelid"
            " JOIN pg_namespace n ON n.oid = c.relnamespace"
            " WHERE n.nspname = %s AND c.relname = %s AND con.conname = %s",
            (table.schema, table.name, constraint),
        )
        return row[0] if row else None

    def has_primary_key(self, table: QualifiedName) -> bool:
        row = self._one(
            "SELECT 1 FROM pg_constraint con"
            " JOIN pg_class c ON c.oid = con.conrelid"
            " JOIN pg_namespace n ON n.oid = c.relnamespace"
            " WHERE n.nspname = %s AND c.relname = %s AND con.contype = 'p'",
            (table.schema, table.name),
        )
        return row is not None

    def type_kind(self, name: QualifiedName) -> str | None:
        """pg_type.typtype: 'e' enum, 'c' composite, 'd' domain... None when absent."""
        row = self._one(
            "SELECT t.typtype FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace"
            " WHERE n.nspname = %s AND t.typname = %s",
            (name.schema, name.name),
        )
        return row[0] if row else None

    def enum_values(self, name: QualifiedName) -> tuple[str, ...]:
        rows = self.conn.execute(
            "SELECT e.enumlabel FROM pg_enum e"
            " JOIN pg_type t ON t.oid = e.enumtypid"
            " JOIN pg_namespace n ON n.oid = t.typnamespace"
            " WHERE n.nspname = %s AND t.typname = %s ORDER BY e.enumsortorder",
            (name.schema, name.name),
        ).fetchall()
        return tuple(row[0] for row in rows)

    def schema_exists(self, name: str) -> bool:
        return self._one("SELECT 1 FROM pg_namespace WHERE nspname = %s", (name,)) is not None

    def extension_exists(self, name: str) -> bool:
        return self._one("SELECT 1 FROM pg_extension WHERE extname = %s", (name,)) is not None

    def formatted_type(self, type_sql: str) -> str | None:
        """How the catalog would show a type written in SQL, e.g. varchar(20) ->
        "character varying(20)"; None when the type does not exist here.

        The type modifier (the 20) is only known to PostgreSQL's type input functions, so
        the bot asks the server: the result column of ``SELECT NULL::<type>`` carries the
        type oid and typmod in its RowDescription. ``type_sql`` is never user text: it is a
        TypeName node of the migration's AST printed back by pglast, which can only be a
        type name, and the probe runs in a savepoint so a missing type aborts nothing.
        """
        probe = sql.SQL("SELECT NULL::{} LIMIT 0").format(sql.SQL(type_sql))
        try:
            with self.conn.transaction():
                cursor = self.conn.execute(probe)
        except (psycopg.ProgrammingError, psycopg.DataError):
            # 42704 undefined type, 42601 syntax, 22023 bad modifier: not a type here.
            return None
        oid, modifier = cursor.pgresult.ftype(0), cursor.pgresult.fmod(0)
        row = self._one("SELECT format_type(%s, %s)", (oid, modifier))
        return row[0]


def current_schema(conn: psycopg.Connection) -> str:
    """The schema unqualified names are created in: the first existing schema of the
    search_path (PostgreSQL's current_schema()), 'public' when there is none."""
    row = conn.execute("SELECT current_schema()").fetchone()
    return row[0] if row and row[0] else "public"
