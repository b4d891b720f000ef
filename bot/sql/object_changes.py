"""What statements on other objects change: renames, indexes, types, schemas,
extensions, drops, and data changes (which the catalog cannot show)."""

from __future__ import annotations

from pglast import ast
from pglast.enums import ObjectType

from bot.sql.do_block_changes import do_block_change
from bot.sql.names import (
    QualifiedName,
    display_name,
    from_name_list,
    from_range_var,
    quote_literal,
)
from bot.sql.routines import (
    ROUTINE_DROPS,
    comment_change,
    create_function_change,
    create_trigger_change,
    drop_routine_changes,
    drop_trigger_changes,
)
from bot.sql.schema_change import Change, ChangeKind, other_change
from bot.sql.table_changes import rename_column, rename_constraint

# ------------------------------------------------------------------------ RENAME


_RENAMED_OBJECTS = {
    ObjectType.OBJECT_TABLE: (ChangeKind.RENAME_TABLE, "TABLE"),
    ObjectType.OBJECT_INDEX: (ChangeKind.RENAME_INDEX, "INDEX"),
}


def _rename(node: ast.RenameStmt) -> list[Change]:
    kind = node.renameType
    if kind == ObjectType.OBJECT_TYPE:
        return [_rename_object(ChangeKind.RENAME_TYPE, "TYPE", from_name_list(node.object), node)]
    if kind in _RENAMED_OBJECTS:
        change_kind, label = _RENAMED_OBJECTS[kind]
        return [_rename_object(change_kind, label, from_range_var(node.relation), node)]
    if kind == ObjectType.OBJECT_COLUMN and node.relationType == ObjectType.OBJECT_TABLE:
        return [rename_column(from_range_var(node.relation), node)]
    if kind == ObjectType.OBJECT_TABCONSTRAINT:
        return [rename_constraint(from_range_var(node.relation), node)]
    return [other_change(node, f"RENAME {kind.name.removeprefix('OBJECT_')}")]


def _rename_object(
    kind: ChangeKind, label: str, old: QualifiedName, node: ast.RenameStmt
) -> Change:
    description = f"RENAME {label} {old.display()} TO {display_name(node.newname)}"
    return Change(kind, old, description, new_name=node.newname)


# ------------------------------------------------------------- INDEX, TYPE, DROP


def _create_index(node: ast.IndexStmt) -> list[Change]:
    table = from_range_var(node.relation)
    unique = "UNIQUE " if node.unique else ""
    if node.idxname is None:
        # PostgreSQL picks the name itself (ChooseRelationName); the bot cannot know it.
        return [other_change(node, f"CREATE {unique}INDEX (unnamed) ON {table.display()}")]
    # An index always lives in the schema of its table (PostgreSQL docs, CREATE INDEX).
    index = QualifiedName(table.schema, node.idxname)
    return [
        Change(
            ChangeKind.CREATE_INDEX,
            index,
            f"CREATE {unique}INDEX {display_name(node.idxname)} ON {table.display()}",
            table=table,
            constraint_type="UNIQUE" if node.unique else None,
        )
    ]


def _create_enum(node: ast.CreateEnumStmt) -> list[Change]:
    name = from_name_list(node.typeName)
    values = tuple(value.sval for value in node.vals or ())
    return [
        Change(
            ChangeKind.CREATE_TYPE,
            name,
            f"CREATE TYPE {name.display()} AS ENUM",
            enum_values=values,
        )
    ]


def _create_composite_type(node: ast.CompositeTypeStmt) -> list[Change]:
    name = from_range_var(node.typevar)
    return [Change(ChangeKind.CREATE_TYPE, name, f"CREATE TYPE {name.display()}")]


def _alter_enum(node: ast.AlterEnumStmt) -> list[Change]:
    name = from_name_list(node.typeName)
    if node.oldVal is not None:
        old, new = quote_literal(node.oldVal), quote_literal(node.newVal)
        return [
            Change(
                ChangeKind.RENAME_ENUM_VALUE,
                name,
                f"ALTER TYPE {name.display()} RENAME VALUE {old} TO {new}",
                name=node.oldVal,
                new_name=node.newVal,
            )
        ]
    return [
        Change(
            ChangeKind.ADD_ENUM_VALUE,
            name,
            f"ALTER TYPE {name.display()} ADD VALUE {quote_literal(node.newVal)}",
            name=node.newVal,
        )
    ]


def _create_schema(node: ast.CreateSchemaStmt) -> list[Change]:
    # CREATE SCHEMA AUTHORIZATION joe names the schema after the role (PostgreSQL docs).
    name = node.schemaname or node.authrole.rolename
    return [
        Change(
            ChangeKind.CREATE_SCHEMA,
            QualifiedName(None, name),
            f"CREATE SCHEMA {display_name(name)}",
        )
    ]


def _create_extension(node: ast.CreateExtensionStmt) -> list[Change]:
    name = QualifiedName(None, node.extname)
    return [Change(ChangeKind.CREATE_EXTENSION, name, f"CREATE EXTENSION {name.display()}")]


_DROPS = {
    ObjectType.OBJECT_TABLE: (ChangeKind.DROP_TABLE, "TABLE"),
    ObjectType.OBJECT_INDEX: (ChangeKind.DROP_INDEX, "INDEX"),
    ObjectType.OBJECT_VIEW: (ChangeKind.DROP_VIEW, "VIEW"),
    ObjectType.OBJECT_MATVIEW: (ChangeKind.DROP_VIEW, "MATERIALIZED VIEW"),
    ObjectType.OBJECT_SEQUENCE: (ChangeKind.DROP_SEQUENCE, "SEQUENCE"),
    ObjectType.OBJECT_TYPE: (ChangeKind.DROP_TYPE, "TYPE"),
    ObjectType.OBJECT_SCHEMA: (ChangeKind.DROP_SCHEMA, "SCHEMA"),
    ObjectType.OBJECT_EXTENSION: (ChangeKind.DROP_EXTENSION, "EXTENSION"),
}


def _drop(node: ast.DropStmt) -> list[Change]:
    if node.removeType in ROUTINE_DROPS:
        return drop_routine_changes(node)
    if node.removeType == ObjectType.OBJECT_TRIGGER:
        return drop_trigger_changes(node)
    if node.removeType not in _DROPS:
        return [other_change(node, f"DROP {node.removeType.name.removeprefix('OBJECT_')}")]
    kind, label = _DROPS[node.removeType]
    names = [_dropped_name(obj) for obj in node.objects]
    return [Change(kind, name, f"DROP {label} {name.display()}") for name in names]


def _dropped_name(obj: ast.Node | tuple) -> QualifiedName:
    # DROP TABLE/INDEX list name lists, DROP TYPE lists TypeNames, DROP SCHEMA/EXTENSION
    # list plain Strings (PostgreSQL's DropStmt.objects).
    if isinstance(obj, ast.TypeName):
        return from_name_list(obj.names)
    if isinstance(obj, ast.String):
        return QualifiedName(None, obj.sval)
    return from_name_list(obj)


def _create_view(node: ast.ViewStmt) -> list[Change]:
    name = from_range_var(node.view)
    verb = "CREATE OR REPLACE VIEW" if node.replace else "CREATE VIEW"
    return [Change(ChangeKind.CREATE_VIEW, name, f"{verb} {name.display()}")]


def _create_sequence(node: ast.CreateSeqStmt) -> list[Change]:
    name = from_range_var(node.sequence)
    return [Change(ChangeKind.CREATE_SEQUENCE, name, f"CREATE SEQUENCE {name.display()}")]


# -------------------------------------------------------------------------- DATA


def _data_change(verb: str):
    def read(node: ast.Node) -> list[Change]:
        relation = getattr(node, "relation", None)
        if isinstance(relation, ast.RangeVar):
            table = from_range_var(relation)
            return [Change(ChangeKind.DATA_CHANGE, table, f"{verb} {table.display()}")]
        return [Change(ChangeKind.DATA_CHANGE, QualifiedName(None, verb), verb)]

    return read


def _truncate(node: ast.TruncateStmt) -> list[Change]:
    tables = [from_range_var(relation) for relation in node.relations]
    return [Change(ChangeKind.DATA_CHANGE, t, f"TRUNCATE {t.display()}") for t in tables]


OBJECT_READERS = {
    ast.RenameStmt: _rename,
    ast.IndexStmt: _create_index,
    ast.CreateEnumStmt: _create_enum,
    ast.CompositeTypeStmt: _create_composite_type,
    ast.AlterEnumStmt: _alter_enum,
    ast.CreateSchemaStmt: _create_schema,
    ast.CreateExtensionStmt: _create_extension,
    ast.DropStmt: _drop,
    ast.InsertStmt: _data_change("INSERT INTO"),
    ast.UpdateStmt: _data_change("UPDATE"),
    ast.DeleteStmt: _data_change("DELETE FROM"),
    ast.MergeStmt: _data_change("MERGE INTO"),
    ast.CopyStmt: _data_change("COPY"),
    ast.TruncateStmt: _truncate,
    # A SELECT can call functions with side effects (setval, nextval...), invisible to a
    # catalog check: treated as a data change.
    ast.SelectStmt: _data_change("SELECT"),
    ast.DoStmt: do_block_change,
    ast.ViewStmt: _create_view,
    ast.CreateSeqStmt: _create_sequence,
    ast.CreateFunctionStmt: create_function_change,
    ast.CreateTrigStmt: create_trigger_change,
    ast.CommentStmt: comment_change,
}
