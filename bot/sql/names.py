"""Object names as PostgreSQL resolves them, and as the bot writes and shows them.

The parser has already folded unquoted identifiers to lower case and removed the quotes of
quoted ones, so a name taken from the AST compares directly with pg_catalog. An unqualified
name is kept with ``schema=None`` and resolved later against the connection's default schema
(the first existing schema of its search_path, ``current_schema()``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from pglast import ast
from pglast.stream import maybe_double_quote_name


@dataclass(frozen=True)
class QualifiedName:
    schema: str | None  # None: unqualified in the SQL, resolved with the default schema
    name: str

    def resolved(self, default_schema: str) -> QualifiedName:
        return self if self.schema is not None else QualifiedName(default_schema, self.name)

    def sql(self) -> str:
        """Quoted for SQL, always: the bot never relies on case folding."""
        name = quote_identifier(self.name)
        return f"{quote_identifier(self.schema)}.{name}" if self.schema else name

    def display(self) -> str:
        """As a person reads it: quotes only where PostgreSQL needs them."""
        name = maybe_double_quote_name(self.name)
        return f"{maybe_double_quote_name(self.schema)}.{name}" if self.schema else name


def quote_identifier(name: str) -> str:
    """A double-quoted identifier, embedded quotes doubled (PostgreSQL's quote_ident rule)."""
    return '"' + name.replace('"', '""') + '"'


def quote_literal(value: str) -> str:
    """A standard-conforming string literal (standard_conforming_strings is on since 9.1)."""
    return "'" + value.replace("'", "''") + "'"


def display_name(name: str) -> str:
    return maybe_double_quote_name(name)


def from_range_var(relation: ast.RangeVar) -> QualifiedName:
    return QualifiedName(relation.schemaname, relation.relname)


def from_name_list(names: Sequence[ast.String]) -> QualifiedName:
    """A possibly qualified name given as a list of String nodes (types, indexes, schemas)."""
    parts = [node.sval for node in names]
    return QualifiedName(parts[-2] if len(parts) > 1 else None, parts[-1])
