"""A model of a database schema, as a sequence of migrations leaves it.

The live catalog shows the schema as it is now; to tell which statements of a migration
took effect, and to undo them exactly, the bot also needs the schema as it was before each
statement. It replays the migrations' SQL (bot.sql.model_replay) on this model: tables with
their columns in attnum order, constraints, indexes, sequences, views, user-defined types,
schemas and extensions, each object with an identity that stays the same through renames
and is new when an object of the same name is created again.

What the model cannot know is ``UNKNOWN`` (an object created outside the migrations, a
property a statement the bot does not analyse may have changed). Nothing here is ever
guessed: a question the model cannot answer gets UNKNOWN, and UNKNOWN never rules anything
out.

States are copied on write: objects are frozen, and ``copy()`` copies only the maps, so a
migration's replay can keep the state after every statement cheaply.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from dataclasses import dataclass, field, replace

from bot.sql.model_definitions import Definition
from bot.sql.names import QualifiedName
from bot.sql.type_names import TypeRef


class _Unknown:
    """What the model cannot tell. Never equal to anything, not even itself by value."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "UNKNOWN"


UNKNOWN = _Unknown()


class _SomeDefault:
    """A column has a default whose expression the model does not know (serial's
    nextval of an implicitly named sequence)."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "SOME_DEFAULT"


SOME_DEFAULT = _SomeDefault()

_identities = itertools.count(1)


def new_identity() -> int:
    return next(_identities)


@dataclass(frozen=True, slots=True)
class Column:
    ident: int
    name: str
    type: TypeRef | _Unknown = UNKNOWN
    not_null: bool | _Unknown = UNKNOWN
    default: str | None | _Unknown | _SomeDefault = UNKNOWN  # SQL as written, None: none


@dataclass(frozen=True, slots=True)
class Constraint:
    ident: int
    name: str
    contype: str  # pg_constraint.contype: p u f c x, or "?" when not known
    definition: Definition | None = None  # None: not known
    columns: frozenset[int] = frozenset()  # the columns of its table it uses
    ref_table: int | None = None  # FOREIGN KEY: the referenced table
    ref_columns: frozenset[int] = frozenset()  # FOREIGN KEY: the referenced columns
    index: int | None = None  # PRIMARY KEY, UNIQUE, EXCLUDE: the index it owns


@dataclass(frozen=True, slots=True)
class Table:
    ident: int
    name: QualifiedName
    columns: tuple[Column, ...] = ()  # in attnum order
    constraints: tuple[Constraint, ...] = ()
    complete: bool = True  # False: it may have columns and constraints the model lacks

    def column(self, name: str) -> Column | None:
        for column in self.columns:
            if column.name == name:
                return column
        return None

    def column_by_ident(self, ident: int) -> Column | None:
        for column in self.columns:
            if column.ident == ident:
                return column
        return None

    def constraint(self, name: str) -> Constraint | None:
        for constraint in self.constraints:
            if constraint.name == name:
                return constraint
        return None

    def primary_key(self) -> Constraint | None:
        for constraint in self.constraints:
            if constraint.contype == "p":
                return constraint
        return None


@dataclass(frozen=True, slots=True)
class Index:
    ident: int
    name: QualifiedName
    table: int
    definition: Definition | None = None  # the CREATE INDEX, None: not known
    columns: frozenset[int] = frozenset()
    constraint: int | None = None  # the PRIMARY KEY / UNIQUE / EXCLUDE owning it


@dataclass(frozen=True, slots=True)
class OtherRelation:
    """A sequence, view or materialized view (pg_class.relkind S, v, m), or "?"."""

    ident: int
    name: QualifiedName
    kind: str
    owner: tuple[int, int] | None = None  # a serial's sequence: (table, column) owning it
    definition: Definition | None = None


Relation = Table | Index | OtherRelation


@dataclass(frozen=True, slots=True)
class UserType:
    ident: int
    name: QualifiedName
    kind: str  # pg_type.typtype: e (enum), c (composite), d (domain), "?"
    values: tuple[str, ...] = ()  # an enum's labels, in order, as far as known
    values_complete: bool = True  # False: it may have labels the model lacks


@dataclass
class Doubts:
    """Objects a migration touched that the model did not know: whatever the model said
    about them before that point is UNKNOWN (shared by the states of one replay)."""

    relations: set[QualifiedName] = field(default_factory=set)
    types: set[QualifiedName] = field(default_factory=set)
    columns: set[tuple[int, str]] = field(default_factory=set)
    constraints: set[tuple[int, str]] = field(default_factory=set)
    enum_values: set[tuple[int, str]] = field(default_factory=set)

    def copy(self) -> Doubts:
        return Doubts(
            set(self.relations),
            set(self.types),
            set(self.columns),
            set(self.constraints),
            set(self.enum_values),
        )


class SchemaModel:
    """One state of the schema. ``absent_known``: an object the model does not have does
    not exist (the model was replayed from the whole history); otherwise its absence is
    UNKNOWN."""

    def __init__(self, default_schema: str, *, absent_known: bool):
        self.default_schema = default_schema
        self.absent_known = absent_known
        self.relations: dict[QualifiedName, Relation] = {}
        self.types: dict[QualifiedName, UserType] = {}
        self.schemas: set[str] = {default_schema, "public"}
        self.extensions: set[str] = set()
        self.doubts = Doubts()
        self._relation_names: dict[int, QualifiedName] = {}
        self._type_names: dict[int, QualifiedName] = {}
        self.dirty: set[object] | None = None  # what the current statement touched

    # --------------------------------------------------------------------- copying

    def copy(self) -> SchemaModel:
        other = SchemaModel.__new__(SchemaModel)
        other.default_schema = self.default_schema
        other.absent_known = self.absent_known
        other.relations = dict(self.relations)
        other.types = dict(self.types)
        other.schemas = set(self.schemas)
        other.extensions = set(self.extensions)
        other.doubts = self.doubts
        other._relation_names = dict(self._relation_names)
        other._type_names = dict(self._type_names)
        other.dirty = None
        return other

    def fork(self) -> SchemaModel:
        """A copy with its own doubts: a new replay starting from this state."""
        other = self.copy()
        other.doubts = self.doubts.copy()
        return other

    # ------------------------------------------------------------------- questions

    def resolve(self, name: QualifiedName) -> QualifiedName:
        return name.resolved(self.default_schema)

    def relation(self, name: QualifiedName) -> Relation | None:
        return self.relations.get(name)

    def table(self, name: QualifiedName) -> Table | None:
        found = self.relations.get(name)
        return found if isinstance(found, Table) else None

    def relation_by_ident(self, ident: int) -> Relation | None:
        name = self._relation_names.get(ident)
        return self.relations.get(name) if name is not None else None

    def table_by_ident(self, ident: int) -> Table | None:
        found = self.relation_by_ident(ident)
        return found if isinstance(found, Table) else None

    def type_by_ident(self, ident: int) -> UserType | None:
        name = self._type_names.get(ident)
        return self.types.get(name) if name is not None else None

    def find_type(self, name: QualifiedName) -> int | None:
        found = self.types.get(self.resolve(name))
        return found.ident if found else None

    def relation_exists(self, name: QualifiedName) -> bool | _Unknown:
        if name in self.doubts.relations:
            return UNKNOWN
        if name in self.relations:
            return True
        return False if self.absent_known else UNKNOWN

    def tables(self) -> Iterator[Table]:
        return (r for r in self.relations.values() if isinstance(r, Table))

    def indexes_of(self, table: int) -> list[Index]:
        return [r for r in self.relations.values() if isinstance(r, Index) and r.table == table]

    def foreign_keys_into(self, table: int) -> list[tuple[Table, Constraint]]:
        """FOREIGN KEYs of other tables (and of itself) that reference ``table``."""
        return [
            (t, c)
            for t in self.tables()
            for c in t.constraints
            if c.contype == "f" and c.ref_table == table
        ]

    # -------------------------------------------------------------------- changing

    def touch(self, thing: object) -> None:
        if self.dirty is not None:
            self.dirty.add(thing)

    def put_relation(self, relation: Relation, *, old_name: QualifiedName | None = None) -> None:
        """Adds or replaces a relation (moving it when it was renamed from ``old_name``)."""
        if old_name is not None and old_name != relation.name:
            self.relations.pop(old_name, None)
            self.touch(("relation", old_name))
        self.relations[relation.name] = relation
        self._relation_names[relation.ident] = relation.name
        self.touch(("relation", relation.name))
        self.touch(("ident", relation.ident))

    def drop_relation(self, relation: Relation) -> None:
        self.relations.pop(relation.name, None)
        self._relation_names.pop(relation.ident, None)
        self.touch(("relation", relation.name))
        self.touch(("ident", relation.ident))

    def put_type(self, user_type: UserType, *, old_name: QualifiedName | None = None) -> None:
        if old_name is not None and old_name != user_type.name:
            self.types.pop(old_name, None)
            self.touch(("type", old_name))
        self.types[user_type.name] = user_type
        self._type_names[user_type.ident] = user_type.name
        self.touch(("type", user_type.name))

    def drop_type(self, user_type: UserType) -> None:
        self.types.pop(user_type.name, None)
        self._type_names.pop(user_type.ident, None)
        self.touch(("type", user_type.name))

    def update_table(self, table: Table, **changes) -> Table:
        updated = replace(table, **changes)
        self.put_relation(updated)
        return updated

    def placeholder_table(self, name: QualifiedName) -> Table:
        """A table a statement uses but the model does not have: it existed, nothing else
        about it is known."""
        self.doubts.relations.add(name)
        table = Table(new_identity(), name, complete=False)
        self.put_relation(table)
        return table
