"""Replaying CREATE TABLE and ALTER TABLE on the schema model: tables, columns and what
depends on them, with what PostgreSQL does implicitly (docs, CREATE TABLE and ALTER TABLE):
- SERIAL creates ``<table>_<column>_seq`` and a nextval() default;
- DROP COLUMN drops the indexes and constraints that use the column (with CASCADE also the
  foreign keys of other tables that reference it);
- DROP TABLE drops its indexes, triggers, owned sequences and the foreign keys into it.
Constraints, and the indexes they own, are bot.sql.model_constraints'.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import cached_property

from pglast import ast
from pglast.enums import AlterTableType, ConstrType, DropBehavior, ObjectType

from bot.sql.model_constraints import CONTYPES, ConstraintReplay
from bot.sql.names import QualifiedName, from_range_var
from bot.sql.object_names import make_object_name
from bot.sql.schema_change import DeferredSQL
from bot.sql.schema_model import (
    SOME_DEFAULT,
    TEMP_SCHEMA,
    UNKNOWN,
    Column,
    OtherRelation,
    SchemaModel,
    Table,
    changed,
    new_identity,
)
from bot.sql.type_names import SERIAL_TYPES, TypeRef, type_ref


class ReplayError(Exception):
    """In strict mode: the statement would fail on the modelled schema."""


class TableReplay:
    """Applies table statements to ``model``; ``strict`` raises ReplayError where the
    statement would fail instead of assuming what the model did not know."""

    def __init__(self, model: SchemaModel, strict: bool):
        self.model = model
        self.strict = strict
        self.violations: list[str] = []

    @cached_property
    def constraints(self) -> ConstraintReplay:
        # Made when first needed: most statements replayed touch no constraint.
        return ConstraintReplay(self)

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
            self.constraints.add_constraint(self.current(table), constraint, column)

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
            self.constraints.add_constraint(self.current(table), constraint, column)

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
        self.constraints.add_constraint(table, cmd.def_, None)

    def _drop_constraint(self, table: Table, cmd: ast.AlterTableCmd) -> None:
        if table.constraint(cmd.name) is None:
            self._absent(table, cmd, "constraint", self.model.doubts.constraints)
            return
        self.constraints.drop_constraint_named(table, cmd.name, cascade=is_cascade(cmd.behavior))

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
                table = self.constraints.drop_constraint_named(table, constraint.name, cascade=True)
        self.constraints.drop_foreign_keys(table.ident, lambda fk: column.ident in fk.ref_columns)
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
            self.constraints.drop_foreign_keys(relation.ident, lambda fk: True)
            self._drop_owned_sequences(relation.ident, None)
        self.model.drop_relation(relation)


def is_cascade(behavior) -> bool:
    return behavior == DropBehavior.DROP_CASCADE


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
