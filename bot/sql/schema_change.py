"""A schema change, as read from one statement's AST: the model the diagnosis checks
against the catalog and the reverse generator undoes."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from pglast import ast
from pglast.enums import ConstrType
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
    CREATE_FUNCTION = "create_function"
    DROP_FUNCTION = "drop_function"
    CREATE_TRIGGER = "create_trigger"
    DROP_TRIGGER = "drop_trigger"
    COMMENT = "comment"
    CREATE_SCHEMA = "create_schema"
    DROP_SCHEMA = "drop_schema"
    CREATE_EXTENSION = "create_extension"
    DROP_EXTENSION = "drop_extension"
    DATA_CHANGE = "data_change"  # INSERT/UPDATE/DELETE...: leaves no trace in the catalog
    DO_BLOCK = "do_block"  # procedural code: what it does is named where it can be read
    OTHER = "other"  # a statement kind the bot does not analyse


class ColumnSpec:
    """A column as a CREATE TABLE or ADD COLUMN defines it; its type and default are
    printed only when asked for (printing every column of a long history was most of the
    time spent reading it)."""

    __slots__ = ("definition", "not_null")

    def __init__(self, definition: ast.ColumnDef, not_null: bool):
        self.definition = definition
        self.not_null = not_null

    @property
    def name(self) -> str:
        return self.definition.colname

    @property
    def type_sql(self) -> str:
        return type_sql(self.definition.typeName)

    @property
    def default_sql(self) -> str | None:
        for constraint in self.definition.constraints or ():
            if constraint.contype == ConstrType.CONSTR_DEFAULT:
                return deparse(constraint.raw_expr)
        return None


class DeferredSQL:
    """An expression's SQL text, printed by pglast the first time it is needed."""

    __slots__ = ("node", "_text")

    def __init__(self, node: ast.Node):
        self.node = node
        self._text: str | None = None

    def __str__(self) -> str:
        if self._text is None:
            self._text = deparse(self.node)
        return self._text

    def __eq__(self, other: object) -> bool:
        return str(self) == str(other) if isinstance(other, DeferredSQL | str) else False

    def __hash__(self) -> int:
        return hash(str(self))

    def __repr__(self) -> str:
        return repr(str(self))


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
    target = change.target.resolved(default_schema)
    table = change.table.resolved(default_schema) if change.table else None
    if target is change.target and table is change.table:
        return change
    # dataclasses.replace runs __init__ again; a copy of the fields is all this needs.
    copied = object.__new__(Change)
    copied.__dict__.update(change.__dict__, target=target, table=table)
    return copied


def deparse(node: ast.Node) -> str:
    """SQL text for an AST fragment (a type or an expression), printed by pglast."""
    return RawStream()(node)


def type_sql(type_name: ast.TypeName) -> str:
    """A type as pglast prints it, remembered by its parts: a long history names the same
    few types thousands of times, and each printing costs a quarter of a millisecond."""
    key = _type_key(type_name)
    if key is None:
        return deparse(type_name)
    return _printed_type(key, type_name)


def _type_key(type_name: ast.TypeName) -> tuple | None:
    modifiers = []
    for modifier in type_name.typmods or ():
        value = getattr(modifier, "val", None)
        if not isinstance(value, ast.Integer):
            return None
        modifiers.append(value.ival)
    bounds = tuple(getattr(b, "ival", None) for b in type_name.arrayBounds or ())
    names = tuple(n.sval for n in type_name.names)
    return (names, tuple(modifiers), bounds, bool(type_name.setof), bool(type_name.pct_type))


_printed: dict[tuple, str] = {}


def _printed_type(key: tuple, type_name: ast.TypeName) -> str:
    found = _printed.get(key)
    if found is None:
        found = _printed[key] = deparse(type_name)
    return found


def other_change(node: ast.Node, what: str | None = None) -> Change:
    label = what or type(node).__name__
    return Change(ChangeKind.OTHER, QualifiedName(None, label), f"{label} (not analysed)")


def column_label(table: QualifiedName, column: str) -> str:
    """How a column is shown: "users.bio", '"User"."Bio"'."""
    return f"{table.display()}.{display_name(column)}"
