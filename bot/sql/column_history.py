"""Column definitions as a sequence of migrations left them, replayed from their SQL.

Undoing ``ALTER COLUMN ... SET DEFAULT 'x'`` needs the default the column had before, and
after the fact the live catalog only shows the new one. The earlier migrations of the same
directory say what it was: replaying their CREATE TABLE / ADD COLUMN / ALTER COLUMN changes
in order gives each column's last known type, nullability and default.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace

from bot.sql.changes import Change, ChangeKind, ColumnSpec, changes_of, resolved
from bot.sql.names import QualifiedName
from bot.sql.statements import split_statements

# serial is not a type but a shorthand: integer + a sequence + a nextval() default
# (PostgreSQL docs, "Serial Types").
_SERIAL_TYPES = {
    "serial": "integer",
    "serial4": "integer",
    "bigserial": "bigint",
    "serial8": "bigint",
    "smallserial": "smallint",
    "serial2": "smallint",
}


@dataclass(frozen=True)
class ColumnDefinition:
    type_sql: str | None  # None: not known
    not_null: bool | None  # None: not known
    default_sql: str | None  # meaningful only when default_known
    default_known: bool = True


def definition_of(spec: ColumnSpec) -> ColumnDefinition:
    serial = _SERIAL_TYPES.get(spec.type_sql.lower())
    if serial is not None:
        # The default names an implicit sequence (<table>_<column>_seq, maybe truncated).
        return ColumnDefinition(serial, True, None, default_known=False)
    return ColumnDefinition(spec.type_sql, spec.not_null, spec.default_sql)


ColumnKey = tuple[QualifiedName, str]


class ColumnHistory:
    """Last known definition of every column, keyed by (resolved table name, column)."""

    def __init__(self, default_schema: str):
        self.default_schema = default_schema
        self._columns: dict[ColumnKey, ColumnDefinition] = {}

    def get(self, table: QualifiedName, column: str) -> ColumnDefinition | None:
        return self._columns.get((table.resolved(self.default_schema), column))

    def replay(self, sql: str) -> None:
        """Apply every change of a script that ran to completion."""
        for statement in split_statements(sql):
            for change in changes_of(statement.node):
                self.apply(resolved(change, self.default_schema))

    def apply(self, change: Change) -> None:
        """Apply one change that took effect (names resolved)."""
        handler = _HANDLERS.get(change.kind)
        if handler is not None:
            handler(self._columns, change)


def _create_table(columns: dict[ColumnKey, ColumnDefinition], change: Change) -> None:
    for spec in change.columns:
        columns[(change.target, spec.name)] = definition_of(spec)


def _drop_table(columns: dict[ColumnKey, ColumnDefinition], change: Change) -> None:
    for key in [key for key in columns if key[0] == change.target]:
        del columns[key]


def _rename_table(columns: dict[ColumnKey, ColumnDefinition], change: Change) -> None:
    new_table = QualifiedName(change.target.schema, change.new_name)
    for key in [key for key in columns if key[0] == change.target]:
        columns[(new_table, key[1])] = columns.pop(key)


def _add_column(columns: dict[ColumnKey, ColumnDefinition], change: Change) -> None:
    columns[(change.target, change.name)] = definition_of(change.column)


def _drop_column(columns: dict[ColumnKey, ColumnDefinition], change: Change) -> None:
    columns.pop((change.target, change.name), None)


def _rename_column(columns: dict[ColumnKey, ColumnDefinition], change: Change) -> None:
    definition = columns.pop((change.target, change.name), None)
    if definition is not None:
        columns[(change.target, change.new_name)] = definition


def _updating(**fields: Callable[[Change], object]):
    """A handler that sets fields of a known column's definition."""

    def handler(columns: dict[ColumnKey, ColumnDefinition], change: Change) -> None:
        key = (change.target, change.name)
        if key in columns:
            values = {field: read(change) for field, read in fields.items()}
            columns[key] = replace(columns[key], **values)

    return handler


_HANDLERS = {
    ChangeKind.CREATE_TABLE: _create_table,
    ChangeKind.DROP_TABLE: _drop_table,
    ChangeKind.RENAME_TABLE: _rename_table,
    ChangeKind.ADD_COLUMN: _add_column,
    ChangeKind.DROP_COLUMN: _drop_column,
    ChangeKind.RENAME_COLUMN: _rename_column,
    ChangeKind.ALTER_COLUMN_TYPE: _updating(type_sql=lambda c: c.type_sql),
    ChangeKind.SET_NOT_NULL: _updating(not_null=lambda c: True),
    ChangeKind.DROP_NOT_NULL: _updating(not_null=lambda c: False),
    ChangeKind.SET_DEFAULT: _updating(
        default_sql=lambda c: c.default_sql, default_known=lambda c: True
    ),
    ChangeKind.DROP_DEFAULT: _updating(default_sql=lambda c: None, default_known=lambda c: True),
}
