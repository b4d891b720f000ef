"""A schema change, as read from one statement's AST: the model the diagnosis checks
against the catalog and the reverse generator undoes."""

from __future__ import annotations

from dataclasses import dataclass, replace
from enum import StrEnum

from pglast import ast
from pglast.stream import RawStream

from bot.sql.names import QualifiedName, display_name


class ChangeKind(StrEnum):
    CREATE_TABLE = "create_table"
    DROP_TABLE = "drop_table"
    RENAME_TABLE = "rename_table"
    ADD_COLUMN = "add_column"
    DROP_COLUMN = "drop_column"
    RENAME_COLUMN = "rename_column"
    ALTER_COLUMN_TYPE = "alter_column_type"
    SET_NOT_NULL = "set_not_null"
    DROP_NOT_NULL = "drop_not_null"
    SET_DEFAULT = "set_default"
    DROP_DEFAULT = "drop_default"
    CREATE_INDEX = "create_index"
    DROP_INDEX = "drop_index"
    RENAME_INDEX = "rename_index"
    ADD_CONSTRAINT = "add_constraint"
    DROP_CONSTRAINT = "drop_constraint"
    RENAME_CONSTRAINT = "rename_constraint"
    CREATE_TYPE = "create_type"
    DROP_TYPE = "drop_type"
    RENAME_TYPE = "rename_type"
    ADD_ENUM_VALUE = "add_enum_value"
    RENAME_ENUM_VALUE = "rename_enum_value"
    CREATE_VIEW = "create_view"
    DROP_VIEW = "drop_view"
    CREATE_SEQUENCE = "create_sequence"
    DROP_SEQUENCE = "drop_sequence"
    CREATE_SCHEMA = "create_schema"
    DROP_SCHEMA = "drop_schema"
    CREATE_EXTENSION = "create_extension"
    DROP_EXTENSION = "drop_extension"
    DATA_CHANGE = "data_change"  # INSERT/UPDATE/DELETE...: leaves no trace in the catalog
    DO_BLOCK = "do_block"  # procedural code: what it does is named where it can be read
    OTHER = "other"  # a statement kind the bot does not analyse


@dataclass(frozen=True)
class ColumnSpec:
    """A column as a CREATE TABLE or ADD COLUMN defines it."""

    name: str
    type_sql: str
    not_null: bool
    default_sql: str | None


@dataclass(frozen=True)
class Change:
    """One effect of a statement on the schema.

    ``target`` is the object acted on: the table for column and constraint changes, the
    index, type, schema or extension otherwise. ``name`` is the column, constraint or enum
    value; ``new_name`` the new name of a rename.
    """

    kind: ChangeKind
    target: QualifiedName
    description: str
    name: str | None = None
    new_name: str | None = None
    column: ColumnSpec | None = None  # ADD COLUMN
    columns: tuple[ColumnSpec, ...] = ()  # CREATE TABLE
    type_sql: str | None = None  # ALTER COLUMN TYPE
    default_sql: str | None = None  # SET DEFAULT
    constraint_type: str | None = None  # "PRIMARY KEY", "FOREIGN KEY", "UNIQUE", "CHECK"...
    table: QualifiedName | None = None  # CREATE INDEX: the indexed table
    enum_values: tuple[str, ...] = ()  # CREATE TYPE ... AS ENUM


# Schemas and extensions are not inside a schema: their names are never qualified.
UNQUALIFIED_KINDS = frozenset(
    {
        ChangeKind.CREATE_SCHEMA,
        ChangeKind.DROP_SCHEMA,
        ChangeKind.CREATE_EXTENSION,
        ChangeKind.DROP_EXTENSION,
        ChangeKind.OTHER,
    }
)


def resolved(change: Change, default_schema: str) -> Change:
    """The change with unqualified names placed in ``default_schema``."""
    if change.kind in UNQUALIFIED_KINDS:
        return change
    table = change.table.resolved(default_schema) if change.table else None
    return replace(change, target=change.target.resolved(default_schema), table=table)


def deparse(node: ast.Node) -> str:
    """SQL text for an AST fragment (a type or an expression), printed by pglast."""
    return RawStream()(node)


def other_change(node: ast.Node, what: str | None = None) -> Change:
    label = what or type(node).__name__
    return Change(ChangeKind.OTHER, QualifiedName(None, label), f"{label} (not analysed)")


def column_label(table: QualifiedName, column: str) -> str:
    """How a column is shown: "users.bio", '"User"."Bio"'."""
    return f"{table.display()}.{display_name(column)}"
