"""Is one schema change present in the live catalog? "applied", "not_applied" or "unknown".

Each check looks for the change's effect, not for the statement: "ADD COLUMN users.bio" is
applied when the column exists. Effects that leave nothing in the catalog (an UPDATE) are
"unknown". Names must be resolved (schema filled in) before they are observed.
"""

from __future__ import annotations

from collections.abc import Callable
from enum import StrEnum

from bot.sql.catalog import Catalog
from bot.sql.changes import Change, ChangeKind
from bot.sql.expressions import same_expression
from bot.sql.names import QualifiedName, display_name


class Verdict(StrEnum):
    APPLIED = "applied"
    NOT_APPLIED = "not_applied"
    UNKNOWN = "unknown"


Observation = tuple[Verdict, str]  # the verdict and its one-line evidence

APPLIED, NOT_APPLIED, UNKNOWN = Verdict.APPLIED, Verdict.NOT_APPLIED, Verdict.UNKNOWN

# pg_constraint.contype letters (PostgreSQL docs, pg_constraint).
_CONTYPES = {"PRIMARY KEY": "p", "FOREIGN KEY": "f", "UNIQUE": "u", "CHECK": "c", "EXCLUDE": "x"}


def observe(catalog: Catalog, change: Change) -> Observation:
    return _OBSERVERS.get(change.kind, _unobservable)(catalog, change)


def _exists(present: bool, what: str, created: bool = True) -> Observation:
    """For a create, present means applied; for a drop, absent means applied."""
    state = "exists" if present else "does not exist"
    return (APPLIED if present == created else NOT_APPLIED), f"{what} {state}"


def _unobservable(catalog: Catalog, change: Change) -> Observation:
    if change.kind == ChangeKind.DATA_CHANGE:
        return UNKNOWN, "a data change leaves no trace in the catalog"
    return UNKNOWN, "the bot cannot check this kind of statement"


def _table(created: bool) -> Callable[[Catalog, Change], Observation]:
    def check(catalog: Catalog, change: Change) -> Observation:
        table = change.target
        return _exists(catalog.table_exists(table), f"table {table.display()}", created)

    return check


def _renamed(old_present: bool, new_present: bool, old: str, new: str) -> Observation:
    if new_present and not old_present:
        return APPLIED, f"{new} exists and {old} does not"
    if old_present and not new_present:
        return NOT_APPLIED, f"{old} exists and {new} does not"
    both = "both exist" if old_present else "neither exists"
    return UNKNOWN, f"{old} and {new}: {both}"


def _rename_relation(catalog: Catalog, change: Change) -> Observation:
    old, new = change.target, QualifiedName(change.target.schema, change.new_name)
    return _renamed(
        catalog.relation_kind(old) is not None,
        catalog.relation_kind(new) is not None,
        old.display(),
        new.display(),
    )


def _column_label(change: Change, column: str | None = None) -> str:
    return f"column {change.target.display()}.{display_name(column or change.name)}"


def _column(created: bool) -> Callable[[Catalog, Change], Observation]:
    def check(catalog: Catalog, change: Change) -> Observation:
        if not catalog.table_exists(change.target):
            if created:
                return NOT_APPLIED, f"table {change.target.display()} does not exist"
            return UNKNOWN, f"table {change.target.display()} does not exist"
        present = catalog.column(change.target, change.name) is not None
        return _exists(present, _column_label(change), created)

    return check


def _rename_column(catalog: Catalog, change: Change) -> Observation:
    if not catalog.table_exists(change.target):
        return UNKNOWN, f"table {change.target.display()} does not exist"
    return _renamed(
        catalog.column(change.target, change.name) is not None,
        catalog.column(change.target, change.new_name) is not None,
        _column_label(change),
        _column_label(change, change.new_name),
    )


def _column_property(
    read: Callable[[Catalog, Change, object], Observation],
) -> Callable[[Catalog, Change], Observation]:
    """Checks on an existing column: a missing column says nothing about them."""

    def check(catalog: Catalog, change: Change) -> Observation:
        state = catalog.column(change.target, change.name)
        if state is None:
            return UNKNOWN, f"{_column_label(change)} does not exist"
        return read(catalog, change, state)

    return check


@_column_property
def _column_type(catalog: Catalog, change: Change, state) -> Observation:
    expected = catalog.formatted_type(change.type_sql)
    if expected is None:
        return UNKNOWN, f"type {change.type_sql} does not exist"
    if state.type == expected:
        return APPLIED, f"{_column_label(change)} is {state.type}"
    return NOT_APPLIED, f"{_column_label(change)} is {state.type}, not {expected}"


def _nullability(not_null: bool) -> Callable[[Catalog, Change], Observation]:
    @_column_property
    def check(catalog: Catalog, change: Change, state) -> Observation:
        now = "NOT NULL" if state.not_null else "nullable"
        verdict = APPLIED if state.not_null == not_null else NOT_APPLIED
        return verdict, f"{_column_label(change)} is {now}"

    return check


@_column_property
def _set_default(catalog: Catalog, change: Change, state) -> Observation:
    if state.default is None:
        return NOT_APPLIED, f"{_column_label(change)} has no default"
    if same_expression(change.default_sql, state.default):
        return APPLIED, f"{_column_label(change)} defaults to {state.default}"
    # Another default is set: the old one, or a later change; the bot cannot tell which.
    return UNKNOWN, f"{_column_label(change)} defaults to {state.default}"


@_column_property
def _drop_default(catalog: Catalog, change: Change, state) -> Observation:
    if state.default is None:
        return APPLIED, f"{_column_label(change)} has no default"
    return NOT_APPLIED, f"{_column_label(change)} defaults to {state.default}"


def _index(created: bool) -> Callable[[Catalog, Change], Observation]:
    def check(catalog: Catalog, change: Change) -> Observation:
        index = change.target
        return _exists(catalog.index_exists(index), f"index {index.display()}", created)

    return check


def _add_constraint(catalog: Catalog, change: Change) -> Observation:
    table = change.target
    if not catalog.table_exists(table):
        return NOT_APPLIED, f"table {table.display()} does not exist"
    if change.name is None:
        return _unnamed_constraint(catalog, change)
    contype = catalog.constraint_type(table, change.name)
    what = f"constraint {change.name} on {table.display()}"
    if contype is None:
        return NOT_APPLIED, f"{what} does not exist"
    if contype != _CONTYPES.get(change.constraint_type, contype):
        return UNKNOWN, f"{what} exists but is not a {change.constraint_type}"
    return APPLIED, f"{what} exists"


def _unnamed_constraint(catalog: Catalog, change: Change) -> Observation:
    # A table has at most one primary key, so its presence answers even without a name;
    # other unnamed constraints get a name PostgreSQL chooses (ChooseConstraintName).
    if change.constraint_type == "PRIMARY KEY":
        present = catalog.has_primary_key(change.target)
        return _exists(present, f"a primary key on {change.target.display()}")
    return UNKNOWN, "the constraint has no name, PostgreSQL chose one"


def _drop_constraint(catalog: Catalog, change: Change) -> Observation:
    table = change.target
    if not catalog.table_exists(table):
        return UNKNOWN, f"table {table.display()} does not exist"
    present = catalog.constraint_type(table, change.name) is not None
    return _exists(present, f"constraint {change.name} on {table.display()}", created=False)


def _rename_constraint(catalog: Catalog, change: Change) -> Observation:
    table = change.target
    if not catalog.table_exists(table):
        return UNKNOWN, f"table {table.display()} does not exist"
    return _renamed(
        catalog.constraint_type(table, change.name) is not None,
        catalog.constraint_type(table, change.new_name) is not None,
        f"constraint {change.name}",
        f"constraint {change.new_name}",
    )


def _type(created: bool) -> Callable[[Catalog, Change], Observation]:
    def check(catalog: Catalog, change: Change) -> Observation:
        present = catalog.type_kind(change.target) is not None
        return _exists(present, f"type {change.target.display()}", created)

    return check


def _rename_type(catalog: Catalog, change: Change) -> Observation:
    old, new = change.target, QualifiedName(change.target.schema, change.new_name)
    return _renamed(
        catalog.type_kind(old) is not None,
        catalog.type_kind(new) is not None,
        f"type {old.display()}",
        f"type {new.display()}",
    )


def _enum_value(catalog: Catalog, change: Change) -> Observation:
    enum = change.target
    if catalog.type_kind(enum) != "e":
        return NOT_APPLIED, f"enum {enum.display()} does not exist"
    present = change.name in catalog.enum_values(enum)
    return _exists(present, f"value '{change.name}' of enum {enum.display()}")


def _schema(created: bool) -> Callable[[Catalog, Change], Observation]:
    def check(catalog: Catalog, change: Change) -> Observation:
        name = change.target.name
        return _exists(catalog.schema_exists(name), f"schema {change.target.display()}", created)

    return check


def _extension(created: bool) -> Callable[[Catalog, Change], Observation]:
    def check(catalog: Catalog, change: Change) -> Observation:
        present = catalog.extension_exists(change.target.name)
        return _exists(present, f"extension {change.target.display()}", created)

    return check


_OBSERVERS: dict[ChangeKind, Callable[[Catalog, Change], Observation]] = {
    ChangeKind.CREATE_TABLE: _table(created=True),
    ChangeKind.DROP_TABLE: _table(created=False),
    ChangeKind.RENAME_TABLE: _rename_relation,
    ChangeKind.ADD_COLUMN: _column(created=True),
    ChangeKind.DROP_COLUMN: _column(created=False),
    ChangeKind.RENAME_COLUMN: _rename_column,
    ChangeKind.ALTER_COLUMN_TYPE: _column_type,
    ChangeKind.SET_NOT_NULL: _nullability(not_null=True),
    ChangeKind.DROP_NOT_NULL: _nullability(not_null=False),
    ChangeKind.SET_DEFAULT: _set_default,
    ChangeKind.DROP_DEFAULT: _drop_default,
    ChangeKind.CREATE_INDEX: _index(created=True),
    ChangeKind.DROP_INDEX: _index(created=False),
    ChangeKind.RENAME_INDEX: _rename_relation,
    ChangeKind.ADD_CONSTRAINT: _add_constraint,
    ChangeKind.DROP_CONSTRAINT: _drop_constraint,
    ChangeKind.RENAME_CONSTRAINT: _rename_constraint,
    ChangeKind.CREATE_TYPE: _type(created=True),
    ChangeKind.DROP_TYPE: _type(created=False),
    ChangeKind.RENAME_TYPE: _rename_type,
    ChangeKind.ADD_ENUM_VALUE: _enum_value,
    ChangeKind.CREATE_SCHEMA: _schema(created=True),
    ChangeKind.DROP_SCHEMA: _schema(created=False),
    ChangeKind.CREATE_EXTENSION: _extension(created=True),
    ChangeKind.DROP_EXTENSION: _extension(created=False),
}
