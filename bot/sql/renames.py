"""Names as the later statements of a script left them.

``CREATE TABLE a (...); ALTER TABLE a RENAME TO b;`` leaves no table ``a`` even though the
CREATE took effect. The diagnosis walks a script from its last statement to its first and,
for every rename that took effect, looks up earlier statements' names under the new name.
"""

from __future__ import annotations

from dataclasses import replace

from bot.sql.changes import Change, ChangeKind
from bot.sql.names import QualifiedName

_TYPE_KINDS = frozenset(
    {
        ChangeKind.CREATE_TYPE,
        ChangeKind.DROP_TYPE,
        ChangeKind.RENAME_TYPE,
        ChangeKind.ADD_ENUM_VALUE,
    }
)
_COLUMN_KINDS = frozenset(
    {
        ChangeKind.ADD_COLUMN,
        ChangeKind.DROP_COLUMN,
        ChangeKind.RENAME_COLUMN,
        ChangeKind.ALTER_COLUMN_TYPE,
        ChangeKind.SET_NOT_NULL,
        ChangeKind.DROP_NOT_NULL,
        ChangeKind.SET_DEFAULT,
        ChangeKind.DROP_DEFAULT,
    }
)
_CONSTRAINT_KINDS = frozenset(
    {ChangeKind.ADD_CONSTRAINT, ChangeKind.DROP_CONSTRAINT, ChangeKind.RENAME_CONSTRAINT}
)
_UNRENAMED_KINDS = frozenset(
    {
        ChangeKind.CREATE_SCHEMA,
        ChangeKind.DROP_SCHEMA,
        ChangeKind.CREATE_EXTENSION,
        ChangeKind.DROP_EXTENSION,
        ChangeKind.OTHER,
    }
)


class Renames:
    """Renames that took effect later in the script; names are resolved (schema set)."""

    def __init__(self) -> None:
        # Tables and indexes share one name space per schema (pg_class), types another.
        self._relations: dict[QualifiedName, str] = {}
        self._types: dict[QualifiedName, str] = {}
        # Keyed by the table's current name, so a later table rename carries them along.
        self._columns: dict[tuple[QualifiedName, str], str] = {}
        self._constraints: dict[tuple[QualifiedName, str], str] = {}

    def current(self, change: Change) -> Change:
        """``change`` with every name replaced by the name it has now."""
        if change.kind in _UNRENAMED_KINDS:
            return change
        names = self._types if change.kind in _TYPE_KINDS else self._relations
        target = _renamed(names, change.target)
        table = _renamed(self._relations, change.table) if change.table else None
        return replace(
            change,
            target=target,
            table=table,
            name=self._member(change, target, change.name),
            new_name=self._new_name(change, target, names),
        )

    def record(self, original: Change, now: Change) -> None:
        """Remember a rename that took effect: ``original`` as written, ``now`` as current."""
        if original.kind == ChangeKind.RENAME_TABLE or original.kind == ChangeKind.RENAME_INDEX:
            self._relations[original.target] = now.new_name
        elif original.kind == ChangeKind.RENAME_TYPE:
            self._types[original.target] = now.new_name
        elif original.kind == ChangeKind.RENAME_COLUMN:
            self._columns[(now.target, original.name)] = now.new_name
        elif original.kind == ChangeKind.RENAME_CONSTRAINT:
            self._constraints[(now.target, original.name)] = now.new_name

    def _member(self, change: Change, table: QualifiedName, name: str | None) -> str | None:
        if name is None:
            return None
        if change.kind in _COLUMN_KINDS:
            return self._columns.get((table, name), name)
        if change.kind in _CONSTRAINT_KINDS:
            return self._constraints.get((table, name), name)
        return name

    def _new_name(
        self, change: Change, target: QualifiedName, names: dict[QualifiedName, str]
    ) -> str | None:
        if change.new_name is None:
            return None
        if change.kind in (ChangeKind.RENAME_COLUMN, ChangeKind.RENAME_CONSTRAINT):
            return self._member(change, target, change.new_name)
        return names.get(QualifiedName(target.schema, change.new_name), change.new_name)


def _renamed(names: dict[QualifiedName, str], name: QualifiedName) -> QualifiedName:
    return QualifiedName(name.schema, names.get(name, name.name))
