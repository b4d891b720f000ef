"""Functions, procedures, triggers and comments: what statements on them change, how the
schema model keeps them, and how to undo them.

A function is known by its name and argument types (PostgreSQL's identity for it: docs,
"Function Overloading"), a trigger by its table and name. The model keeps their definitions
as the migrations wrote them, so a function a migration replaced or dropped can be created
again as it was; one the migration created is dropped. A comment is left in place: the bot
does not keep comments, and a comment changes nothing but the text describing an object.
"""

from __future__ import annotations

import copy

from pglast import ast
from pglast.enums import FunctionParameterMode, ObjectType

from bot.sql.model_definitions import deparse_quoted
from bot.sql.names import QualifiedName, display_name, from_name_list, from_range_var
from bot.sql.schema_change import Change, ChangeKind, type_sql
from bot.sql.type_names import type_ref

# Parameters that are part of a function's identity (OUT ones are not: docs, CREATE FUNCTION).
_IDENTITY_MODES = frozenset(
    {
        FunctionParameterMode.FUNC_PARAM_IN,
        FunctionParameterMode.FUNC_PARAM_INOUT,
        FunctionParameterMode.FUNC_PARAM_VARIADIC,
        FunctionParameterMode.FUNC_PARAM_DEFAULT,
    }
)
ROUTINE_DROPS = {
    ObjectType.OBJECT_FUNCTION: "FUNCTION",
    ObjectType.OBJECT_PROCEDURE: "PROCEDURE",
    ObjectType.OBJECT_ROUTINE: "ROUTINE",
}


def argument_types(types: list[ast.TypeName]) -> str:
    """'integer, text, double precision': built-in types as format_type spells them."""
    return ", ".join(type_ref(t, lambda name: None).builtin or type_sql(t) for t in types)


def _signature(node: ast.CreateFunctionStmt) -> str:
    return argument_types([p.argType for p in node.parameters or () if p.mode in _IDENTITY_MODES])


# ----------------------------------------------------------------- what changes


def create_function_change(node: ast.CreateFunctionStmt) -> list[Change]:
    name, signature = from_name_list(node.funcname), _signature(node)
    kind = "PROCEDURE" if node.is_procedure else "FUNCTION"
    verb = "CREATE OR REPLACE" if node.replace else "CREATE"
    description = f"{verb} {kind} {name.display()}({signature})"
    return [Change(ChangeKind.CREATE_FUNCTION, name, description, name=signature)]


def drop_routine_changes(node: ast.DropStmt) -> list[Change]:
    label = ROUTINE_DROPS[node.removeType]
    changes = []
    for obj in node.objects:
        name = from_name_list(obj.objname)
        signature = None if obj.args_unspecified else argument_types(list(obj.objargs or ()))
        shown = f"({signature})" if signature is not None else ""
        changes.append(
            Change(
                ChangeKind.DROP_FUNCTION,
                name,
                f"DROP {label} {name.display()}{shown}",
                name=signature,
            )
        )
    return changes


def create_trigger_change(node: ast.CreateTrigStmt) -> list[Change]:
    table = from_range_var(node.relation)
    description = f"CREATE TRIGGER {display_name(node.trigname)} ON {table.display()}"
    return [Change(ChangeKind.CREATE_TRIGGER, table, description, name=node.trigname)]


def drop_trigger_changes(node: ast.DropStmt) -> list[Change]:
    changes = []
    for obj in node.objects:
        names = [part.sval for part in obj]
        table = from_name_list([ast.String(sval=n) for n in names[:-1]])
        description = f"DROP TRIGGER {display_name(names[-1])} ON {table.display()}"
        changes.append(Change(ChangeKind.DROP_TRIGGER, table, description, name=names[-1]))
    return changes


def comment_change(node: ast.CommentStmt) -> list[Change]:
    what = node.objtype.name.removeprefix("OBJECT_")
    return [Change(ChangeKind.COMMENT, QualifiedName(None, what), f"COMMENT ON {what}")]


# ----------------------------------------------------------------- the model


def function_key(model, name: QualifiedName, signature: str | None) -> tuple | None:
    """The model's key of a function; with no argument list given (DROP FUNCTION f), the
    only function of that name."""
    name = model.resolve(name)
    if signature is not None:
        return (name, signature)
    found = [key for key in model.functions if key[0] == name]
    return found[0] if len(found) == 1 else None


def apply_create_function(replay, node: ast.CreateFunctionStmt) -> None:
    model = replay.model
    key = (model.resolve(from_name_list(node.funcname)), _signature(node))
    if key in model.functions and not node.replace:
        replay.violated(f"function {key[0].display()}({key[1]}) already exists")
    model.put_function(key, node)


def apply_drop_routine(replay, obj: ast.ObjectWithArgs, node: ast.DropStmt) -> None:
    model = replay.model
    signature = None if obj.args_unspecified else argument_types(list(obj.objargs or ()))
    key = function_key(model, from_name_list(obj.objname), signature)
    if key is None or key not in model.functions:
        if not node.missing_ok and model.absent_known:
            replay.violated(f"function {from_name_list(obj.objname).display()} does not exist")
        return
    model.drop_function(key)


def apply_create_trigger(replay, node: ast.CreateTrigStmt) -> None:
    table = replay.tables.table_named(node.relation)
    if table is None:
        return
    key = (table.ident, node.trigname)
    if key in replay.model.triggers and not node.replace:
        replay.violated(f"trigger {node.trigname} on {table.name.display()} already exists")
    replay.model.put_trigger(key, node)


def apply_drop_trigger(replay, obj, node: ast.DropStmt) -> None:
    names = [part.sval for part in obj]
    table_name = replay.model.resolve(from_name_list([ast.String(sval=n) for n in names[:-1]]))
    table = replay.model.table(table_name)
    key = (table.ident, names[-1]) if table else None
    if key is None or key not in replay.model.triggers:
        if not node.missing_ok and replay.model.absent_known:
            replay.violated(f"trigger {names[-1]} on {table_name.display()} does not exist")
        return
    replay.model.drop_trigger(key)


# ----------------------------------------------------------------- undoing


def function_sql(node: ast.CreateFunctionStmt, name: QualifiedName, replace: bool) -> str:
    node = copy.copy(node)
    node.replace = replace
    node.funcname = (ast.String(sval=name.schema), ast.String(sval=name.name))
    return deparse_quoted(node)


def trigger_sql(node: ast.CreateTrigStmt, table: QualifiedName) -> str:
    node = copy.copy(node)
    node.replace = False
    node.relation = ast.RangeVar(
        schemaname=table.schema, relname=table.name, inh=True, relpersistence="p"
    )
    return deparse_quoted(node)
