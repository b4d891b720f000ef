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

States are copied on write: objects are frozen and the maps persistent, so a migration's
replay keeps the state after every statement at no cost.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from dataclasses import dataclass, field

from immutables import Map

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
# Where the model keeps temporary tables: they end with the session that made them, so
# nothing about them is ever read from, or undone in, the live catalog.
TEMP_SCHEMA = "pg_temp"


def changed(thing, **changes):
    """``dataclasses.replace`` for the model's frozen, slotted objects, without running
    ``__init__`` again (the replay makes tens of thousands of them)."""
    new = object.__new__(type(thing))
    for name in type(thing).__slots__:
        object.__setattr__(new, name, changes[name] if name in changes else getattr(thing, name))
    return new


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
    UNKNOWN.

    The maps are persistent (immutables.Map, a hash array mapped trie): ``copy()`` costs
    nothing and a change costs O(log n), so a migration of thousands of statements keeps
    every intermediate state without copying the schema each time. The indexes answer what
    DROP ... CASCADE, DROP COLUMN and renames ask without scanning every table.
    """

    def __init__(self, default_schema: str, *, absent_known: bool):
        self.default_schema = default_schema
        self.absent_known = absent_known
        self.relations: Map = Map()  # QualifiedName -> Table | Index | OtherRelation
        self.types: Map = Map()  # QualifiedName -> UserType
        self.schemas: frozenset[str] = frozenset({default_schema, "public"})
        self.extensions: frozenset[str] = frozenset()
        self.doubts = Doubts()
        self._relation_names: Map = Map()  # identity -> QualifiedName
        self._type_names: Map = Map()
        self._indexes: Map = Map()  # table identity -> frozenset of index identities
        self._foreign_keys: Map = Map()  # referenced table -> {(owner, constraint)}
        self._sequences: Map = Map()  # table identity -> identities of sequences it owns
        self.functions: Map = Map()  # (name, argument types) -> CreateFunctionStmt
        self.triggers: Map = Map()  # (table identity, name) -> CreateTrigStmt
        self.dirty: set[object] | None = None  # what the current statement touched

    # --------------------------------------------------------------------- copying

    def copy(self) -> SchemaModel:
        other = SchemaModel.__new__(SchemaModel)
        other.__dict__.update(self.__dict__)
        other.dirty = None
        return other

    def fork(self) -> SchemaModel:
        """A copy with its own doubts: a new replay starting from this state."""
        other = self.copy()
        other.doubts = self.doubts.copy()
        return other

    # ------------------------------------------------------------------- questions

    def resolve(self, name: QualifiedName) -> QualifiedName:
        # A temporary table hides a table of the same name for the session (pg_temp comes
        # first in the search_path: docs, "The Schema Search Path").
        if name.schema is None and QualifiedName(TEMP_SCHEMA, name.name) in self.relations:
            return QualifiedName(TEMP_SCHEMA, name.name)
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
        found = (self.relation_by_ident(i) for i in self._indexes.get(table, ()))
        return [index for index in found if isinstance(index, Index)]

    def foreign_keys_into(self, table: int) -> list[tuple[Table, Constraint]]:
        """FOREIGN KEYs of other tables (and of itself) that reference ``table``."""
        found = []
        for owner_ident, constraint_ident in self._foreign_keys.get(table, ()):
            owner = self.table_by_ident(owner_ident)
            for constraint in owner.constraints if owner else ():
                if constraint.ident == constraint_ident:
                    found.append((owner, constraint))
        return found

    def sequences_of(self, table: int) -> list[OtherRelation]:
        found = (self.relation_by_ident(i) for i in self._sequences.get(table, ()))
        return [sequence for sequence in found if isinstance(sequence, OtherRelation)]

    # -------------------------------------------------------------------- changing

    def touch(self, thing: object) -> None:
        if self.dirty is not None:
            self.dirty.add(thing)

    def put_relation(self, relation: Relation, *, old_name: QualifiedName | None = None) -> None:
        """Adds or replaces a relation (moving it when it was renamed from ``old_name``)."""
        known_as = self._relation_names.get(relation.ident)
        previous = self.relations.get(known_as) if known_as is not None else None
        if old_name is not None and old_name != relation.name:
            self.relations = self.relations.delete(old_name)
            self.touch(("relation", old_name))
        self.relations = self.relations.set(relation.name, relation)
        if known_as != relation.name:
            self._relation_names = self._relation_names.set(relation.ident, relation.name)
        if type(relation) is Table and type(previous) is Table:
            if previous.constraints is not relation.constraints:
                self._index_foreign_keys(previous, relation)
        else:
            self._index(previous, relation)
        if self.dirty is not None:
            self.dirty.add(("relation", relation.name))
            self.dirty.add(("ident", relation.ident))

    def drop_relation(self, relation: Relation) -> None:
        if relation.name in self.relations:
            self.relations = self.relations.delete(relation.name)
        if relation.ident in self._relation_names:
            self._relation_names = self._relation_names.delete(relation.ident)
        self._index(relation, None)
        self.touch(("relation", relation.name))
        self.touch(("ident", relation.ident))

    def _index(self, old: Relation | None, new: Relation | None) -> None:
        if isinstance(old, Index) or isinstance(new, Index):
            table = (new or old).table
            self._indexes = _moved(self._indexes, table, old and old.ident, new and new.ident)
        if (
            isinstance(old, OtherRelation)
            and old.owner
            or isinstance(new, OtherRelation)
            and new.owner
        ):
            owner = (new.owner if isinstance(new, OtherRelation) and new.owner else old.owner)[0]
            self._sequences = _moved(self._sequences, owner, old and old.ident, new and new.ident)
        if isinstance(old, Table) or isinstance(new, Table):
            self._index_foreign_keys(old, new)

    def _index_foreign_keys(self, old: Table | None, new: Table | None) -> None:
        if old is not None and new is not None and old.constraints is new.constraints:
            return  # a change to columns only
        before = {
            (c.ref_table, c.ident) for c in (old.constraints if old else ()) if c.contype == "f"
        }
        after = {
            (c.ref_table, c.ident) for c in (new.constraints if new else ()) if c.contype == "f"
        }
        owner = (new or old).ident
        for referenced, constraint in before - after:
            if referenced is not None:
                self._foreign_keys = _moved(
                    self._foreign_keys, referenced, (owner, constraint), None
                )
        for referenced, constraint in after - before:
            if referenced is not None:
                self._foreign_keys = _moved(
                    self._foreign_keys, referenced, None, (owner, constraint)
                )

    def put_type(self, user_type: UserType, *, old_name: QualifiedName | None = None) -> None:
        if old_name is not None and old_name != user_type.name:
            self.types = self.types.delete(old_name)
            self.touch(("type", old_name))
        self.types = self.types.set(user_type.name, user_type)
        self._type_names = self._type_names.set(user_type.ident, user_type.name)
        self.touch(("type", user_type.name))

    def drop_type(self, user_type: UserType) -> None:
        if user_type.name in self.types:
            self.types = self.types.delete(user_type.name)
        if user_type.ident in self._type_names:
            self._type_names = self._type_names.delete(user_type.ident)
        self.touch(("type", user_type.name))

    def put_function(self, key: tuple, node) -> None:
        self.functions = self.functions.set(key, node)
        self.touch(("function", key))

    def drop_function(self, key: tuple) -> None:
        self.functions = self.functions.delete(key)
        self.touch(("function", key))

    def put_trigger(self, key: tuple, node) -> None:
        self.triggers = self.triggers.set(key, node)
        self.touch(("trigger", key))

    def drop_trigger(self, key: tuple) -> None:
        self.triggers = self.triggers.delete(key)
        self.touch(("trigger", key))

    def add_schema(self, name: str) -> None:
        self.schemas = self.schemas | {name}
        self.touch(("schema", name))

    def drop_schema(self, name: str) -> None:
        self.schemas = self.schemas - {name}
        self.touch(("schema", name))

    def add_extension(self, name: str) -> None:
        self.extensions = self.extensions | {name}
        self.touch(("extension", name))

    def drop_extension(self, name: str) -> None:
        self.extensions = self.extensions - {name}
        self.touch(("extension", name))

    def update_table(self, table: Table, **changes) -> Table:
        updated = changed(table, **changes)
        self.put_relation(updated)
        return updated

    def placeholder_table(self, name: QualifiedName) -> Table:
        """A table a statement uses but the model does not have: it existed, nothing else
        about it is known."""
        self.doubts.relations.add(name)
        table = Table(new_identity(), name, complete=False)
        self.put_relation(table)
        return table


def _moved(index: Map, key: int, old: object, new: object) -> Map:
    """``index[key]`` (a frozenset) without ``old`` and with ``new``."""
    members = index.get(key, frozenset())
    if old is not None:
        members = members - {old}
    if new is not None:
        members = members | {new}
    return index.set(key, members) if members else (index.delete(key) if key in index else index)
