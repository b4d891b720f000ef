"""Facts about a schema that both the model and the live catalog can state, and how they
compare.

A fact is a key (``("col", table, column)``, ``("condef", table, constraint)``...) and a
value: whether a relation exists and what kind it is, a column's type, nullability, default
and ordinal position, a constraint's normalised definition (``pg_get_constraintdef``), an
index's table and normalised definition (``pg_get_indexdef``), a type, an enum label, a
schema, an extension. Names are part of the key; identity is in the values: a table dropped
and created again with other columns, a foreign key re-added with ON DELETE CASCADE, a
column dropped and added again (it moves to the end) all show in the values, so a name
that is still there proves nothing by itself.
"""

from __future__ import annotations

from collections.abc import Iterable
from functools import lru_cache

from pglast.enums import ConstrType

from bot.sql.expressions import normalized_expression
from bot.sql.model_definitions import constraint_signature, index_signature, renamed
from bot.sql.names import QualifiedName, display_name
from bot.sql.schema_model import (
    SOME_DEFAULT,
    TEMP_SCHEMA,
    UNKNOWN,
    Column,
    Constraint,
    Index,
    OtherRelation,
    SchemaModel,
    Table,
)
from bot.sql.type_names import TypeRef


class _NotThere:
    """The object a property belongs to does not exist (a column's type, no column)."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "NOT_THERE"


NOT_THERE = _NotThere()

Key = tuple
COLUMN_FACTS = ("col", "coltype", "colnull", "coldefault", "colpos")
# Facts whose two sides are normalised from different spellings: when the live value
# matches none of the values the model gives, the bot does not trust its own reading and
# the fact says nothing (rather than rule out the truth).
SPELLED_FACTS = frozenset({"coltype", "coldefault", "condef", "index"})


def reliably_read(kind: str, live: object) -> bool:
    """A spelled fact whose live value the bot reads structurally, not from an expression:
    a key or foreign key (columns, referenced table, actions), an index on plain columns,
    a column of a user-defined type (by name)."""
    if kind == "condef":
        return isinstance(live, tuple) and live[0] in _STRUCTURAL_CONSTRAINTS
    if kind == "index":
        if not (isinstance(live, tuple) and isinstance(live[1], tuple)):
            return False
        _, _, elements, _, where, _ = live[1]
        return where is None and all(e[0] is not None and "(" not in e[0] for e in elements)
    if kind == "coltype":
        return isinstance(live, tuple) and live[0] == "u"
    return False


_STRUCTURAL_CONSTRAINTS = frozenset(
    {int(ConstrType.CONSTR_PRIMARY), int(ConstrType.CONSTR_UNIQUE), int(ConstrType.CONSTR_FOREIGN)}
)

# An enum label can stay behind after an undo (PostgreSQL cannot drop it): its presence
# proves nothing, its absence does.
PRESENCE_ONLY = frozenset({"enumval"})


# ----------------------------------------------------------------- which facts


def facts_touched(before: SchemaModel, after: SchemaModel, touched: Iterable) -> set[Key]:
    """The facts a change could have changed, named as in either state."""
    keys: set[Key] = set()
    for marker in touched:
        kind, what = marker[0], marker[1]
        if kind == "relation":
            _relation_facts(keys, what, before, after)
        elif kind == "ident":
            for state in (before, after):
                relation = state.relation_by_ident(what)
                if relation is not None:
                    _relation_facts(keys, relation.name, before, after)
        elif kind == "type":
            keys.add(("type", what))
            for state in (before, after):
                found = state.types.get(what)
                if found is not None:
                    keys.update(("enumval", what, label) for label in found.values)
        elif kind in ("schema", "extension"):
            keys.add((kind, what))
        elif kind == "function":
            keys.add(("function", what[0], what[1]))
        elif kind == "trigger":
            for state in (before, after):
                table = state.table_by_ident(what[0])
                if table is not None:
                    keys.add(("trigger", table.name, what[1]))
    return keys


def _relation_facts(keys: set[Key], name: QualifiedName, *states: SchemaModel) -> None:
    keys.add(("rel", name))
    for state in states:
        relation = state.relation(name)
        if isinstance(relation, Table):
            for column in relation.columns:
                keys.update((fact, name, column.name) for fact in COLUMN_FACTS)
            for constraint in relation.constraints:
                keys.update((fact, name, constraint.name) for fact in ("con", "condef"))
        elif isinstance(relation, Index):
            keys.add(("index", name))


def table_facts(state: SchemaModel, table: Table) -> set[Key]:
    keys: set[Key] = set()
    _relation_facts(keys, table.name, state)
    return keys


# ----------------------------------------------------------------- model values


def model_value(state: SchemaModel, key: Key) -> object:
    kind = key[0]
    if isinstance(key[1], QualifiedName) and key[1].schema == TEMP_SCHEMA:
        return UNKNOWN  # gone with the session that made it
    if kind == "rel":
        return _relation_kind(state, key[1])
    if kind in COLUMN_FACTS:
        return _column_fact(state, kind, key[1], key[2])
    if kind in ("con", "condef"):
        return _constraint_fact(state, kind, key[1], key[2])
    if kind == "index":
        return _index_fact(state, key[1])
    if kind == "type":
        return _type_kind(state, key[1])
    if kind == "enumval":
        return _enum_label(state, key[1], key[2])
    if kind == "schema":
        return _present(key[1] in state.schemas, state.absent_known)
    if kind == "extension":
        return _present(key[1] in state.extensions, state.absent_known)
    if kind == "function":
        return _present((key[1], key[2]) in state.functions, state.absent_known)
    if kind == "trigger":
        table = state.table(key[1])
        if table is None:
            return None if state.relation_exists(key[1]) is False else UNKNOWN
        return _present((table.ident, key[2]) in state.triggers, table.complete)
    return UNKNOWN


def _present(present: bool, absent_known: bool) -> object:
    return True if present else (None if absent_known else UNKNOWN)


def _relation_kind(state: SchemaModel, name: QualifiedName) -> object:
    exists = state.relation_exists(name)
    if exists is UNKNOWN:
        return UNKNOWN
    if not exists:
        return None
    relation = state.relation(name)
    if isinstance(relation, Table):
        return "r"
    if isinstance(relation, Index):
        return "i"
    return relation.kind if relation.kind != "?" else UNKNOWN


def _table_or_absence(state: SchemaModel, name: QualifiedName) -> Table | object:
    table = state.table(name)
    if table is not None:
        return table
    exists = state.relation_exists(name)
    return UNKNOWN if exists is UNKNOWN or exists else None


def _column_fact(state: SchemaModel, kind: str, table_name: QualifiedName, name: str) -> object:
    table = _table_or_absence(state, table_name)
    if not isinstance(table, Table):
        return table if kind == "col" or table is UNKNOWN else NOT_THERE
    column = table.column(name)
    if column is None:
        doubtful = not table.complete or (table.ident, name) in state.doubts.columns
        if doubtful:
            return UNKNOWN
        return None if kind == "col" else NOT_THERE
    if kind == "col":
        return True
    if kind == "coltype":
        return type_value(state, column.type)
    if kind == "colnull":
        return column.not_null
    if kind == "coldefault":
        return default_value(column.default)
    return _position(table, column)


def _position(table: Table, column: Column) -> object:
    if not table.complete:
        return UNKNOWN
    return 1 + [c.ident for c in table.columns].index(column.ident)


def type_value(state: SchemaModel, ref: TypeRef | object) -> object:
    if not isinstance(ref, TypeRef):
        return UNKNOWN
    if ref.builtin is not None:
        return ("b", ref.builtin)
    if ref.user is not None:
        found = state.type_by_ident(ref.user)
        if found is None:
            return UNKNOWN
        return ("u", found.name.schema, found.name.name, ref.array)
    if ref.user_name is not None:
        name = state.resolve(ref.user_name)
        return ("u", name.schema, name.name, ref.array)
    return UNKNOWN


def default_value(default: object) -> object:
    if default is None or default is UNKNOWN or default is SOME_DEFAULT:
        return default
    return normalized_default(str(default))


@lru_cache(maxsize=4096)
def normalized_default(sql: str) -> str:
    return normalized_expression(sql)


def _constraint_fact(state: SchemaModel, kind: str, table_name: QualifiedName, name: str):
    table = _table_or_absence(state, table_name)
    if not isinstance(table, Table):
        return table if kind == "con" or table is UNKNOWN else NOT_THERE
    constraint = table.constraint(name)
    if constraint is None:
        if not table.complete or (table.ident, name) in state.doubts.constraints:
            return UNKNOWN
        return None if kind == "con" else NOT_THERE
    if kind == "con":
        return constraint.contype if constraint.contype != "?" else UNKNOWN
    return constraint_value(state, table, constraint)


def constraint_value(state: SchemaModel, table: Table, constraint: Constraint) -> object:
    definition = constraint.definition
    if definition is None:
        return UNKNOWN
    referenced = state.table_by_ident(constraint.ref_table) if constraint.ref_table else None
    node = renamed(definition, _column_names(table), _column_names(referenced))
    if node is None:
        return UNKNOWN
    if constraint.contype == "f":
        target = referenced.name if referenced is not None else UNKNOWN
        return constraint_signature(node, target, UNKNOWN)
    return constraint_signature(node, None, None)


def _column_names(table: Table | None):
    def name(ident: int) -> str | None:
        column = table.column_by_ident(ident) if table is not None else None
        return column.name if column is not None else None

    return name


def _index_fact(state: SchemaModel, name: QualifiedName) -> object:
    relation = state.relation(name)
    if not isinstance(relation, Index):
        if relation is None and state.relation_exists(name) is UNKNOWN:
            return UNKNOWN
        return NOT_THERE
    return index_value(state, relation)


def index_value(state: SchemaModel, index: Index) -> object:
    table = state.table_by_ident(index.table)
    if table is None:
        return UNKNOWN
    if index.definition is None:
        return (table.name, UNKNOWN)
    node = renamed(index.definition, _column_names(table))
    if node is None:
        return (table.name, UNKNOWN)
    return (table.name, index_signature(node))


def _type_kind(state: SchemaModel, name: QualifiedName) -> object:
    found = state.types.get(name)
    if name in state.doubts.types:
        return UNKNOWN
    if found is not None:
        return found.kind if found.kind != "?" else UNKNOWN
    return None if state.absent_known else UNKNOWN


def _enum_label(state: SchemaModel, name: QualifiedName, label: str) -> object:
    found = state.types.get(name)
    if found is None:
        kind = _type_kind(state, name)
        return UNKNOWN if kind is UNKNOWN else None
    if label in found.values:
        return True
    if not found.values_complete or (found.ident, label) in state.doubts.enum_values:
        return UNKNOWN
    return None


# ----------------------------------------------------------------- comparing


def compatible(kind: str, model: object, live: object) -> bool:
    """Can the live value be what the model says (UNKNOWN parts match anything)?"""
    if kind in PRESENCE_ONLY and live is True:
        return True
    return _matches(model, live)


def _matches(model: object, live: object) -> bool:
    if model is UNKNOWN:
        return True
    if model is SOME_DEFAULT:
        return live is not None and live is not NOT_THERE
    if isinstance(model, tuple) and isinstance(live, tuple):
        if len(model) != len(live):
            return False
        return all(_matches(m, v) for m, v in zip(model, live, strict=True))
    return model == live


# ----------------------------------------------------------------- words


def describe(key: Key, value: object) -> str:
    """The fact in words, for the evidence a person reads."""
    kind = key[0]
    if kind == "rel":
        what = {"r": "table", "i": "index", "S": "sequence", "v": "view", "m": "view"}
        noun = what.get(value, "relation") if isinstance(value, str) else "relation"
        return f"{noun} {key[1].display()} {'exists' if value else 'does not exist'}"
    if kind in COLUMN_FACTS or kind in ("con", "condef"):
        return _describe_member(kind, key, value)
    if kind == "index":
        if value is NOT_THERE:
            return f"index {key[1].display()} does not exist"
        return f"index {key[1].display()} on {value[0].display()} is as defined there"
    if kind == "type":
        return f"type {key[1].display()} {'exists' if value else 'does not exist'}"
    if kind == "enumval":
        state = "exists" if value else "does not exist"
        return f"value '{key[2]}' of enum {key[1].display()} {state}"
    state = "exists" if value else "does not exist"
    if kind == "function":
        return f"function {key[1].display()}({key[2]}) {state}"
    if kind == "trigger":
        return f"trigger {display_name(key[2])} on {key[1].display()} {state}"
    return f"{kind} {display_name(key[1])} {state}"


def _describe_member(kind: str, key: Key, value: object) -> str:
    table, name = key[1].display(), display_name(key[2])
    if kind in ("con", "condef"):
        what = f"constraint {name} on {table}"
        if value is None or value is NOT_THERE:
            return f"{what} does not exist"
        return f"{what} exists" if kind == "con" else f"{what} is as defined there"
    what = f"column {table}.{name}"
    if value is None or value is NOT_THERE:
        return f"{what} does not exist"
    if kind == "col":
        return f"{what} exists"
    if kind == "coltype":
        return f"{what} has type {_type_words(value)}"
    if kind == "colnull":
        return f"{what} is {'NOT NULL' if value else 'nullable'}"
    if kind == "coldefault":
        return f"{what} defaults to {value}" if value else f"{what} has no default"
    return f"{what} is at position {value}"


def _type_words(value: object) -> str:
    if isinstance(value, tuple) and value and value[0] == "b":
        return value[1]
    if isinstance(value, tuple) and len(value) == 4:
        name = QualifiedName(value[1], value[2]).display()
        return f"{name}[]" if value[3] else name
    return str(value)


def relation_facts(state: SchemaModel, relation: Table | Index | OtherRelation) -> set[Key]:
    keys: set[Key] = set()
    _relation_facts(keys, relation.name, state)
    return keys
