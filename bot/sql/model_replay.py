"""Replaying statements on the schema model (bot.sql.schema_model).

``apply_statement`` changes a model the way PostgreSQL would change the schema, one change
per effect in the order bot.sql.changes lists them, and says what each change touched (the
timeline turns that into what the live catalog can show). Two modes:
- lenient (history and migrations that ran): a statement that uses an object the model
  does not know is taken as proof the object existed, and the model records its doubt;
- strict (checking the bot's own reverse SQL): a statement that would fail raises
  ReplayError, so a generated reverse that cannot run is caught before anyone runs it.
"""

from __future__ import annotations

from pglast import ast
from pglast.enums import ObjectType

from bot.sql.do_blocks import read_do_block
from bot.sql.model_constraints import column_refs
from bot.sql.model_definitions import Definition
from bot.sql.model_tables import ReplayError, TableReplay, is_cascade
from bot.sql.names import QualifiedName, from_name_list, from_range_var
from bot.sql.object_names import column_names_part, make_object_name
from bot.sql.routines import (
    apply_create_function,
    apply_create_trigger,
    apply_drop_routine,
    apply_drop_trigger,
)
from bot.sql.schema_model import (
    TEMP_SCHEMA,
    Index,
    OtherRelation,
    SchemaModel,
    Table,
    UserType,
    changed,
    new_identity,
)

__all__ = ["ReplayError", "apply_script_statements", "apply_statement", "taint_everything"]

Touched = set  # markers: ("relation", name), ("type", name), ("ident", n), ...

_VIEW_KINDS = {
    ObjectType.OBJECT_VIEW: "v",
    ObjectType.OBJECT_MATVIEW: "m",
    ObjectType.OBJECT_SEQUENCE: "S",
}


def apply_statement(
    model: SchemaModel,
    node: ast.Node,
    *,
    strict: bool = False,
    violations: list[str] | None = None,
) -> list[Touched]:
    """Applies one statement; returns, per change, what it touched. ``violations``
    (lenient mode) receives why the statement would have failed on the modelled schema."""
    replay = _Replay(model, strict)
    try:
        replay.apply(node)
    finally:
        model.dirty = None
    if violations is not None:
        violations.extend(replay.tables.violations)
    return replay.changes


def apply_script_statements(model: SchemaModel, nodes) -> None:
    """Applies statements that ran, without recording what they touched (the history)."""
    replay = _Replay(model, strict=False)
    for node in nodes:
        replay.apply(node)
    model.dirty = None


class _Replay:
    def __init__(self, model: SchemaModel, strict: bool):
        self.model = model
        self.strict = strict
        self.tables = TableReplay(model, strict)
        self.changes: list[Touched] = []
        self.violated = self.tables.violated

    def begin_change(self) -> None:
        touched: Touched = set()
        self.changes.append(touched)
        self.model.dirty = touched

    def apply(self, node: ast.Node) -> None:
        if isinstance(node, ast.TransactionStmt | ast.VariableSetStmt):
            return
        if isinstance(node, ast.AlterTableStmt):
            self.tables.alter_table(node, self.begin_change)
            return
        if isinstance(node, ast.DropStmt):
            self._drop(node)
            return
        self.begin_change()
        handler = _HANDLERS.get(type(node))
        if handler is not None:
            handler(self, node)

    # ------------------------------------------------------------------ creates

    def _create_table(self, node: ast.CreateStmt) -> None:
        self.tables.create_table(node)

    def _create_table_as(self, node: ast.CreateTableAsStmt) -> None:
        name = self.model.resolve(from_range_var(node.into.rel))
        if node.into.rel.relpersistence == "t":  # CREATE TEMP TABLE ... AS
            name = QualifiedName(TEMP_SCHEMA, name.name)
        if self._exists_already(name, node.if_not_exists):
            return
        if node.objtype == ObjectType.OBJECT_TABLE:
            self.model.put_relation(Table(new_identity(), name, complete=False))
        else:
            self.model.put_relation(OtherRelation(new_identity(), name, "m"))

    def _exists_already(self, name: QualifiedName, if_not_exists: bool) -> bool:
        existing = self.model.relation(name)
        if existing is None:
            return False
        if if_not_exists:
            return True
        self.violated(f"relation {name.display()} already exists")
        self.tables.drop_relation_cascade(existing)
        return False

    def _create_index(self, node: ast.IndexStmt) -> None:
        table = self.tables.table_named(node.relation)
        if table is None:
            return
        name = node.idxname or self._index_name(table, node)
        if name is None:
            self.model.update_table(table, complete=False)
            return
        index_name = QualifiedName(table.name.schema, name)
        if self._exists_already(index_name, node.if_not_exists):
            return
        columns: dict[str, int] = {}
        for column in _index_columns(node):
            table, found = self.tables.column_of(self.tables.current(table), column)
            columns[column] = found.ident
        definition = Definition(node, columns)
        index = Index(
            new_identity(), index_name, table.ident, definition, frozenset(columns.values())
        )
        self.model.put_relation(index)

    def _index_name(self, table: Table, node: ast.IndexStmt) -> str | None:
        # ChooseIndexName: <table>_<columns>_idx ("expr" for an expression).
        parts = [e.name if e.name is not None else "expr" for e in node.indexParams or ()]
        name = make_object_name(table.name.name, column_names_part(parts), "idx")
        if self.model.relation(QualifiedName(table.name.schema, name)) is not None:
            return None
        return name

    def _create_type(self, node: ast.Node) -> None:
        if isinstance(node, ast.CreateEnumStmt):
            name, kind = from_name_list(node.typeName), "e"
            values = tuple(v.sval for v in node.vals or ())
        elif isinstance(node, ast.CompositeTypeStmt):
            name, kind, values = from_range_var(node.typevar), "c", ()
        else:
            name, kind, values = from_name_list(node.domainname), "d", ()
        name = self.model.resolve(name)
        existing = self.model.types.get(name)
        if existing is not None:
            self.violated(f"type {name.display()} already exists")
            self.model.drop_type(existing)
        self.model.put_type(UserType(new_identity(), name, kind, values))

    def _alter_enum(self, node: ast.AlterEnumStmt) -> None:
        name = self.model.resolve(from_name_list(node.typeName))
        enum = self.model.types.get(name)
        if enum is None:
            if self.model.absent_known and name not in self.model.doubts.types:
                self.violated(f"type {name.display()} does not exist")
            self.model.doubts.types.add(name)
            enum = UserType(new_identity(), name, "e", (), values_complete=False)
        if node.oldVal is not None:  # RENAME VALUE
            values = tuple(node.newVal if v == node.oldVal else v for v in enum.values)
            self.model.put_type(changed(enum, values=values))
            return
        if node.newVal in enum.values:
            if not node.skipIfNewValExists:
                self.violated(f"enum label {node.newVal} already exists")
            self.model.put_type(enum)
            return
        self.model.put_type(changed(enum, values=_with_label(enum.values, node)))
        self.model.doubts.enum_values.discard((enum.ident, node.newVal))

    def _create_schema(self, node: ast.CreateSchemaStmt) -> None:
        name = node.schemaname or node.authrole.rolename
        if name in self.model.schemas and not node.if_not_exists:
            self.violated(f"schema {name} already exists")
        self.model.add_schema(name)
        for element in node.schemaElts or ():
            self.apply(element)

    def _create_extension(self, node: ast.CreateExtensionStmt) -> None:
        self.model.add_extension(node.extname)

    def _create_sequence(self, node: ast.CreateSeqStmt) -> None:
        name = self.model.resolve(from_range_var(node.sequence))
        if not self._exists_already(name, node.if_not_exists):
            self.model.put_relation(OtherRelation(new_identity(), name, "S"))

    def _create_view(self, node: ast.ViewStmt) -> None:
        name = self.model.resolve(from_range_var(node.view))
        existing = self.model.relation(name)
        definition = Definition(node)
        if existing is not None and node.replace and isinstance(existing, OtherRelation):
            self.model.put_relation(changed(existing, definition=definition))
            return
        if not self._exists_already(name, False):
            self.model.put_relation(OtherRelation(new_identity(), name, "v", definition=definition))

    def _do_block(self, node: ast.DoStmt) -> None:
        block = read_do_block(node)
        if block.unreadable or block.dynamic:
            taint_everything(self.model, self.tables)
        for statement in block.statements:
            if statement.node is None or isinstance(statement.node, ast.DoStmt):
                continue
            if statement.conditional:
                self._taint_what(statement.node)
            else:
                self._apply_inside(statement.node)

    def _apply_inside(self, node: ast.Node) -> None:
        saved = self.model.dirty
        inner = _Replay(self.model, self.strict)
        inner.begin_change = lambda: setattr(self.model, "dirty", saved)  # one change
        self.model.dirty = saved
        inner.apply(node)
        self.model.dirty = saved

    def _taint_what(self, node: ast.Node) -> None:
        """A statement that may or may not have run: what it would touch becomes unknown."""
        scratch = self.model.copy()
        try:
            for touched in apply_statement(scratch, node):
                for kind, *rest in touched:
                    self._doubt(kind, rest[0])
        except ReplayError:
            taint_everything(self.model, self.tables)

    def _doubt(self, kind: str, what) -> None:
        if kind == "relation":
            self.model.doubts.relations.add(what)
            table = self.model.table(what)
            if table is not None:
                self.tables.taint_table(table)
        elif kind == "type":
            self.model.doubts.types.add(what)
            existing = self.model.types.get(what)
            if existing is not None:
                self.model.put_type(changed(existing, values_complete=False))
        self.model.touch((kind, what))

    # ------------------------------------------------------------------ renames

    def _rename(self, node: ast.RenameStmt) -> None:
        kind = node.renameType
        if kind == ObjectType.OBJECT_COLUMN:
            self._rename_column(node)
        elif kind == ObjectType.OBJECT_TABCONSTRAINT:
            self._rename_constraint(node)
        elif kind in (ObjectType.OBJECT_TYPE, ObjectType.OBJECT_DOMAIN):
            self._rename_type(node)
        elif kind == ObjectType.OBJECT_SCHEMA:
            _rename_schema(self.model, node.subname, node.newname)
        elif node.relation is not None and kind in _RELATION_RENAMES:
            self._rename_relation(node)

    def _rename_relation(self, node: ast.RenameStmt) -> None:
        old = self.model.resolve(from_range_var(node.relation))
        relation = self.model.relation(old)
        new = QualifiedName(old.schema, node.newname)
        if relation is None:
            if node.missing_ok:
                return
            if self.model.relation_exists(old) is False:
                self.violated(f"relation {old.display()} does not exist")
            self.model.doubts.relations.update({old, new})
            return
        if self.model.relation(new) is not None:
            self.violated(f"relation {new.display()} already exists")
        self.model.put_relation(changed(relation, name=new), old_name=old)
        if isinstance(relation, Index) and relation.constraint is not None:
            self._rename_owning_constraint(relation, node.newname)
        if isinstance(relation, Table):
            _touch_dependents(self.model, relation.ident)

    def _rename_owning_constraint(self, index: Index, new_name: str) -> None:
        table = self.model.table_by_ident(index.table)
        if table is None:
            return
        constraints = tuple(
            changed(c, name=new_name) if c.ident == index.constraint else c
            for c in table.constraints
        )
        self.model.update_table(table, constraints=constraints)

    def _rename_column(self, node: ast.RenameStmt) -> None:
        table = self.tables.table_named(node.relation, missing_ok=bool(node.missing_ok))
        if table is None:
            return
        table, column = self.tables.column_of(table, node.subname)
        if table.column(node.newname) is not None:
            self.violated(f"column {node.newname} already exists")
        columns = tuple(
            changed(c, name=node.newname) if c.ident == column.ident else c for c in table.columns
        )
        self.model.update_table(table, columns=columns)
        _touch_dependents(self.model, table.ident)

    def _rename_constraint(self, node: ast.RenameStmt) -> None:
        table = self.tables.table_named(node.relation, missing_ok=bool(node.missing_ok))
        if table is None:
            return
        constraint = table.constraint(node.subname)
        if constraint is None:
            if table.complete:
                self.violated(f"constraint {node.subname} does not exist")
            self.model.doubts.constraints.update(
                {(table.ident, node.subname), (table.ident, node.newname)}
            )
            return
        constraints = tuple(
            changed(c, name=node.newname) if c.ident == constraint.ident else c
            for c in table.constraints
        )
        self.model.update_table(table, constraints=constraints)
        if constraint.index is not None:  # its index is renamed with it
            index = self.model.relation_by_ident(constraint.index)
            if index is not None:
                new = QualifiedName(index.name.schema, node.newname)
                self.model.put_relation(changed(index, name=new), old_name=index.name)

    def _rename_type(self, node: ast.RenameStmt) -> None:
        old = self.model.resolve(from_name_list(node.object))
        found = self.model.types.get(old)
        new = QualifiedName(old.schema, node.newname)
        if found is None:
            if self.model.absent_known and old not in self.model.doubts.types:
                self.violated(f"type {old.display()} does not exist")
            self.model.doubts.types.update({old, new})
            return
        self.model.put_type(changed(found, name=new), old_name=old)
        for table in list(self.model.tables()):
            if any(getattr(c.type, "user", None) == found.ident for c in table.columns):
                self.model.touch(("relation", table.name))

    # ------------------------------------------------------------------ drops

    def _create_function(self, node: ast.CreateFunctionStmt) -> None:
        apply_create_function(self, node)

    def _create_trigger(self, node: ast.CreateTrigStmt) -> None:
        apply_create_trigger(self, node)

    def _drop_routine(self, obj, node: ast.DropStmt) -> None:
        apply_drop_routine(self, obj, node)

    def _drop_trigger(self, obj, node: ast.DropStmt) -> None:
        apply_drop_trigger(self, obj, node)

    def _drop(self, node: ast.DropStmt) -> None:
        kind = node.removeType
        if kind not in _DROP_HANDLERS:
            self.begin_change()  # functions, triggers, policies...: not in the model
            return
        for obj in node.objects:
            self.begin_change()
            _DROP_HANDLERS[kind](self, obj, node)

    def _missing(self, name: QualifiedName, node: ast.DropStmt, what: str) -> None:
        known_absent = self.model.relation_exists(name) is False
        if node.missing_ok and known_absent:
            return  # IF EXISTS on what is known to be absent: nothing happens
        if known_absent:
            self.violated(f"{what} {name.display()} does not exist")
        self.model.doubts.relations.add(name)

    def _drop_table(self, obj, node: ast.DropStmt) -> None:
        name = self.model.resolve(from_name_list(obj))
        relation = self.model.relation(name)
        if relation is None:
            self._missing(name, node, "table")
            return
        self.tables.drop_relation_cascade(relation)

    def _drop_index(self, obj, node: ast.DropStmt) -> None:
        name = self.model.resolve(from_name_list(obj))
        index = self.model.relation(name)
        if not isinstance(index, Index):
            self._missing(name, node, "index")
            return
        table = self.model.table_by_ident(index.table)
        if index.constraint is not None and table is not None:
            owner = next((c for c in table.constraints if c.ident == index.constraint), None)
            if owner is not None:
                self.violated(f"index {name.display()} belongs to constraint {owner.name}")
                self.tables.constraints.drop_constraint_named(table, owner.name, cascade=True)
                return
        self.model.drop_relation(index)
        if table is not None and is_cascade(node.behavior):
            self.tables.constraints.drop_foreign_keys(
                table.ident, lambda fk: fk.ref_columns == index.columns
            )

    def _drop_other_relation(self, obj, node: ast.DropStmt) -> None:
        name = self.model.resolve(from_name_list(obj))
        relation = self.model.relation(name)
        if relation is None:
            self._missing(name, node, "relation")
            return
        owner = getattr(relation, "owner", None)
        if owner is not None and is_cascade(node.behavior):
            _drop_owner_default(self.model, owner)
        self.model.drop_relation(relation)

    def _drop_type(self, obj, node: ast.DropStmt) -> None:
        name = self.model.resolve(from_name_list(obj.names))
        found = self.model.types.get(name)
        if found is None:
            known_absent = self.model.absent_known and name not in self.model.doubts.types
            if node.missing_ok and known_absent:
                return
            if known_absent:
                self.violated(f"type {name.display()} does not exist")
            self.model.doubts.types.add(name)
            return
        if is_cascade(node.behavior):
            for table in list(self.model.tables()):
                for column in table.columns:
                    if getattr(column.type, "user", None) == found.ident:
                        current = self.tables.current(table)
                        self.tables.drop_column(current, column.name, True)
        self.model.drop_type(found)

    def _drop_schema(self, obj, node: ast.DropStmt) -> None:
        name = obj.sval
        if name not in self.model.schemas:
            if not node.missing_ok and self.model.absent_known:
                self.violated(f"schema {name} does not exist")
            return
        held = [r for r in self.model.relations.values() if r.name.schema == name]
        if (held or any(t.name.schema == name for t in self.model.types.values())) and not (
            is_cascade(node.behavior)
        ):
            self.violated(f"schema {name} is not empty: DROP SCHEMA without CASCADE fails")
        for relation in held:
            if self.model.relation(relation.name) is not None:
                self.tables.drop_relation_cascade(relation)
        for found in [t for t in self.model.types.values() if t.name.schema == name]:
            self.model.drop_type(found)
        self.model.drop_schema(name)

    def _drop_extension(self, obj, node: ast.DropStmt) -> None:
        self.model.drop_extension(obj.sval)


def _with_label(values: tuple[str, ...], node: ast.AlterEnumStmt) -> tuple[str, ...]:
    neighbour = node.newValNeighbor
    if neighbour is None or neighbour not in values:
        return (*values, node.newVal)
    at = values.index(neighbour) + (1 if node.newValIsAfter else 0)
    return (*values[:at], node.newVal, *values[at:])


def _index_columns(node: ast.IndexStmt) -> list[str]:
    names = []
    for element in (*(node.indexParams or ()), *(node.indexIncludingParams or ())):
        names += [element.name] if element.name is not None else column_refs(element.expr)
    names += column_refs(node.whereClause)
    return list(dict.fromkeys(names))


def _touch_dependents(model: SchemaModel, table: int) -> None:
    """Definitions that print this table's or its columns' names: its indexes, and the
    foreign keys of other tables that reference it."""
    for index in model.indexes_of(table):
        model.touch(("relation", index.name))
    for owner, _ in model.foreign_keys_into(table):
        model.touch(("relation", owner.name))


def _drop_owner_default(model: SchemaModel, owner: tuple[int, int]) -> None:
    table = model.table_by_ident(owner[0])
    if table is None:
        return
    columns = tuple(changed(c, default=None) if c.ident == owner[1] else c for c in table.columns)
    model.update_table(table, columns=columns)


def _rename_schema(model: SchemaModel, old: str, new: str) -> None:
    for relation in [r for r in model.relations.values() if r.name.schema == old]:
        moved = QualifiedName(new, relation.name.name)
        model.put_relation(changed(relation, name=moved), old_name=relation.name)
    for found in [t for t in model.types.values() if t.name.schema == old]:
        model.put_type(
            changed(found, name=QualifiedName(new, found.name.name)), old_name=found.name
        )
    model.drop_schema(old)
    model.add_schema(new)


def taint_everything(model: SchemaModel, tables: TableReplay | None = None) -> None:
    """Code the bot cannot read ran: nothing about the schema is known for sure any more."""
    tables = tables or TableReplay(model, strict=False)
    model.absent_known = False
    for table in list(model.tables()):
        tables.taint_table(table)
        model.doubts.relations.add(table.name)
    for found in list(model.types.values()):
        model.put_type(changed(found, values_complete=False))


_RELATION_RENAMES = frozenset(
    {
        ObjectType.OBJECT_TABLE,
        ObjectType.OBJECT_INDEX,
        ObjectType.OBJECT_SEQUENCE,
        ObjectType.OBJECT_VIEW,
        ObjectType.OBJECT_MATVIEW,
        ObjectType.OBJECT_FOREIGN_TABLE,
    }
)

_HANDLERS = {
    ast.CreateStmt: _Replay._create_table,
    ast.CreateTableAsStmt: _Replay._create_table_as,
    ast.IndexStmt: _Replay._create_index,
    ast.CreateEnumStmt: _Replay._create_type,
    ast.CompositeTypeStmt: _Replay._create_type,
    ast.CreateDomainStmt: _Replay._create_type,
    ast.AlterEnumStmt: _Replay._alter_enum,
    ast.CreateSchemaStmt: _Replay._create_schema,
    ast.CreateExtensionStmt: _Replay._create_extension,
    ast.CreateSeqStmt: _Replay._create_sequence,
    ast.ViewStmt: _Replay._create_view,
    ast.RenameStmt: _Replay._rename,
    ast.DoStmt: _Replay._do_block,
    ast.CreateFunctionStmt: _Replay._create_function,
    ast.CreateTrigStmt: _Replay._create_trigger,
}

_DROP_HANDLERS = {
    ObjectType.OBJECT_TABLE: _Replay._drop_table,
    ObjectType.OBJECT_INDEX: _Replay._drop_index,
    ObjectType.OBJECT_SEQUENCE: _Replay._drop_other_relation,
    ObjectType.OBJECT_VIEW: _Replay._drop_other_relation,
    ObjectType.OBJECT_MATVIEW: _Replay._drop_other_relation,
    ObjectType.OBJECT_TYPE: _Replay._drop_type,
    ObjectType.OBJECT_DOMAIN: _Replay._drop_type,
    ObjectType.OBJECT_SCHEMA: _Replay._drop_schema,
    ObjectType.OBJECT_EXTENSION: _Replay._drop_extension,
    ObjectType.OBJECT_FUNCTION: _Replay._drop_routine,
    ObjectType.OBJECT_PROCEDURE: _Replay._drop_routine,
    ObjectType.OBJECT_ROUTINE: _Replay._drop_routine,
    ObjectType.OBJECT_TRIGGER: _Replay._drop_trigger,
}
