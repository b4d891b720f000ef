"""Column types as a migration writes them and as the catalog shows them.

``VARCHAR(255)`` in a migration is ``character varying(255)`` in ``format_type()``,
``TIMESTAMP(3)`` is ``timestamp(3) without time zone``, ``INTEGER[]`` is ``integer[]``. The
schema model keeps each column's type as a ``TypeRef``: the built-in types by the spelling
``format_type()`` gives them (PostgreSQL docs, "Data Types", and format_type.c), the types a
migration defines (enums, composites, domains) by identity, so that a later ``ALTER TYPE ...
RENAME`` moves them, and anything else by name only.
"""

from __future__ import annotations

from dataclasses import dataclass

from pglast import ast

from bot.sql.names import QualifiedName, from_name_list
from bot.sql.schema_change import type_sql

# pg_type.typname (and the SQL-standard names pglast maps to them) -> format_type's name.
_BUILTIN = {
    "int4": "integer",
    "integer": "integer",
    "int": "integer",
    "int8": "bigint",
    "bigint": "bigint",
    "int2": "smallint",
    "smallint": "smallint",
    "float8": "double precision",
    "float4": "real",
    "bool": "boolean",
    "boolean": "boolean",
    "text": "text",
    "jsonb": "jsonb",
    "json": "json",
    "uuid": "uuid",
    "bytea": "bytea",
    "date": "date",
    "inet": "inet",
    "cidr": "cidr",
    "macaddr": "macaddr",
    "money": "money",
    "xml": "xml",
    "tsvector": "tsvector",
    "tsquery": "tsquery",
    "oid": "oid",
}
# serial is not a type but integer + a sequence + a nextval() default ("Serial Types").
SERIAL_TYPES = {
    "serial": "integer",
    "serial4": "integer",
    "bigserial": "bigint",
    "serial8": "bigint",
    "smallserial": "smallint",
    "serial2": "smallint",
}
# Types whose modifier format_type prints inside the name: (prefix, suffix, default modifier).
_MODIFIED = {
    "varchar": ("character varying", "", None),
    "bpchar": ("character", "", 1),
    "numeric": ("numeric", "", None),
    "timestamp": ("timestamp", " without time zone", None),
    "timestamptz": ("timestamp", " with time zone", None),
    "time": ("time", " without time zone", None),
    "timetz": ("time", " with time zone", None),
    "bit": ("bit", "", 1),
    "varbit": ("bit varying", "", None),
}


@dataclass(frozen=True, slots=True)
class TypeRef:
    """A column's type. Exactly one of ``builtin``, ``user`` and ``user_name`` is set,
    unless the type is one the bot cannot compare (then none is)."""

    sql: str  # as written, printed back by pglast (used in reverse SQL)
    builtin: str | None = None  # format_type() spelling, arrays included: "integer[]"
    user: int | None = None  # identity of a type the model defines
    user_name: QualifiedName | None = None  # a type the model does not define
    array: bool = False
    written: QualifiedName | None = None  # a user type's name as written (unresolved)


def type_ref(type_name: ast.TypeName, find_user_type) -> TypeRef:
    """``find_user_type(QualifiedName) -> int | None``: the model's type of that name."""
    names = [n.sval for n in type_name.names]
    array = bool(type_name.arrayBounds)
    sql = type_sql(type_name)
    base = names[-1]
    if len(names) == 1 or names[0] == "pg_catalog":
        spelling = _builtin_spelling(base, _modifiers(type_name))
        if spelling is not None:
            return TypeRef(sql, builtin=spelling + ("[]" if array else ""), array=array)
        if names[0] == "pg_catalog":
            return TypeRef(sql, array=array)  # a built-in the bot does not spell
    name = from_name_list(type_name.names)
    user = find_user_type(name)
    if user is not None:
        return TypeRef(sql, user=user, array=array, written=name)
    return TypeRef(sql, user_name=name, array=array, written=name)


def _modifiers(type_name: ast.TypeName) -> tuple[int, ...] | None:
    values = []
    for modifier in type_name.typmods or ():
        value = getattr(modifier, "val", None)
        if not isinstance(value, ast.Integer):
            return None  # not a plain number: the bot does not spell it
        values.append(value.ival)
    return tuple(values)


def _builtin_spelling(name: str, modifiers: tuple[int, ...] | None) -> str | None:
    if modifiers is None:
        return None
    if name in SERIAL_TYPES:
        return SERIAL_TYPES[name] if not modifiers else None
    if name in _MODIFIED:
        return _with_modifiers(name, modifiers)
    if modifiers:
        return None
    return _BUILTIN.get(name)


def _with_modifiers(name: str, modifiers: tuple[int, ...]) -> str | None:
    prefix, suffix, default = _MODIFIED[name]
    if not modifiers and default is not None:
        modifiers = (default,)
    if name == "numeric" and len(modifiers) == 1:
        modifiers = (modifiers[0], 0)  # NUMERIC(p) is NUMERIC(p, 0)
    if len(modifiers) > (2 if name == "numeric" else 1):
        return None
    inner = f"({','.join(str(m) for m in modifiers)})" if modifiers else ""
    return f"{prefix}{inner}{suffix}"
