"""What CREATE TABLE and ALTER TABLE statements change (per subcommand)."""

from __future__ import annotations

from pglast import ast
from pglast.enums import AlterTableType, ConstrType, ObjectType

from bot.sql.names import QualifiedName, display_name, from_range_var
from bot.sql.schema_change import (
    Change,
    ChangeKind,
    ColumnSpec,
    column_label,
    deparse,
    other_change,
)
from bot.sql.schema_change import type_sql as printed_type
from bot.sql.schema_model import TEMP_SCHEMA

# ------------------------------------------------------------------- CREATE TABLE


def _create_table(node: ast.CreateStmt) -> list[Change]:
    table = from_range_var(node.relation)
    if node.relation.relpersistence == "t":
        temporary = QualifiedName(TEMP_SCHEMA, table.name)
        return [Change(ChangeKind.CREATE_TABLE, temporary, f"CREATE TEMP TABLE {table.display()}")]
    elements = node.tableElts or ()
    primary_key = _primary_key_columns(elements)
    columns = tuple(
        _column_spec(element, element.colname in primary_key)
        for element in elements
        if isinstance(element, ast.ColumnDef)
    )
    return [
        Change(
            ChangeKind.CREATE_TABLE,
            table,
            f"CREATE TABLE {table.display()}",
            columns=columns,
        )
    ]


def _create_table_as(node: ast.CreateTableAsStmt) -> list[Change]:
    if node.objtype != ObjectType.OBJECT_TABLE:
        view = from_range_var(node.into.rel)
        description = f"CREATE MATERIALIZED VIEW {view.display()}"
        return [Change(ChangeKind.CREATE_VIEW, view, description)]
    table = from_range_var(node.into.rel)
    if node.into.rel.relpersistence == "t":
        temporary = QualifiedName(TEMP_SCHEMA, table.name)
        return [Change(ChangeKind.CREATE_TABLE, temporary, f"CREATE TEMP TABLE {table.display()}")]
    return [Change(ChangeKind.CREATE_TABLE, table, f"CREATE TABLE {table.display()}")]


def _primary_key_columns(elements: tuple[ast.Node, ...]) -> set[str]:
    # A table-level PRIMARY KEY makes its columns NOT NULL (PostgreSQL docs, CREATE TABLE).
    return {
        key.sval
        for element in elements
        if isinstance(element, ast.Constraint) and element.contype == ConstrType.CONSTR_PRIMARY
        for key in element.keys or ()
    }


def _column_spec(column: ast.ColumnDef, in_primary_key: bool = False) -> ColumnSpec:
    not_null = bool(column.is_not_null) or in_primary_key
    for constraint in column.constraints or ():
        if constraint.contype in (ConstrType.CONSTR_NOTNULL, ConstrType.CONSTR_PRIMARY):
            not_null = True
    return ColumnSpec(column, not_null)


# -------------------------------------------------------------------- ALTER TABLE


def _alter_table(node: ast.AlterTableStmt) -> list[Change]:
    if node.objtype != ObjectType.OBJECT_TABLE:
        return [other_change(node, f"ALTER {node.objtype.name.removeprefix('OBJECT_')}")]
    table = from_range_var(node.relation)
    return [_alter_table_cmd(table, cmd) for cmd in node.cmds]


def _alter_table_cmd(table: QualifiedName, cmd: ast.AlterTableCmd) -> Change:
    reader = _ALTER_TABLE_READERS.get(cmd.subtype)
    if reader is None:
        label = cmd.subtype.name.removeprefix("AT_")
        return Change(
            ChangeKind.OTHER, table, f"ALTER TABLE {table.display()} {label} (not analysed)"
        )
    return reader(table, cmd)


def _add_column(table: QualifiedName, cmd: ast.AlterTableCmd) -> Change:
    spec = _column_spec(cmd.def_)
    return Change(
        ChangeKind.ADD_COLUMN,
        table,
        f"ADD COLUMN {column_label(table, spec.name)}",
        name=spec.name,
        column=spec,
    )


def _drop_column(table: QualifiedName, cmd: ast.AlterTableCmd) -> Change:
    label = column_label(table, cmd.name)
    return Change(ChangeKind.DROP_COLUMN, table, f"DROP COLUMN {label}", name=cmd.name)


def _alter_column_type(table: QualifiedName, cmd: ast.AlterTableCmd) -> Change:
    type_sql = printed_type(cmd.def_.typeName)
    return Change(
        ChangeKind.ALTER_COLUMN_TYPE,
        table,
        f"ALTER COLUMN {column_label(table, cmd.name)} TYPE {type_sql}",
        name=cmd.name,
        type_sql=type_sql,
    )


def _set_not_null(table: QualifiedName, cmd: ast.AlterTableCmd) -> Change:
    label = column_label(table, cmd.name)
    return Change(ChangeKind.SET_NOT_NULL, table, f"ALTER COLUMN {label} SET NOT NULL", cmd.name)


def _drop_not_null(table: QualifiedName, cmd: ast.AlterTableCmd) -> Change:
    label = column_label(table, cmd.name)
    return Change(ChangeKind.DROP_NOT_NULL, table, f"ALTER COLUMN {label} DROP NOT NULL", cmd.name)


def _column_default(table: QualifiedName, cmd: ast.AlterTableCmd) -> Change:
    # PostgreSQL parses both SET DEFAULT and DROP DEFAULT as AT_ColumnDefault; DROP has no
    # expression (gram.y, alter_column_default).
    label = column_label(table, cmd.name)
    if cmd.def_ is None:
        return Change(
            ChangeKind.DROP_DEFAULT, table, f"ALTER COLUMN {label} DROP DEFAULT", cmd.name
        )
    default_sql = deparse(cmd.def_)
    return Change(
        ChangeKind.SET_DEFAULT,
        table,
        f"ALTER COLUMN {label} SET DEFAULT {default_sql}",
        name=cmd.name,
        default_sql=default_sql,
    )


_CONSTRAINT_TYPES = {
    ConstrType.CONSTR_PRIMARY: "PRIMARY KEY",
    ConstrType.CONSTR_FOREIGN: "FOREIGN KEY",
    ConstrType.CONSTR_UNIQUE: "UNIQUE",
    ConstrType.CONSTR_CHECK: "CHECK",
    ConstrType.CONSTR_EXCLUSION: "EXCLUDE",
}


def _add_constraint(table: QualifiedName, cmd: ast.AlterTableCmd) -> Change:
    constraint: ast.Constraint = cmd.def_
    constraint_type = _CONSTRAINT_TYPES.get(constraint.contype, constraint.contype.name)
    named = display_name(constraint.conname) if constraint.conname else "(unnamed)"
    return Change(
        ChangeKind.ADD_CONSTRAINT,
        table,
        f"ADD CONSTRAINT {named} {constraint_type} ON {table.display()}",
        name=constraint.conname,
        constraint_type=constraint_type,
    )


def _drop_constraint(table: QualifiedName, cmd: ast.AlterTableCmd) -> Change:
    return Change(
        ChangeKind.DROP_CONSTRAINT,
        table,
        f"DROP CONSTRAINT {display_name(cmd.name)} ON {table.display()}",
        name=cmd.name,
    )


_ALTER_TABLE_READERS = {
    AlterTableType.AT_AddColumn: _add_column,
    AlterTableType.AT_DropColumn: _drop_column,
    AlterTableType.AT_AlterColumnType: _alter_column_type,
    AlterTableType.AT_SetNotNull: _set_not_null,
    AlterTableType.AT_DropNotNull: _drop_not_null,
    AlterTableType.AT_ColumnDefault: _column_default,
    AlterTableType.AT_AddConstraint: _add_constraint,
    AlterTableType.AT_DropConstraint: _drop_constraint,
}


# ---------------------------------------------------------- RENAME COLUMN/CONSTRAINT


def rename_column(table: QualifiedName, node: ast.RenameStmt) -> Change:
    old = column_label(table, node.subname)
    description = f"RENAME COLUMN {old} TO {display_name(node.newname)}"
    return Change(ChangeKind.RENAME_COLUMN, table, description, node.subname, node.newname)


def rename_constraint(table: QualifiedName, node: ast.RenameStmt) -> Change:
    old, new = display_name(node.subname), display_name(node.newname)
    description = f"RENAME CONSTRAINT {old} TO {new} ON {table.display()}"
    return Change(ChangeKind.RENAME_CONSTRAINT, table, description, node.subname, node.newname)


TABLE_READERS = {
    ast.CreateStmt: _create_table,
    ast.CreateTableAsStmt: _create_table_as,
    ast.AlterTableStmt: _alter_table,
}
