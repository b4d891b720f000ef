"""How to undo one change, given the schema model before and after the statement that made
it (bot.sql.timeline) and the schema as the revert will have left it by then.

Names in the SQL are the ones the objects have right after the statement (the state the
revert is in when this step runs, since later statements are undone first); definitions
come from right before it. Every reverser returns an ``Undo``: the statements to run, or
why nothing runs, or why it cannot be undone.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass

from pglast import ast
from pglast.visitors import Visitor

from bot.sql.changes import Change, ChangeKind
from bot.sql.model_definitions import deparse_quoted, renamed
from bot.sql.names import QualifiedName, display_name, quote_identifier, quote_literal
from bot.sql.routines import function_key, function_sql, trigger_sql
from bot.sql.schema_model import (
    SOME_DEFAULT,
    TEMP_SCHEMA,
    UNKNOWN,
    Constraint,
    Index,
    OtherRelation,
    SchemaModel,
    Table,
)
from bot.sql.type_names import TypeRef

BACKUP_HINT = "; restore it from a backup (runbook option 3)"
UNSUPPORTED = "the bot does not know how to undo this statement"
IRREVERSIBLE = {
    ChangeKind.DROP_TABLE: "dropping a table destroyed its rows" + BACKUP_HINT,
    ChangeKind.DROP_COLUMN: "dropping a column destroyed its values" + BACKUP_HINT,
    ChangeKind.DROP_INDEX: "the index definition is gone and no earlier migration defines it;"
    " recreate it by hand",
    ChangeKind.DROP_CONSTRAINT: "the constraint definition is gone and no earlier migration"
    " defines it; recreate it by hand",
    ChangeKind.DROP_TYPE: "the type definition and any column of that type are gone" + BACKUP_HINT,
    ChangeKind.DROP_SCHEMA: "the schema and what it held are gone" + BACKUP_HINT,
    ChangeKind.DROP_EXTENSION: "dropping an extension drops the objects that used it" + BACKUP_HINT,
    ChangeKind.DROP_VIEW: "the view definition is gone and no earlier migration defines it;"
    " recreate it by hand",
    ChangeKind.DROP_SEQUENCE: "dropping a sequence lost its current value" + BACKUP_HINT,
    ChangeKind.DATA_CHANGE: "a data change cannot be undone from its SQL" + BACKUP_HINT,
    ChangeKind.DO_BLOCK: "procedural code is not reversed by the bot" + BACKUP_HINT,
}
NEEDS_DROPPED = "it needs a column or table this migration dropped"
ENUM_RESIDUE = (
    "PostgreSQL cannot remove a value from an enum (ALTER TYPE has no DROP VALUE): the value"
    " stays, unused by the schema; rows written with it keep it"
)


@dataclass(frozen=True)
class Undo:
    """``sql``: what to run (() with ``reversible``: nothing needs to run, ``note`` says
    why); ``residue``: what stays behind on purpose; ``drops``: (table, column) identities
    whose data the SQL drops (column None: the whole table)."""

    sql: tuple[str, ...] = ()
    reversible: bool = True
    note: str = ""
    residue: str | None = None
    drops: tuple[int, int | None] | None = None


def irreversible(reason: str) -> Undo:
    return Undo(reversible=False, note=reason)


@dataclass(frozen=True)
class Moment:
    """One change to undo: the statement's AST, the states around it, the state the
    migration started from and the one the revert has reached."""

    change: Change
    node: ast.Node
    before: SchemaModel
    after: SchemaModel
    start: SchemaModel
    now: SchemaModel


def undo(moment: Moment) -> Undo:
    if moment.change.kind == ChangeKind.OTHER and isinstance(moment.node, ast.IndexStmt):
        return _drop_unnamed_index(moment)
    reverser = _REVERSERS.get(moment.change.kind)
    if reverser is None:
        return irreversible(IRREVERSIBLE.get(moment.change.kind, UNSUPPORTED))
    return reverser(moment)


# ------------------------------------------------------------------ helpers


def _created_here(moment: Moment, ident: int) -> bool:
    """The migration itself created this relation (it was not there when it started)."""
    return moment.start.relation_by_ident(ident) is None


def _column_created_here(moment: Moment, table: Table, ident: int) -> bool:
    start_table = moment.start.table_by_ident(table.ident)
    return start_table is None or start_table.column_by_ident(ident) is None


def _gone_now(moment: Moment, name: QualifiedName) -> bool:
    return moment.now.relation_exists(name) is False


def _nothing(note: str) -> Undo:
    return Undo(note=note)


_ALREADY = "nothing to undo: it changed nothing (the object already was as it says)"
_GONE = "nothing to undo: a later statement of this migration removed it, and its undo is above"


def _alter_column(table: QualifiedName, column: str, action: str) -> str:
    return f"ALTER TABLE {table.sql()} ALTER COLUMN {quote_identifier(column)} {action}"


# ------------------------------------------------------------------ tables and columns


def _drop_created_table(moment: Moment) -> Undo:
    if moment.change.target.schema == TEMP_SCHEMA:
        return _nothing("a temporary table ends with the session that made it")
    table = moment.after.relation(moment.change.target)
    if table is None:
        return _nothing(_GONE)
    if moment.before.relation(table.name) is not None and (
        moment.before.relation(table.name).ident == table.ident
    ):
        return _nothing(_ALREADY)
    if _gone_now(moment, table.name):
        return _nothing(_GONE)
    if isinstance(table, OtherRelation):
        return Undo((f"DROP MATERIALIZED VIEW IF EXISTS {table.name.sql()}",))
    return Undo((f"DROP TABLE IF EXISTS {table.name.sql()}",), drops=(table.ident, None))


def _dropped_relation(moment: Moment) -> Table | Index | OtherRelation | None:
    return moment.before.relation(moment.change.target)


def _drop_table(moment: Moment) -> Undo:
    table = _dropped_relation(moment)
    if table is not None and _created_here(moment, table.ident):
        return _nothing("it was created earlier in this migration: its undo drops it anyway")
    if table is None and moment.before.relation_exists(moment.change.target) is False:
        return _nothing(_ALREADY)
    return irreversible(IRREVERSIBLE[ChangeKind.DROP_TABLE])


def _drop_added_column(moment: Moment) -> Undo:
    change = moment.change
    table = moment.after.table(change.target)
    column = table.column(change.name) if table else None
    if table is None or column is None:
        return _nothing(_GONE)
    previous = moment.before.table(change.target)
    if previous is not None and previous.column_by_ident(column.ident) is not None:
        return _nothing(_ALREADY)
    now = moment.now.table(table.name)
    if now is None or (now.complete and now.column(column.name) is None):
        return _nothing(_GONE)
    sql = f"ALTER TABLE {table.name.sql()} DROP COLUMN IF EXISTS {quote_identifier(column.name)}"
    return Undo((sql,), drops=(table.ident, column.ident))


def _drop_column(moment: Moment) -> Undo:
    change = moment.change
    table = moment.before.table(change.target)
    column = table.column(change.name) if table else None
    if (
        table is not None
        and column is not None
        and _column_created_here(moment, table, column.ident)
    ):
        return _nothing("it was added earlier in this migration: its undo drops it anyway")
    if table is not None and table.complete and column is None:
        return _nothing(_ALREADY)
    return irreversible(IRREVERSIBLE[ChangeKind.DROP_COLUMN])


def _column_before(moment: Moment):
    change = moment.change
    table = moment.before.table(change.target)
    return table.column(change.name) if table else None


def _unknown_before(change: Change, what: str) -> Undo:
    return irreversible(
        f"the previous {what} of {change.target.display()}.{change.name} is not known "
        "(no earlier migration defines it)"
    )


def _restore_type(moment: Moment) -> Undo:
    change = moment.change
    column = _column_before(moment)
    if column is None or not isinstance(column.type, TypeRef):
        return _unknown_before(change, "type")
    type_sql = _type_sql(moment.after, column.type)
    if type_sql is None:
        return _unknown_before(change, "type")
    name = quote_identifier(change.name)
    # PostgreSQL has no cast between two enums (or from an enum to most types): through
    # text, as Prisma's own enum migrations do (USING ("role"::text::"Role_new")).
    now = moment.now.table(change.target) or moment.after.table(change.target)
    current = now.column(change.name) if now else None
    through_text = _user_typed(column.type) or (current is not None and _user_typed(current.type))
    cast = f"{name}::text::{type_sql}" if through_text else f"{name}::{type_sql}"
    action = f"SET DATA TYPE {type_sql} USING {cast}"
    sql = [_alter_column(change.target, change.name, action)]
    # A default is converted with the column, and PostgreSQL cannot convert one between
    # two enums ("default ... cannot be cast automatically"): then it is dropped first.
    # Written again after, it is stored as it was ('{}'::jsonb, not '{}'::json).
    restorable = column.default is not UNKNOWN and column.default is not SOME_DEFAULT
    if through_text and restorable and current is not None and current.default is not None:
        sql.insert(0, _alter_column(change.target, change.name, "DROP DEFAULT"))
    if restorable and column.default is not None:
        sql.append(_alter_column(change.target, change.name, f"SET DEFAULT {column.default}"))
    return Undo(tuple(sql), note="fails if a value does not convert back")


def _user_typed(ref: object) -> bool:
    return not isinstance(ref, TypeRef) or ref.builtin is None


def _type_sql(state: SchemaModel, ref: TypeRef) -> str | None:
    """The type as SQL, named as it is in ``state`` (a user type may have been renamed)."""
    if ref.user is None:
        return ref.sql
    found = state.type_by_ident(ref.user)
    if found is None:
        return None
    if ref.written is not None and state.resolve(ref.written) == found.name:
        return ref.sql
    return found.name.sql() + ("[]" if ref.array else "")


def _restore_nullability(moment: Moment) -> Undo:
    change = moment.change
    column = _column_before(moment)
    if column is None or column.not_null is UNKNOWN:
        return _unknown_before(change, "nullability")
    if column.not_null == (change.kind == ChangeKind.SET_NOT_NULL):
        return _nothing("the column already was like this before")
    if column.not_null:
        sql = _alter_column(change.target, change.name, "SET NOT NULL")
        return Undo((sql,), note="fails if NULLs were written since")
    return Undo((_alter_column(change.target, change.name, "DROP NOT NULL"),))


def _restore_default(moment: Moment) -> Undo:
    change = moment.change
    column = _column_before(moment)
    if column is None or column.default is UNKNOWN:
        return _unknown_before(change, "default")
    default = column.default
    if default is SOME_DEFAULT:
        default = _serial_default(moment, change.target, column.ident)
        if default is None:
            return _unknown_before(change, "default")
    if default is None:
        return Undo((_alter_column(change.target, change.name, "DROP DEFAULT"),))
    return Undo((_alter_column(change.target, change.name, f"SET DEFAULT {default}"),))


def _serial_default(moment: Moment, table_name: QualifiedName, column: int) -> str | None:
    """A serial column's default: nextval() of the sequence it owns."""
    table = moment.before.table(table_name)
    for relation in moment.after.relations.values():
        if (
            isinstance(relation, OtherRelation)
            and table
            and relation.owner == (table.ident, column)
        ):
            return f"nextval({quote_literal(relation.name.sql())}::regclass)"
    return None


# ------------------------------------------------------------------ constraints, indexes


def _drop_added_constraint(moment: Moment) -> Undo:
    change = moment.change
    table = moment.after.table(change.target)
    if table is None:
        return _nothing(_GONE)
    added = _added_constraint(moment, table)
    if added is None:
        if change.name is None:
            return irreversible("the constraint has no name: PostgreSQL chose one")
        return _nothing(_ALREADY if table.constraint(change.name) else _GONE)
    if _gone_now(moment, table.name):
        return _nothing(_GONE)
    sql = [
        f"ALTER TABLE {table.name.sql()} DROP CONSTRAINT IF EXISTS {quote_identifier(added.name)}"
    ]
    sql += _restore_absorbed_index(moment, added)
    sql += _restore_implied_nullability(moment, table, added)
    return Undo(tuple(sql))


def _added_constraint(moment: Moment, table: Table) -> Constraint | None:
    previous = moment.before.table_by_ident(table.ident)
    old = {c.ident for c in previous.constraints} if previous else set()
    new = [c for c in table.constraints if c.ident not in old]
    if moment.change.name is not None:
        new = [c for c in new if c.name == moment.change.name]
    return new[0] if len(new) == 1 else None


def _restore_absorbed_index(moment: Moment, constraint: Constraint) -> list[str]:
    """ADD CONSTRAINT ... USING INDEX took over an index; dropping the constraint drops it,
    so it is created again as it was."""
    if constraint.index is None:
        return []
    index = moment.before.relation_by_ident(constraint.index)
    if not isinstance(index, Index):
        return []
    sql = index_sql(moment.after, index)
    return [sql] if sql else []


def _restore_implied_nullability(moment: Moment, table: Table, constraint: Constraint) -> list[str]:
    """A PRIMARY KEY made its columns NOT NULL; dropping it does not undo that."""
    if constraint.contype != "p":
        return []
    previous = moment.before.table_by_ident(table.ident)
    sql = []
    for column in table.columns:
        if column.ident not in constraint.columns or previous is None:
            continue
        old = previous.column_by_ident(column.ident)
        if old is not None and old.not_null is False:
            sql.append(_alter_column(table.name, column.name, "DROP NOT NULL"))
    return sql


def constraint_clause(state: SchemaModel, table: Table, constraint: Constraint) -> str | None:
    """``CONSTRAINT "x" FOREIGN KEY (...) REFERENCES "s"."t" (...)`` named as in ``state``."""
    definition = constraint.definition
    if definition is None:
        return None
    referenced = state.table_by_ident(constraint.ref_table) if constraint.ref_table else None
    node = renamed(definition, _names_of(state.table_by_ident(table.ident)), _names_of(referenced))
    if node is None or getattr(node, "indexname", None):
        return None
    node.conname = constraint.name
    if node.pktable is not None:
        if referenced is None:
            return None
        node.pktable.schemaname, node.pktable.relname = referenced.name.schema, referenced.name.name
    return deparse_quoted(node)


def _names_of(table: Table | None) -> Callable[[int], str | None]:
    def name(ident: int) -> str | None:
        column = table.column_by_ident(ident) if table is not None else None
        return column.name if column is not None else None

    return name


def index_sql(state: SchemaModel, index: Index) -> str | None:
    """The CREATE INDEX of ``index``, without CONCURRENTLY (a revert runs in one
    transaction), named and placed as ``index`` says, columns named as in ``state``."""
    table = state.table_by_ident(index.table)
    if index.definition is None or table is None:
        return None
    node = renamed(index.definition, _names_of(table))
    if node is None:
        return None
    node = copy.copy(node)
    node.concurrent = False
    node.if_not_exists = False
    node.idxname = index.name.name
    node.relation = ast.RangeVar(
        schemaname=table.name.schema, relname=table.name.name, inh=True, relpersistence="p"
    )
    return deparse_quoted(node)


def _recreate_index(moment: Moment) -> Undo:
    index = _dropped_relation(moment)
    if not isinstance(index, Index):
        if moment.before.relation_exists(moment.change.target) is False:
            return _nothing(_ALREADY)
        return irreversible(IRREVERSIBLE[ChangeKind.DROP_INDEX])
    if _created_here(moment, index.ident):
        return _nothing("it was created earlier in this migration: its undo drops it anyway")
    sql = index_sql(moment.after, index)
    if sql is None:
        if index.definition is not None:
            return irreversible(NEEDS_DROPPED)
        return irreversible(IRREVERSIBLE[ChangeKind.DROP_INDEX])
    note = "as the migration that created it defined it"
    if index.definition.node.concurrent:
        table = moment.after.table_by_ident(index.table)
        note += (
            "; built without CONCURRENTLY, since a revert runs in one transaction: writes to"
            f" {table.name.display()} wait while it builds (a SHARE lock)"
        )
    return Undo((sql,), note=note)


def _recreate_constraint(moment: Moment) -> Undo:
    change = moment.change
    table = moment.before.table(change.target)
    constraint = table.constraint(change.name) if table else None
    if table is None or constraint is None:
        if table is not None and table.complete:
            return _nothing(_ALREADY)
        return irreversible(IRREVERSIBLE[ChangeKind.DROP_CONSTRAINT])
    if moment.start.table_by_ident(table.ident) is None or not any(
        c.ident == constraint.ident for c in moment.start.table_by_ident(table.ident).constraints
    ):
        return _nothing("it was added earlier in this migration: its undo drops it anyway")
    sql = _constraint_sql(moment, table, constraint)
    if sql is None:
        if constraint.definition is not None:
            return irreversible(NEEDS_DROPPED)
        return irreversible(IRREVERSIBLE[ChangeKind.DROP_CONSTRAINT])
    return Undo(tuple(sql), note="as the migration that created it defined it")


def _constraint_sql(moment: Moment, table: Table, constraint: Constraint) -> list[str] | None:
    after_table = moment.after.table_by_ident(table.ident) or table
    index = moment.before.relation_by_ident(constraint.index) if constraint.index else None
    own_index = isinstance(index, Index) and index.definition is not None
    if not own_index or index.definition.node.isconstraint:
        clause = constraint_clause(moment.after, after_table, constraint)
        return [f"ALTER TABLE {after_table.name.sql()} ADD {clause}"] if clause else None
    # A key made from an index of its own (USING INDEX): that index first, then the key.
    if constraint.contype not in ("p", "u"):
        return None
    create = index_sql(moment.after, index)
    if create is None:
        return None
    kind = "PRIMARY KEY" if constraint.contype == "p" else "UNIQUE"
    name = quote_identifier(constraint.name)
    return [
        create,
        f"ALTER TABLE {after_table.name.sql()} ADD CONSTRAINT {name} {kind} USING INDEX {name}",
    ]


def _drop_created_index(moment: Moment) -> Undo:
    index = moment.after.relation(moment.change.target)
    if not isinstance(index, Index):
        return _nothing(_GONE)
    previous = moment.before.relation(index.name)
    if previous is not None and previous.ident == index.ident:
        return _nothing(_ALREADY)
    if _gone_now(moment, index.name):
        return _nothing(_GONE)
    return Undo((f"DROP INDEX IF EXISTS {index.name.sql()}",))


def _drop_unnamed_index(moment: Moment) -> Undo:
    """CREATE INDEX without a name: PostgreSQL chose one, which the model followed."""
    new = [
        r
        for r in moment.after.relations.values()
        if isinstance(r, Index) and moment.before.relation_by_ident(r.ident) is None
    ]
    if len(new) != 1:
        return irreversible("the index has no name: PostgreSQL chose one the bot cannot tell")
    return Undo((f"DROP INDEX IF EXISTS {new[0].name.sql()}",), note="the name PostgreSQL chose")


# ------------------------------------------------------------------ renames


def _rename_back(keyword: str) -> Callable[[Moment], Undo]:
    def reverse(moment: Moment) -> Undo:
        change = moment.change
        new = QualifiedName(change.target.schema, change.new_name)
        if keyword != "TYPE" and moment.after.relation(new) is None:
            return _nothing(_ALREADY)
        sql = f"ALTER {keyword} {new.sql()} RENAME TO {quote_identifier(change.target.name)}"
        return Undo((sql,))

    return reverse


def _rename_member_back(keyword: str) -> Callable[[Moment], Undo]:
    def reverse(moment: Moment) -> Undo:
        change = moment.change
        new, old = quote_identifier(change.new_name), quote_identifier(change.name)
        return Undo((f"ALTER TABLE {change.target.sql()} RENAME {keyword} {new} TO {old}",))

    return reverse


# ------------------------------------------------------------------ types, schemas, ...


def _drop_created_type(moment: Moment) -> Undo:
    found = moment.after.types.get(moment.change.target)
    previous = moment.before.types.get(moment.change.target)
    if found is not None and previous is not None and previous.ident == found.ident:
        return _nothing(_ALREADY)
    return Undo((f"DROP TYPE IF EXISTS {moment.change.target.sql()}",))


def _recreate_type(moment: Moment) -> Undo:
    found = moment.before.types.get(moment.change.target)
    if found is None:
        return irreversible(IRREVERSIBLE[ChangeKind.DROP_TYPE])
    if moment.start.type_by_ident(found.ident) is None:
        return _nothing("it was created earlier in this migration: its undo drops it anyway")
    used = any(
        getattr(c.type, "user", None) == found.ident
        for t in moment.before.tables()
        for c in t.columns
    )
    if found.kind != "e" or not found.values_complete or used:
        return irreversible(IRREVERSIBLE[ChangeKind.DROP_TYPE])
    labels = ", ".join(quote_literal(v) for v in found.values)
    return Undo(
        (f"CREATE TYPE {found.name.sql()} AS ENUM ({labels})",),
        note="no column used it any more, and every value is known",
    )


def _leave_enum_value(moment: Moment) -> Undo:
    change = moment.change
    found = moment.after.types.get(change.target)
    previous = moment.before.types.get(change.target)
    if previous is not None and change.name in previous.values:
        return _nothing(_ALREADY)
    if found is not None and moment.start.type_by_ident(found.ident) is None:
        return _nothing("the enum was created earlier in this migration: its undo drops it")
    return Undo(
        residue=f"value '{change.name}' of enum {change.target.display()}", note=ENUM_RESIDUE
    )


def _rename_enum_value_back(moment: Moment) -> Undo:
    change = moment.change
    new, old = quote_literal(change.new_name), quote_literal(change.name)
    return Undo((f"ALTER TYPE {change.target.sql()} RENAME VALUE {new} TO {old}",))


def _drop_unqualified(keyword: str, kind: str) -> Callable[[Moment], Undo]:
    def reverse(moment: Moment) -> Undo:
        name = moment.change.target.name
        existed = name in (moment.before.schemas if kind == "schema" else moment.before.extensions)
        if existed:
            return _nothing(_ALREADY)
        return Undo((f"DROP {keyword} IF EXISTS {quote_identifier(name)}",))

    return reverse


def _drop_created_view(moment: Moment) -> Undo:
    view = moment.after.relation(moment.change.target)
    previous = moment.before.relation(moment.change.target)
    if view is None:
        return _nothing(_GONE)
    keyword = "MATERIALIZED VIEW" if getattr(view, "kind", "v") == "m" else "VIEW"
    drop = f"DROP {keyword} IF EXISTS {view.name.sql()}"
    if not (isinstance(previous, OtherRelation) and previous.ident == view.ident):
        return Undo((drop,))
    # CREATE OR REPLACE replaced a view: dropped and created again as it was (replacing
    # back fails when the new one has more columns: "cannot drop columns from view").
    create, why_not = _view_sql(previous)
    if create is None:
        return irreversible(why_not)
    return Undo((drop, create), note="fails if another view reads it")


def _view_sql(view: OtherRelation) -> tuple[str | None, str]:
    """The CREATE VIEW of ``view``, or why the bot cannot write it."""
    if view.definition is None or not isinstance(view.definition.node, ast.ViewStmt):
        return None, IRREVERSIBLE[ChangeKind.DROP_VIEW]
    node = copy.copy(view.definition.node)
    if _reads_star(node.query):
        return None, (
            "the view selects *, which PostgreSQL expanded into the columns its tables had"
            " when the view was made; created again now, it would read other columns: recreate"
            " it by hand"
        )
    node.replace = False
    node.view = ast.RangeVar(
        schemaname=view.name.schema, relname=view.name.name, inh=True, relpersistence="p"
    )
    return deparse_quoted(node), ""


class _Stars(Visitor):
    def __init__(self) -> None:
        super().__init__()
        self.found = False

    def visit_A_Star(self, ancestors, node) -> None:
        self.found = True


def _reads_star(query: ast.Node) -> bool:
    stars = _Stars()
    stars(query)
    return stars.found


def _recreate_view(moment: Moment) -> Undo:
    view = _dropped_relation(moment)
    if view is None:
        if moment.before.relation_exists(moment.change.target) is False:
            return _nothing(_ALREADY)
        return irreversible(IRREVERSIBLE[ChangeKind.DROP_VIEW])
    if _created_here(moment, view.ident):
        return _nothing("it was created earlier in this migration: its undo drops it anyway")
    if not isinstance(view, OtherRelation):
        return irreversible(IRREVERSIBLE[ChangeKind.DROP_VIEW])
    sql, why_not = _view_sql(view)
    if sql is None:
        return irreversible(why_not)
    return Undo((sql,), note="as the migration that created it defined it")


def _drop_created_sequence(moment: Moment) -> Undo:
    sequence = moment.after.relation(moment.change.target)
    previous = moment.before.relation(moment.change.target)
    if sequence is None:
        return _nothing(_GONE)
    if previous is not None and previous.ident == sequence.ident:
        return _nothing(_ALREADY)
    return Undo((f"DROP SEQUENCE IF EXISTS {sequence.name.sql()}",))


def _drop_sequence(moment: Moment) -> Undo:
    sequence = _dropped_relation(moment)
    if sequence is not None and _created_here(moment, sequence.ident):
        return _nothing("it was created earlier in this migration: its undo drops it anyway")
    return irreversible(IRREVERSIBLE[ChangeKind.DROP_SEQUENCE])


# ------------------------------------------------------------------ data


def _data_change(moment: Moment) -> Undo:
    """A data change the revert erases anyway: rows of a table, or values of columns, that
    this migration created and whose undo drops them."""
    change = moment.change
    if change.target.schema == TEMP_SCHEMA:
        return _nothing("the rows of a temporary table end with the session that wrote them")
    table = moment.after.table(change.target) if change.target.schema else None
    if table is None:
        return irreversible(IRREVERSIBLE[ChangeKind.DATA_CHANGE])
    if _created_here(moment, table.ident):
        what = f"table {table.name.display()} was created by this migration: its undo drops it"
        return _nothing(f"nothing to undo: {what}")
    columns = _updated_columns(moment.node)
    if columns and all(
        (found := table.column(name)) is not None
        and _column_created_here(moment, table, found.ident)
        for name in columns
    ):
        names = ", ".join(display_name(n) for n in columns)
        return _nothing(
            f"nothing to undo: it only wrote {names}, which this migration added and its undo drops"
        )
    return irreversible(IRREVERSIBLE[ChangeKind.DATA_CHANGE])


def _updated_columns(node: ast.Node) -> list[str]:
    if not isinstance(node, ast.UpdateStmt) or node.fromClause or node.withClause:
        return []
    return [target.name for target in node.targetList or () if target.name]


# ------------------------------------------------------------------ routines


def _function_key(moment: Moment, state: SchemaModel) -> tuple | None:
    return function_key(state, moment.change.target, moment.change.name)


def _undo_create_function(moment: Moment) -> Undo:
    key = _function_key(moment, moment.after)
    if key is None:
        return irreversible(UNSUPPORTED)
    previous = moment.before.functions.get(key)
    if previous is None:
        kind = "PROCEDURE" if moment.after.functions[key].is_procedure else "FUNCTION"
        return Undo((f"DROP {kind} IF EXISTS {key[0].sql()}({key[1]})",))
    if previous is moment.after.functions.get(key):
        return _nothing(_ALREADY)
    return Undo(
        (function_sql(previous, key[0], replace=True),),
        note="the definition it replaced, as the migration that created it defined it",
    )


def _undo_drop_function(moment: Moment) -> Undo:
    key = _function_key(moment, moment.before)
    previous = moment.before.functions.get(key) if key else None
    if previous is None:
        if moment.before.absent_known and moment.change.name is not None:
            return _nothing(_ALREADY)
        return irreversible("the function definition is gone and no earlier migration defines it")
    if moment.start.functions.get(key) is not previous:
        return _nothing("it was created earlier in this migration: its undo drops it anyway")
    return Undo(
        (function_sql(previous, key[0], replace=False),),
        note="as the migration that created it defined it",
    )


def _undo_create_trigger(moment: Moment) -> Undo:
    table = moment.after.table(moment.change.target)
    key = (table.ident, moment.change.name) if table else None
    if key is None or key not in moment.after.triggers:
        return _nothing(_GONE)
    previous = moment.before.triggers.get(key)
    drop = f"DROP TRIGGER IF EXISTS {quote_identifier(key[1])} ON {table.name.sql()}"
    if previous is None:
        return Undo((drop,))
    return Undo((drop, trigger_sql(previous, table.name)), note="the trigger it replaced")


def _undo_drop_trigger(moment: Moment) -> Undo:
    table = moment.before.table(moment.change.target)
    key = (table.ident, moment.change.name) if table else None
    previous = moment.before.triggers.get(key) if key else None
    if previous is None:
        return irreversible("the trigger definition is gone and no earlier migration defines it")
    if moment.start.triggers.get(key) is not previous:
        return _nothing("it was created earlier in this migration: its undo drops it anyway")
    after_table = moment.after.table_by_ident(table.ident) or table
    return Undo((trigger_sql(previous, after_table.name),), note="as the migration defined it")


def _leave_comment(moment: Moment) -> Undo:
    return Undo(
        residue="the comment",
        note="the bot does not keep comments: it stays, and changes nothing but the text"
        " describing the object",
    )


_REVERSERS: dict[ChangeKind, Callable[[Moment], Undo]] = {
    ChangeKind.CREATE_TABLE: _drop_created_table,
    ChangeKind.DROP_TABLE: _drop_table,
    ChangeKind.CREATE_INDEX: _drop_created_index,
    ChangeKind.DROP_INDEX: _recreate_index,
    ChangeKind.CREATE_TYPE: _drop_created_type,
    ChangeKind.DROP_TYPE: _recreate_type,
    ChangeKind.RENAME_TABLE: _rename_back("TABLE"),
    ChangeKind.RENAME_INDEX: _rename_back("INDEX"),
    ChangeKind.RENAME_TYPE: _rename_back("TYPE"),
    ChangeKind.RENAME_COLUMN: _rename_member_back("COLUMN"),
    ChangeKind.RENAME_CONSTRAINT: _rename_member_back("CONSTRAINT"),
    ChangeKind.ADD_COLUMN: _drop_added_column,
    ChangeKind.DROP_COLUMN: _drop_column,
    ChangeKind.ADD_CONSTRAINT: _drop_added_constraint,
    ChangeKind.DROP_CONSTRAINT: _recreate_constraint,
    ChangeKind.ALTER_COLUMN_TYPE: _restore_type,
    ChangeKind.SET_NOT_NULL: _restore_nullability,
    ChangeKind.DROP_NOT_NULL: _restore_nullability,
    ChangeKind.SET_DEFAULT: _restore_default,
    ChangeKind.DROP_DEFAULT: _restore_default,
    ChangeKind.ADD_ENUM_VALUE: _leave_enum_value,
    ChangeKind.RENAME_ENUM_VALUE: _rename_enum_value_back,
    ChangeKind.CREATE_SCHEMA: _drop_unqualified("SCHEMA", "schema"),
    ChangeKind.CREATE_EXTENSION: _drop_unqualified("EXTENSION", "extension"),
    ChangeKind.CREATE_VIEW: _drop_created_view,
    ChangeKind.DROP_VIEW: _recreate_view,
    ChangeKind.CREATE_SEQUENCE: _drop_created_sequence,
    ChangeKind.DROP_SEQUENCE: _drop_sequence,
    ChangeKind.DATA_CHANGE: _data_change,
    ChangeKind.CREATE_FUNCTION: _undo_create_function,
    ChangeKind.DROP_FUNCTION: _undo_drop_function,
    ChangeKind.CREATE_TRIGGER: _undo_create_trigger,
    ChangeKind.DROP_TRIGGER: _undo_drop_trigger,
    ChangeKind.COMMENT: _leave_comment,
}
