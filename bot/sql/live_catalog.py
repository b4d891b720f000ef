"""The same facts as bot.sql.observations, read from the live catalog (read-only).

One query per kind of object for all the names a migration touches (not one per fact: a
300-statement migration on RDS would otherwise pay a round trip per column). Every name is
passed as a parameter. Definitions come from PostgreSQL's own printers
(``pg_get_constraintdef``, ``pg_get_indexdef``, ``pg_get_expr``, ``format_type``) and are
parsed back with pglast into the signatures the model computes.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from functools import lru_cache

import psycopg
from pglast import ast
from pglast.parser import ParseError

from bot.sql.model_definitions import constraint_signature, index_signature
from bot.sql.names import QualifiedName
from bot.sql.observations import COLUMN_FACTS, NOT_THERE, Key, normalized_default
from bot.sql.parse import parse_sql
from bot.sql.schema_model import UNKNOWN

_RELKINDS = {"p": "r", "I": "i"}  # partitioned table / index read as table / index

_RELATIONS = """
SELECT n.nspname, c.relname, c.relkind
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
JOIN unnest(%s::text[], %s::text[]) AS wanted(schema, name)
  ON wanted.schema = n.nspname AND wanted.name = c.relname
"""
_COLUMNS = """
SELECT n.nspname, c.relname, a.attname,
       row_number() OVER (PARTITION BY c.oid ORDER BY a.attnum),
       format_type(a.atttypid, a.atttypmod),
       coalesce(et.typname, t.typname), coalesce(etn.nspname, tn.nspname), et.oid IS NOT NULL,
       a.attnotnull, CASE WHEN a.attidentity = '' THEN pg_get_expr(d.adbin, d.adrelid) END
FROM pg_attribute a
JOIN pg_class c ON c.oid = a.attrelid JOIN pg_namespace n ON n.oid = c.relnamespace
JOIN pg_type t ON t.oid = a.atttypid JOIN pg_namespace tn ON tn.oid = t.typnamespace
LEFT JOIN pg_type et ON et.oid = t.typelem AND t.typcategory = 'A'
LEFT JOIN pg_namespace etn ON etn.oid = et.typnamespace
LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
JOIN unnest(%s::text[], %s::text[]) AS wanted(schema, name)
  ON wanted.schema = n.nspname AND wanted.name = c.relname
WHERE a.attnum > 0 AND NOT a.attisdropped AND c.relkind IN ('r', 'p')
"""
_CONSTRAINTS = """
SELECT n.nspname, c.relname, con.conname, con.contype, pg_get_constraintdef(con.oid),
       rn.nspname, r.relname
FROM pg_constraint con
JOIN pg_class c ON c.oid = con.conrelid JOIN pg_namespace n ON n.oid = c.relnamespace
LEFT JOIN pg_class r ON r.oid = con.confrelid
LEFT JOIN pg_namespace rn ON rn.oid = r.relnamespace
JOIN unnest(%s::text[], %s::text[]) AS wanted(schema, name)
  ON wanted.schema = n.nspname AND wanted.name = c.relname
"""
_INDEXES = """
SELECT n.nspname, ic.relname, tn.nspname, t.relname, pg_get_indexdef(i.indexrelid), i.indisvalid
FROM pg_index i
JOIN pg_class ic ON ic.oid = i.indexrelid JOIN pg_namespace n ON n.oid = ic.relnamespace
JOIN pg_class t ON t.oid = i.indrelid JOIN pg_namespace tn ON tn.oid = t.relnamespace
JOIN unnest(%s::text[], %s::text[]) AS wanted(schema, name)
  ON wanted.schema = n.nspname AND wanted.name = ic.relname
"""
_TYPES = """
SELECT n.nspname, t.typname, t.typtype,
       array(SELECT e.enumlabel FROM pg_enum e WHERE e.enumtypid = t.oid
             ORDER BY e.enumsortorder)
FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace
JOIN unnest(%s::text[], %s::text[]) AS wanted(schema, name)
  ON wanted.schema = n.nspname AND wanted.name = t.typname
"""
_FUNCTIONS = """
SELECT n.nspname, p.proname, oidvectortypes(p.proargtypes)
FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
JOIN unnest(%s::text[], %s::text[]) AS wanted(schema, name)
  ON wanted.schema = n.nspname AND wanted.name = p.proname
"""
_TRIGGERS = """
SELECT n.nspname, c.relname, t.tgname
FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid
JOIN pg_namespace n ON n.oid = c.relnamespace
JOIN unnest(%s::text[], %s::text[]) AS wanted(schema, name)
  ON wanted.schema = n.nspname AND wanted.name = c.relname
WHERE NOT t.tgisinternal
"""
_SCHEMAS = "SELECT nspname FROM pg_namespace WHERE nspname = ANY(%s)"
_EXTENSIONS = "SELECT extname FROM pg_extension WHERE extname = ANY(%s)"


class LiveFacts:
    """The live values of a set of facts, read at construction."""

    def __init__(self, conn: psycopg.Connection, keys: Iterable[Key]):
        keys = set(keys)
        self.values: dict[Key, object] = {}
        wanted = _wanted(keys)
        self._relations = self._read(conn, _RELATIONS, wanted["rel"])
        self._columns = self._read(conn, _COLUMNS, wanted["table"])
        self._constraints = self._read(conn, _CONSTRAINTS, wanted["table"])
        self._indexes = self._read(conn, _INDEXES, wanted["index"])
        self._types = self._read(conn, _TYPES, wanted["type"])
        self._functions = {
            (QualifiedName(schema, name), arguments)
            for schema, name, arguments in self._read(conn, _FUNCTIONS, wanted["function"])
        }
        self._triggers = {
            (QualifiedName(schema, table), name)
            for schema, table, name in self._read(conn, _TRIGGERS, wanted["trigger"])
        }
        self._schemas = _names(conn, _SCHEMAS, wanted["schema"])
        self._extensions = _names(conn, _EXTENSIONS, wanted["extension"])
        self._index_rows()
        for key in keys:
            self.values[key] = self._value(key)

    @staticmethod
    def _read(conn: psycopg.Connection, query: str, names: set[QualifiedName]) -> list[tuple]:
        if not names:
            return []
        schemas = [n.schema for n in names]
        relnames = [n.name for n in names]
        return conn.execute(query, (schemas, relnames)).fetchall()

    def _index_rows(self) -> None:
        self.kinds = {QualifiedName(s, n): _RELKINDS.get(k, k) for s, n, k in self._relations}
        self.columns: dict[tuple, tuple] = {}
        self.tables_seen: set[QualifiedName] = set()
        for (
            schema,
            table,
            name,
            position,
            formatted,
            typname,
            typschema,
            array,
            *rest,
        ) in self._columns:
            qualified = QualifiedName(schema, table)
            self.tables_seen.add(qualified)
            column_type = _live_type(formatted, typname, typschema, array)
            default = normalized_default(rest[1]) if rest[1] is not None else None
            self.columns[(qualified, name)] = (column_type, rest[0], default, position)
        self.constraints = {
            (QualifiedName(s, t), name): (contype, definition, _ref(rs, rt))
            for s, t, name, contype, definition, rs, rt in self._constraints
        }
        self.indexes = {
            QualifiedName(s, n): (QualifiedName(ts, tn), definition, valid)
            for s, n, ts, tn, definition, valid in self._indexes
        }
        self.types = {
            QualifiedName(s, n): (kind, tuple(labels)) for s, n, kind, labels in self._types
        }

    def _value(self, key: Key) -> object:
        kind = key[0]
        if kind == "rel":
            return self.kinds.get(key[1])
        if kind in COLUMN_FACTS:
            return self._column(kind, key[1], key[2])
        if kind in ("con", "condef"):
            return self._constraint(kind, key[1], key[2])
        if kind == "index":
            found = self.indexes.get(key[1])
            if found is None:
                return NOT_THERE
            return (found[0], _index_signature(found[1]))
        if kind == "type":
            found = self.types.get(key[1])
            return found[0] if found else None
        if kind == "enumval":
            found = self.types.get(key[1])
            return True if found and key[2] in found[1] else None
        if kind == "schema":
            return True if key[1] in self._schemas else None
        if kind == "extension":
            return True if key[1] in self._extensions else None
        if kind == "function":
            return True if (key[1], key[2]) in self._functions else None
        if kind == "trigger":
            return True if (key[1], key[2]) in self._triggers else None
        return UNKNOWN

    def _column(self, kind: str, table: QualifiedName, name: str) -> object:
        found = self.columns.get((table, name))
        if found is None:
            return None if kind == "col" else NOT_THERE
        if kind == "col":
            return True
        column_type, not_null, default, position = found
        return {"coltype": column_type, "colnull": not_null, "coldefault": default}.get(
            kind, position
        )

    def _constraint(self, kind: str, table: QualifiedName, name: str) -> object:
        found = self.constraints.get((table, name))
        if found is None:
            return None if kind == "con" else NOT_THERE
        contype, definition, referenced = found
        if kind == "con":
            return contype
        return _constraint_signature(definition, referenced)

    def invalid_indexes(self) -> set[QualifiedName]:
        return {name for name, (_, _, valid) in self.indexes.items() if not valid}


def _wanted(keys: set[Key]) -> dict[str, set]:
    wanted: dict[str, set] = defaultdict(set)
    for key in keys:
        kind = key[0]
        if kind == "rel":
            wanted["rel"].add(key[1])
        elif kind in COLUMN_FACTS or kind in ("con", "condef"):
            wanted["table"].add(key[1])
        elif kind == "index":
            wanted["index"].add(key[1])
        elif kind in ("type", "enumval"):
            wanted["type"].add(key[1])
        elif kind in ("schema", "extension", "function", "trigger"):
            wanted[kind].add(key[1])
    return wanted


def _names(conn: psycopg.Connection, query: str, names: set[str]) -> set[str]:
    if not names:
        return set()
    return {row[0] for row in conn.execute(query, (list(names),)).fetchall()}


def _live_type(formatted: str, typname: str, typschema: str, array: bool) -> tuple:
    if typschema == "pg_catalog":
        return ("b", formatted)
    return ("u", typschema, typname, array)


def _ref(schema: str | None, name: str | None) -> QualifiedName | None:
    return QualifiedName(schema, name) if name is not None else None


@lru_cache(maxsize=4096)
def _index_signature(definition: str) -> object:
    try:
        node = parse_sql(definition)[0].stmt
    except ParseError:
        return UNKNOWN
    return index_signature(node) if isinstance(node, ast.IndexStmt) else UNKNOWN


@lru_cache(maxsize=4096)
def _constraint_signature(definition: str, referenced: QualifiedName | None) -> object:
    try:
        statement = parse_sql(f"ALTER TABLE x ADD {definition}")[0].stmt
    except ParseError:
        return UNKNOWN
    return constraint_signature(statement.cmds[0].def_, referenced, None)
