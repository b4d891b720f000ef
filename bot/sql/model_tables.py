"""Replaying CREATE TABLE and ALTER TABLE on the schema model: columns, constraints and the
indexes that constraints own, with what PostgreSQL does implicitly (docs, CREATE TABLE and
ALTER TABLE):
- a PRIMARY KEY makes its columns NOT NULL and creates an index of the constraint's name;
- ``ADD CONSTRAINT ... USING INDEX i`` absorbs ``i``, renaming it to the constraint's name;
- SERIAL creates ``<table>_<column>_seq`` and a nextval() default;
- DROP COLUMN drops the indexes and constraints that use the column (with CASCADE also the
  foreign keys of other tables that reference it);
- DROP CONSTRAINT drops the constraint's index (with CASCADE also the foreign keys that
  depend on it).
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from functools import partial

from pglast import ast
from pglast.enums import (
    AlterTableType,
    ConstrType,
    DropBehavior,
    ObjectType,
    SortByDir,
    SortByNulls,
)
from pglast.visitors import Visitor

from bot.sql.model_definitions import BuiltDefinition, Definition
from bot.sql.names import QualifiedName, from_range_var
from bot.sql.object_names import column_names_part, make_object_name
from bot.sql.schema_change import DeferredSQL
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
    changed,
    new_identity,
)
from bot.sql.type_names import SERIAL_TYPES, TypeRef, type_ref


class ReplayError(Exception):
    """In strict mode: the statement would fail on the modelled schema."""


CONTYPES = {
    ConstrType.CONSTR_PRIMARY: "p",
    ConstrType.CONSTR_UNIQUE: "u",
    ConstrType.CONSTR_FOREIGN: "f",
    ConstrType.CONSTR_CHECK: "c",
    ConstrType.CONSTR_EXCLUSION: "x",
}
_LABELS = {"p": "pkey", "u": "key", "f": "fkey", "c": "check", "x": "excl"}


class TableReplay:
    """Applies table statements to ``model``; ``strict`` raises ReplayError where the
    statement would fail instead of assuming what the model did not know."""

    def __init__(self, model: SchemaModel, strict: bool):
        self.model = model
        self.strict = strict
        self.violations: list[str] = []

    def violated(self, message: str) -> None:
        """The statement would fail on the modelled schema: strict mode stops, lenient mode
        (replaying what did run) notes it and goes on with what the statement did."""
        if self.strict:
            raise ReplayError(message)
        self.violations.append(message)

    # ------------------------------------------------------------------ lookups

    def table_named(self, relation: ast.RangeVar, missing_ok: bool = False) -> Table | None:
        name = self.model.resolve(from_range_var(relation))
        table = self.model.table(name)
        if table is not None or missing_ok:
            return table
        if self.model.relation_exists(name) is False:
            self.violated(f"table {name.display()} does not exist")
        if self.strict:
            return None
        return self.model.placeholder_table(name)

    def column_of(self, table: Table, name: str, missing_ok: bool = False) -> tuple[Table, Column]:
        column = table.column(name)
        if column is not None:
            return table, column
        if missing_ok:
            return table, None
        if table.complete:
            self.violated(f"column {table.name.display()}.{name} does not exist")
        self.model.doubts.columns.add((table.ident, name))
        column = Column(new_identity(), name)
        table = self.model.update_table(table, columns=(*table.columns, column), complete=False)
        return table, column

    # ------------------------------------------------------------------ CREATE TABLE

    def create_table(self, node: ast.CreateStmt) -> None:
        name = self.model.resolve(from_range_var(node.relation))
        if node.relation.relpersistence == "t":  # CREATE TEMP TABLE
            name = QualifiedName(TEMP_SCHEMA, name.name)
        existing = self.model.relation(name)
        if existing is not None:
            if node.if_not_exists:
                return
            self.violated(f"relation {name.display()} already exists")
            self.drop_relation_cascade(existing)
        complete = not (node.inhRelations or node.ofTypename or node.partbound)
        columns: list[Column] = []
        serials: list[Column] = []
        pending: list[tuple[ast.Constraint, str | None]] = []
        for element in node.tableElts or ():
            if isinstance(element, ast.ColumnDef):
                column, serial, constraints = self.column_of_def(element)
                columns.append(column)
                serials += [column] if serial else []
                pending += constraints
            elif isinstance(element, ast.Constraint):
                pending.append((element, None))
            else:  # LIKE ...: columns the model does not see
                complete = False
        table = Table(new_identity(), name, tuple(columns), complete=complete)
        self.model.put_relation(table)
        for column in serials:
            self._serial_sequence(table, column)
        for constraint, column in pending:
            self.add_constraint(self.current(table), constraint, column)

    def current(self, table: Table) -> Table:
        return self.model.table_by_ident(table.ident) or table

    def add_column_def(
        self, table: Table, definition: ast.ColumnDef
    ) -> tuple[Table, list[tuple[ast.Constraint, str]]]:
        """Adds the column; returns the constraints it declares inline, to add after."""
        column, serial, pending = self.column_of_def(definition)
        table = self.model.update_table(table, columns=(*table.columns, column))
        if serial:
            self._serial_sequence(table, column)
        return table, pending

    def column_of_def(
        self, definition: ast.ColumnDef
    ) -> tuple[Column, bool, list[tuple[ast.Constraint, str]]]:
        """The column a ColumnDef makes, whether it is a serial (with its own sequence), and
        the constraints it declares inline."""
        type_name = definition.typeName
        base = type_name.names[-1].sval if type_name and type_name.names else ""
        serial = len(type_name.names) == 1 and base in SERIAL_TYPES if type_name else False
        not_null = bool(definition.is_not_null) or serial
        default: object = SOME_DEFAULT if serial else None
        pending = []
        for constraint in definition.constraints or ():
            contype = constraint.contype
            if contype in (ConstrType.CONSTR_NOTNULL, ConstrType.CONSTR_PRIMARY):
                not_null = True
            if contype == ConstrType.CONSTR_NOTNULL or contype == ConstrType.CONSTR_NULL:
                continue
            if contype == ConstrType.CONSTR_DEFAULT:
                default = DeferredSQL(constraint.raw_expr)
            elif contype == ConstrType.CONSTR_IDENTITY:
                not_null, default = True, None
                serial = True
            elif contype == ConstrType.CONSTR_GENERATED:
                default = UNKNOWN  # pg_attrdef holds the generation expression
            elif contype in CONTYPES:
                pending.append((constraint, definition.colname))
        if type_name is None:
            column_type = UNKNOWN
        elif serial and base in SERIAL_TYPES:
            column_type = TypeRef(SERIAL_TYPES[base], builtin=SERIAL_TYPES[base])
        else:
            column_type = type_ref(type_name, self.model.find_type)
        column = Column(new_identity(), definition.colname, column_type, not_null, default)
        return column, serial, pending

    def _serial_sequence(self, table: Table, column: Column) -> None:
        name = QualifiedName(
            table.name.schema, make_object_name(table.name.name, column.name, "seq")
        )
        if self.model.relation(name) is not None:
            return  # PostgreSQL picks another name; the model does not follow it
        sequence = OtherRelation(new_identity(), name, "S", owner=(table.ident, column.ident))
        self.model.put_relation(sequence)

    # ------------------------------------------------------------------ constraints

    def add_constraint(self, table: Table, node: ast.Constraint, column: str | None) -> None:
        contype = CONTYPES.get(node.contype)
        if contype is None:
            return
        if node.indexname:
            self._constraint_using_index(table, node, contype)
            return
        keys = _key_names(node, column)
        name = node.conname or self._chosen_name(table, contype, keys, node)
        if name is None:
            self.model.update_table(table, complete=False)
            return
        if table.constraint(name) is not None:
            self.violated(f"constraint {name} already exists")
            table = self.drop_constraint_named(table, name, cascade=True)
        columns: dict[str, int] = {}
        for key in keys + _check_columns(node):
            table, found = self.column_of(table, key)
            columns[key] = found.ident
        if contype == "p":
            table = self._not_null_columns(table, set(columns.values()))
        ref_table, ref_columns, node = self._referenced(node, contype, column)
        if column is not None and contype in ("f", "p", "u"):
            node = _with_keys(node, contype, column)
        ident = new_identity()
        index = self._constraint_index(table, name, contype, node, columns, ident)
        constraint = Constraint(
            ident,
            name,
            contype,
            Definition(node, columns, ref_columns),
            frozenset(columns.values()),
            ref_table,
            frozenset(ref_columns.values()),
            index,
        )
        self.model.update_table(self.current(table), constraints=(*table.constraints, constraint))

    def _chosen_name(
        self, table: Table, contype: str, keys: list[str], node: ast.Constraint
    ) -> str | None:
        if contype == "p":
            middle = None
        elif contype == "c":
            referenced = _check_columns(node)
            middle = referenced[0] if len(set(referenced)) == 1 else None
        else:
            middle = column_names_part(keys) if keys else None
        name = make_object_name(table.name.name, middle, _LABELS[contype])
        taken = any(c.name == name for t in self.model.tables() for c in t.constraints)
        if taken or self.model.relation(QualifiedName(table.name.schema, name)) is not None:
            return None  # PostgreSQL would add a number; the model does not guess it
        return name

    def _not_null_columns(self, table: Table, idents: set[int]) -> Table:
        columns = tuple(
            changed(c, not_null=True) if c.ident in idents else c for c in table.columns
        )
        return self.model.update_table(table, columns=columns)

    def _referenced(
        self, node: ast.Constraint, contype: str, column: str | None
    ) -> tuple[int | None, dict[str, int], ast.Constraint]:
        if contype != "f":
            return None, {}, node
        referenced = self.table_named(node.pktable)
        if referenced is None:
            return None, {}, node
        names = [n.sval for n in node.pk_attrs or ()]
        if not names:
            key = referenced.primary_key()
            if key is None or key.definition is None:
                return referenced.ident, {}, node
            names = [n.sval for n in key.definition.node.keys or ()]
            node = _with_pk_attrs(node, names)
        ref_columns = {}
        for name in names:
            referenced, found = self.column_of(referenced, name)
            ref_columns[name] = found.ident
        return referenced.ident, ref_columns, node

    def _constraint_index(
        self,
        table: Table,
        name: str,
        contype: str,
        node: ast.Constraint,
        columns: dict[str, int],
        constraint: int,
    ) -> int | None:
        if contype not in ("p", "u", "x"):
            return None
        index_name = QualifiedName(table.name.schema, name)
        if self.model.relation(index_name) is not None:
            self.violated(f"relation {index_name.display()} already exists")
        definition = None
        if contype != "x" and node.keys:
            definition = BuiltDefinition(
                partial(_index_of_constraint, node, table.name, name), columns
            )
        index = Index(
            new_identity(),
            index_name,
            table.ident,
            definition,
            frozenset(columns.values()),
            constraint,
        )
        self.model.put_relation(index)
        return index.ident

    def _constraint_using_index(self, table: Table, node: ast.Constraint, contype: str) -> None:
        index_name = QualifiedName(table.name.schema, node.indexname)
        index = self.model.relation(index_name)
        if not isinstance(index, Index):
            if self.model.relation_exists(index_name) is False:
                self.violated(f"index {index_name.display()} does not exist")
            self.model.doubts.relations.add(index_name)
            self.model.update_table(table, complete=False)
            return
        name = node.conname or node.indexname
        ident = new_identity()
        keys = _index_keys(index)
        columns = {c.name: c.ident for c in table.columns if c.ident in index.columns}
        definition = None
        if keys is not None:
            synthetic = ast.Constraint(contype=node.contype, conname=name, keys=keys)
            definition = Definition(synthetic, columns)
        renamed = changed(index, name=QualifiedName(index.name.schema, name), constraint=ident)
        self.model.put_relation(renamed, old_name=index.name)
        if contype == "p":
            table = self._not_null_columns(self.current(table), set(index.columns))
        constraint = Constraint(ident, name, contype, definition, index.columns, index=index.ident)
        table = self.current(table)
        self.model.update_table(table, constraints=(*table.constraints, constraint))

    def drop_constraint_named(self, table: Table, name: str, *, cascade: bool) -> Table:
        constraint = table.constraint(name)
        if constraint is None:
            return table
        table = self.model.update_table(
            table, constraints=tuple(c for c in table.constraints if c.ident != constraint.ident)
        )
        if constraint.index is not None:
            index = self.model.relation_by_ident(constraint.index)
            if index is not None:
                self.model.drop_relation(index)
        if cascade and constraint.contype in ("p", "u"):
            self._drop_foreign_keys(table.ident, lambda fk: fk.ref_columns == constraint.columns)
        return self.current(table)

    def _drop_foreign_keys(self, table: int, matches) -> None:
        for owner, fk in self.model.foreign_keys_into(table):
            if matches(fk):
                owner = self.model.table_by_ident(owner.ident) or owner
                kept = tuple(c for c in owner.constraints if c.ident != fk.ident)
                self.model.update_table(owner, constraints=kept)

    # ------------------------------------------------------------------ ALTER TABLE

    def alter_table(self, node: ast.AlterTableStmt, begin_change: Callable[[], None]) -> None:
        if node.objtype != ObjectType.OBJECT_TABLE:
            begin_change()  # ALTER INDEX / VIEW / SEQUENCE ... SET: nothing the model keeps
            return
        for cmd in node.cmds:
            begin_change()
            table = self.table_named(node.relation, missing_ok=bool(node.missing_ok))
            if table is not None:
                self._alter_table_cmd(table, cmd)

    def _alter_table_cmd(self, table: Table, cmd: ast.AlterTableCmd) -> None:
        subtype = cmd.subtype
        if subtype in ALTER_NO_OPS:
            return
        handler = self._ALTER_HANDLERS.get(subtype)
        if handler is not None:
            handler(self, table, cmd)
        elif subtype in _IDENTITY_CHANGES:
            table, column = self.column_of(table, cmd.name)
            self._update_column(table, column, not_null=UNKNOWN, default=UNKNOWN)
        else:
            self.taint_table(table)

    def taint_table(self, table: Table) -> None:
        """A change the model does not follow: every property of the table is unknown."""
        columns = tuple(
            changed(c, type=UNKNOWN, not_null=UNKNOWN, default=UNKNOWN) for c in table.columns
        )
        constraints = tuple(changed(c, definition=None) for c in table.constraints)
        self.model.update_table(table, columns=columns, constraints=constraints, complete=False)

    def _update_column(self, table: Table, column: Column, **changes) -> None:
        updated = changed(column, **changes)
        columns = tuple(updated if c.ident == column.ident else c for c in table.columns)
        self.model.update_table(table, columns=columns)

    def _add_column(self, table: Table, cmd: ast.AlterTableCmd) -> None:
        existing = table.column(cmd.def_.colname)
        if existing is not None:
            if cmd.missing_ok:
                return
            self.violated(f"column {cmd.def_.colname} already exists")
            self.drop_column(table, existing.name, cascade=True)
            table = self.current(table)
        table, pending = self.add_column_def(table, cmd.def_)
        for constraint, column in pending:
            self.add_constraint(self.current(table), constraint, column)

    def _absent(self, table: Table, cmd: ast.AlterTableCmd, what: str, doubts: set) -> None:
        """DROP of a column or constraint the model does not have: nothing happens when it
        says IF EXISTS and the table is fully known; otherwise it existed unseen."""
        if cmd.missing_ok and table.complete:
            return
        if table.complete:
            self.violated(f"{what} {cmd.name} on {table.name.display()} does not exist")
        doubts.add((table.ident, cmd.name))

    def _drop_column(self, table: Table, cmd: ast.AlterTableCmd) -> None:
        if table.column(cmd.name) is None:
            self._absent(table, cmd, "column", self.model.doubts.columns)
            return
        self.drop_column(table, cmd.name, is_cascade(cmd.behavior))

    def _alter_type(self, table: Table, cmd: ast.AlterTableCmd) -> None:
        table, column = self.column_of(table, cmd.name)
        self._update_column(table, column, type=type_ref(cmd.def_.typeName, self.model.find_type))

    def _set_not_null(self, table: Table, cmd: ast.AlterTableCmd) -> None:
        table, column = self.column_of(table, cmd.name)
        self._update_column(table, column, not_null=True)

    def _drop_not_null(self, table: Table, cmd: ast.AlterTableCmd) -> None:
        table, column = self.column_of(table, cmd.name)
        self._update_column(table, column, not_null=False)

    def _column_default(self, table: Table, cmd: ast.AlterTableCmd) -> None:
        # SET DEFAULT and DROP DEFAULT are both AT_ColumnDefault; DROP has no expression.
        table, column = self.column_of(table, cmd.name)
        default = DeferredSQL(cmd.def_) if cmd.def_ is not None else None
        self._update_column(table, column, default=default)

    def _add_table_constraint(self, table: Table, cmd: ast.AlterTableCmd) -> None:
        self.add_constraint(table, cmd.def_, None)

    def _drop_constraint(self, table: Table, cmd: ast.AlterTableCmd) -> None:
        if table.constraint(cmd.name) is None:
            self._absent(table, cmd, "constraint", self.model.doubts.constraints)
            return
        self.drop_constraint_named(table, cmd.name, cascade=is_cascade(cmd.behavior))

    def _alter_constraint(self, table: Table, cmd: ast.AlterTableCmd) -> None:
        name = cmd.def_.conname if cmd.def_ is not None else cmd.name
        constraints = tuple(
            changed(c, definition=None) if c.name == name else c for c in table.constraints
        )
        self.model.update_table(table, constraints=constraints)

    _ALTER_HANDLERS = {
        AlterTableType.AT_AddColumn: _add_column,
        AlterTableType.AT_DropColumn: _drop_column,
        AlterTableType.AT_AlterColumnType: _alter_type,
        AlterTableType.AT_SetNotNull: _set_not_null,
        AlterTableType.AT_DropNotNull: _drop_not_null,
        AlterTableType.AT_ColumnDefault: _column_default,
        AlterTableType.AT_AddConstraint: _add_table_constraint,
        AlterTableType.AT_DropConstraint: _drop_constraint,
        AlterTableType.AT_AlterConstraint: _alter_constraint,
    }

    # ------------------------------------------------------------------ drops

    def drop_column(self, table: Table, name: str, cascade: bool) -> None:
        column = table.column(name)
        if column is None:
            return
        for index in self.model.indexes_of(table.ident):
            if column.ident in index.columns and index.constraint is None:
                self.model.drop_relation(index)
        for constraint in list(table.constraints):
            if column.ident in constraint.columns:
                table = self.current(table)
                table = self.drop_constraint_named(table, constraint.name, cascade=True)
        self._drop_foreign_keys(table.ident, lambda fk: column.ident in fk.ref_columns)
        self._drop_owned_sequences(table.ident, column.ident)
        table = self.current(table)
        self.model.update_table(
            table, columns=tuple(c for c in table.columns if c.ident != column.ident)
        )
        # Later columns move up one ordinal position.
        self.model.touch(("relation", table.name))

    def _drop_owned_sequences(self, table: int, column: int | None) -> None:
        for sequence in self.model.sequences_of(table):
            if column is None or sequence.owner[1] == column:
                self.model.drop_relation(sequence)

    def drop_relation_cascade(self, relation) -> None:
        """DROP TABLE (any behaviour: RESTRICT fails when others depend on it, so if it
        succeeded nothing else did): the table, its indexes, sequences, and foreign keys
        of other tables into it."""
        if isinstance(relation, Table):
            for index in self.model.indexes_of(relation.ident):
                self.model.drop_relation(index)
            for key in [k for k in self.model.triggers if k[0] == relation.ident]:
                self.model.drop_trigger(key)
            self._drop_foreign_keys(relation.ident, lambda fk: True)
            self._drop_owned_sequences(relation.ident, None)
        self.model.drop_relation(relation)


def is_cascade(behavior) -> bool:
    return behavior == DropBehavior.DROP_CASCADE


# ------------------------------------------------------------------ AST helpers


def _key_names(node: ast.Constraint, column: str | None) -> list[str]:
    if column is not None and node.contype in (
        ConstrType.CONSTR_PRIMARY,
        ConstrType.CONSTR_UNIQUE,
        ConstrType.CONSTR_FOREIGN,
    ):
        return [column]
    keys = node.fk_attrs if node.contype == ConstrType.CONSTR_FOREIGN else node.keys
    names = [k.sval for k in keys or ()]
    return names + [k.sval for k in node.including or ()]


class _ColumnRefs(Visitor):
    def __init__(self):
        super().__init__()
        self.names: list[str] = []

    def visit_ColumnRef(self, ancestors, node: ast.ColumnRef) -> None:
        last = node.fields[-1]
        if isinstance(last, ast.String):
            self.names.append(last.sval)


def column_refs(node: ast.Node | None) -> list[str]:
    if node is None:
        return []
    visitor = _ColumnRefs()
    visitor(node)
    return visitor.names


def _check_columns(node: ast.Constraint) -> list[str]:
    if node.contype != ConstrType.CONSTR_CHECK:
        return []
    return column_refs(node.raw_expr)


def _with_keys(node: ast.Constraint, contype: str, column: str) -> ast.Constraint:
    """An inline column constraint, written as the table constraint it is."""
    node = copy.deepcopy(node)
    if contype == "f":
        node.fk_attrs = (ast.String(sval=column),)
    else:
        node.keys = (ast.String(sval=column),)
    return node


def _with_pk_attrs(node: ast.Constraint, names: list[str]) -> ast.Constraint:
    node = copy.deepcopy(node)
    node.pk_attrs = tuple(ast.String(sval=n) for n in names)
    return node


def _index_of_constraint(
    node: ast.Constraint, table: QualifiedName, name: str
) -> ast.IndexStmt | None:
    keys = node.keys or ()
    if not keys:
        return None
    return ast.IndexStmt(
        idxname=name,
        relation=ast.RangeVar(schemaname=table.schema, relname=table.name, inh=True),
        accessMethod="btree",
        indexParams=tuple(_element(k.sval) for k in keys),
        indexIncludingParams=tuple(_element(k.sval) for k in node.including or ()),
        unique=True,
        nulls_not_distinct=bool(node.nulls_not_distinct),
        isconstraint=True,  # made by the constraint, not by a CREATE INDEX of the migration
    )


def _element(name: str) -> ast.IndexElem:
    return ast.IndexElem(
        name=name,
        ordering=SortByDir.SORTBY_DEFAULT,
        nulls_ordering=SortByNulls.SORTBY_NULLS_DEFAULT,
    )


def _index_keys(index: Index) -> tuple[ast.String, ...] | None:
    """The columns of a plain index on columns (what a PRIMARY KEY USING INDEX takes)."""
    if index.definition is None:
        return None
    params = index.definition.node.indexParams or ()
    if any(p.name is None for p in params):
        return None
    return tuple(ast.String(sval=p.name) for p in params)


_IDENTITY_CHANGES = frozenset(
    {
        AlterTableType.AT_AddIdentity,
        AlterTableType.AT_SetIdentity,
        AlterTableType.AT_DropIdentity,
        AlterTableType.AT_SetExpression,
        AlterTableType.AT_DropExpression,
    }
)

ALTER_NO_OPS = frozenset(
    {
        AlterTableType.AT_EnableRowSecurity,
        AlterTableType.AT_DisableRowSecurity,
        AlterTableType.AT_ForceRowSecurity,
        AlterTableType.AT_NoForceRowSecurity,
        AlterTableType.AT_ReplicaIdentity,
        AlterTableType.AT_SetStatistics,
        AlterTableType.AT_SetStorage,
        AlterTableType.AT_SetCompression,
        AlterTableType.AT_SetRelOptions,
        AlterTableType.AT_ResetRelOptions,
        AlterTableType.AT_ReplaceRelOptions,
        AlterTableType.AT_SetOptions,
        AlterTableType.AT_ResetOptions,
        AlterTableType.AT_ClusterOn,
        AlterTableType.AT_DropCluster,
        AlterTableType.AT_ChangeOwner,
        AlterTableType.AT_EnableTrig,
        AlterTableType.AT_EnableAlwaysTrig,
        AlterTableType.AT_EnableReplicaTrig,
        AlterTableType.AT_DisableTrig,
        AlterTableType.AT_EnableTrigAll,
        AlterTableType.AT_DisableTrigAll,
        AlterTableType.AT_EnableTrigUser,
        AlterTableType.AT_DisableTrigUser,
        AlterTableType.AT_SetTableSpace,
        AlterTableType.AT_SetLogged,
        AlterTableType.AT_SetUnLogged,
        AlterTableType.AT_ValidateConstraint,
        AlterTableType.AT_GenericOptions,
    }
)
