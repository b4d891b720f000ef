"""The one SQL parse of the bot: pglast's AST, built from libpg_query's JSON output.

``pglast.parse_sql`` builds its ``ast`` nodes through ``Node.__setattr__``, which
validates and coerces every attribute in Python: for a 5,000-statement migration that is
~0.5 s of CPU while libpg_query's own parse takes 0.02 s (bench/results.md, "Perf
follow-up"). ``parse_sql`` here asks the same libpg_query for the same parse tree as JSON
(``pglast.parser.parse_sql_json``: same parser, same ``PG_QUERY_PARSE_DEFAULT`` mode) and
builds the same ``pglast.ast`` classes with the same values, writing the slots directly.

Every parse of the bot goes through here (the SQL safety analysis of option 4 and the
reverse generator read these trees), so a different tree would be a security bug. The
rules are strict, and tests/unit/sql/test_parse_front.py proves the result equal to
pglast's own parse (every attribute, locations included) on every statement of the real
migration corpora and the unit-test SQL, and on generated statements:

- a node type pglast's ``ast`` does not define, a key that is not one of the class's
  slots, a C type this module has no rule for, an enum name the enum does not have, an
  enum field left out, a value of the wrong JSON type: the whole script is parsed again
  by ``pglast.parse_sql`` instead (``Unknown`` below), never guessed;
- libpg_query's JSON writer leaves out zero values (``pg_query_outfuncs_json.c``: NULL
  pointers and strings, false booleans, zero integers and locations, empty lists) and
  always writes enums; a left-out field gets the value pglast's ``create_*`` functions
  give the zero C value (None, False, 0, ``chr(0)``);
- locations are converted from UTF-8 byte offsets to character indexes with pglast's own
  ``Displacements``, exactly as ``pglast.parse_sql`` does;
- a script that does not parse is handed to ``pglast.parse_sql`` so the ``ParseError``
  (message and position) is pglast's own.
"""

from __future__ import annotations

import json
import keyword
import re
import textwrap
from collections.abc import Callable
from typing import Any

import pglast
from pglast import ast, enums
from pglast.parser import Displacements, ParseError, parse_sql_json

__all__ = ["ParseError", "Unknown", "parse_sql", "parse_sql_fast"]

# C integer types pglast stores as plain Python ints (pglast.ast's
# _fixup_attribute_types_in_slots); libpg_query writes them as JSON integers.
_INT_TYPES = frozenset(
    {
        *("int", "int16", "int32", "long", "uint32", "uint64", "bits32"),
        *("AclMode", "AttrNumber", "Index", "RelFileNumber", "SubTransactionId"),
    }
)


# libpg_query 18's JSON leaves out a string field that is NULL and one that is "" alike
# (COMMENT ON ... IS '' has no "comment" key; a String node's sval is always written). The
# parser makes "" only from an empty string literal ('', E'', U&'', $$$$, $tag$$tag$: a
# zero-length quoted identifier is a syntax error, the grammar assigns no "" constant, an
# escaped NUL is an error), so a script that may hold one goes to pglast. The pattern
# matches more than PostgreSQL's dollar-quote tags (any text between the dollars): a
# false match costs only speed.
_EMPTY_DOLLAR_QUOTE = re.compile(r"\$([^$]*)\$\$\1\$")


class Unknown(Exception):
    """Something the fast path has no exact rule for: parse with pglast instead."""


def parse_sql(sql: str) -> tuple[ast.RawStmt, ...]:
    """The statements of ``sql`` as ``pglast.parse_sql`` returns them (RawStmt nodes)."""
    try:
        return parse_sql_fast(sql)
    except (ParseError, Unknown):
        # Unknown: pglast's own parse. ParseError: pglast's own error, position included.
        return pglast.parse_sql(sql)


def parse_sql_fast(sql: str) -> tuple[ast.RawStmt, ...]:
    """The fast path alone: raises ``Unknown`` where ``parse_sql`` falls back to pglast
    (the proof tests use it to show the fast path itself builds pglast's tree)."""
    if "''" in sql or _EMPTY_DOLLAR_QUOTE.search(sql):
        raise Unknown("an empty string literal")
    return _Builder(sql).statements(json.loads(parse_sql_json(sql)))


class _Builder:
    """Builds one script's nodes; holds the byte-offset-to-character map for its text."""

    def __init__(self, sql: str) -> None:
        self.location = Displacements(sql)

    def statements(self, tree: Any) -> tuple[ast.RawStmt, ...]:
        if not isinstance(tree, dict) or not tree.keys() <= {"version", "stmts"}:
            raise Unknown(tree)
        result = []
        for raw in tree.get("stmts", ()):
            if not isinstance(raw, dict) or not raw.keys() <= {"stmt", "stmt_location", "stmt_len"}:
                raise Unknown(raw)
            start = _int(raw.get("stmt_location"))
            length = _int(raw.get("stmt_len"))
            node = _new(ast.RawStmt)
            _set(node, "stmt", self.node(raw["stmt"]) if "stmt" in raw else None)
            _set(node, "stmt_location", self.location(start))
            # pglast: offset_to_index(location + len) - offset_to_index(location)
            _set(node, "stmt_len", self.location(start + length) - self.location(start))
            result.append(node)
        return tuple(result)

    def node(self, wrapped: Any) -> Any:
        """A ``{"TypeName": {...}}`` value: a node, a List as a tuple, or {} for NULL."""
        if type(wrapped) is not dict or len(wrapped) > 1:
            raise Unknown(wrapped)
        if not wrapped:
            return None
        ((name, body),) = wrapped.items()
        if name == "List":
            if type(body) is not dict or not body.keys() <= {"items"}:
                raise Unknown(body)
            return self.items(body.get("items"))
        return self.body(name, body)

    def items(self, value: Any) -> tuple | None:
        if type(value) is not list:
            raise Unknown(value)
        return tuple([self.node(item) for item in value])

    def body(self, name: str, body: Any) -> ast.Node:
        """The node of type ``name`` from its fields (no ``{"Type": ...}`` wrapper)."""
        if type(body) is not dict:
            raise Unknown(body)
        build = _BUILDERS.get(name) or _builder_for(name)
        return build(self, body)


_new = object.__new__
_set = object.__setattr__  # the slot itself, without pglast's Node.__setattr__ checks
_BUILDERS: dict[str, Callable[[_Builder, dict], ast.Node]] = {}


def _int(value: Any) -> int:
    if value is None:
        return 0
    if type(value) is int:
        return value
    raise Unknown(value)


def _builder_for(name: str) -> Callable[[_Builder, dict], ast.Node]:
    cls = getattr(ast, name, None)
    if not (
        isinstance(cls, type) and issubclass(cls, ast.Node) and isinstance(cls.__slots__, dict)
    ):
        raise Unknown(name)  # a node type pglast does not define
    namespace = {"cls": cls, "new": _new, "set": _set, "Unknown": Unknown}
    source = _builder_source(cls, namespace)
    exec(compile(source, f"<bot.sql.parse builder for {name}>", "exec"), namespace)  # noqa: S102
    build = _BUILDERS[name] = namespace["build"]
    return build


def _builder_source(cls: type, namespace: dict) -> str:
    """A function that sets every slot of ``cls`` from a JSON body, one block per slot
    (generated once per class: a loop with a converter call per slot cost twice as much)."""
    code = "def build(b, body):\n    node = new(cls)\n    seen = 0\n"
    for index, (slot, info) in enumerate(cls.__slots__.items()):
        block = f"v = body.get({_json_key(slot)!r})\n"
        block += _slot_code(cls, slot, info.c_type, index, namespace)
        block += f"set(node, {slot!r}, v)\n"
        code += textwrap.indent(block, "    ")
    # A key that is not one of the class's slots: pglast would not have it; fall back.
    return code + "    if seen != len(body):\n        raise Unknown(body)\n    return node\n"


def _json_key(slot: str) -> str:
    """pglast renames a C field that is a Python keyword (``def`` -> ``def_``); the JSON
    keeps the C name."""
    if slot.endswith("_") and keyword.iskeyword(slot[:-1]):
        return slot[:-1]
    return slot


# Code that turns the JSON value ``v`` into pglast's value for a C field of each type and
# counts the keys it used. A left-out field is the zero C value: pglast's create_* gives
# None for pointers and strings, False, 0 and chr(0); an enum is always written. A
# Boolean node writes its boolval even when false (CREATE ROLE ... NOSUPERUSER).
_NODE_CODE = """\
if v is not None:
    seen += 1
    v = {call}
"""
_INVALID = """\
else:
    raise Unknown(v)
"""
_SCALAR_CODE = {
    "char*": "if type(v) is str:\n    seen += 1\nelif v is not None:\n    raise Unknown(v)\n",
    "bool": "if v is None:\n    v = False\nelif type(v) is bool:\n    seen += 1\n" + _INVALID,
    "int": "if v is None:\n    v = 0\nelif type(v) is int:\n    seen += 1\n" + _INVALID,
    "char": "if v is None:\n    v = chr(0)\nelif type(v) is str and len(v) == 1:\n    seen += 1\n"
    + _INVALID,
}
_SCALAR_CODE["ParseLoc"] = _SCALAR_CODE["int"] + "v = b.location(v)\n"
# An enum: a name pglast's enum does not have, or the field left out, falls back.
_ENUM_CODE = """\
v = {members}.get(v) if type(v) is str else None
if v is None:
    raise Unknown(v)
seen += 1
"""


def _slot_code(cls: type, slot: str, ctype: str, index: int, namespace: dict) -> str:
    if ctype == "List*":
        return _NODE_CODE.format(call="b.items(v)")
    if ctype in ("Node*", "Expr*"):
        return _NODE_CODE.format(call="b.node(v)")
    if ctype in _SCALAR_CODE or ctype in _INT_TYPES:
        return _SCALAR_CODE["int" if ctype in _INT_TYPES else ctype]
    if hasattr(enums, ctype):
        namespace[f"members{index}"] = getattr(enums, ctype).__members__
        return _ENUM_CODE.format(members=f"members{index}")
    target = getattr(ast, ctype[:-1], None) if ctype.endswith("*") else None
    if isinstance(target, type) and issubclass(target, ast.Node):
        # A pointer to one node type is written without the {"Type": ...} wrapper.
        return _NODE_CODE.format(call=f"b.body({ctype[:-1]!r}, v)")
    # No rule for this C type (planner-only fields: Bitmapset*, Cost, ...): even a
    # left-out field cannot be given pglast's value here.
    return f"raise Unknown({cls.__name__ + '.' + slot!r})\n"


# A_Const's value is a union that pglast stores as A_Const.val, one of the value nodes, and
# pglast's A_Const has no location slot (pglast's create_A_Const: isnull and val only).
_A_CONST_VALUES = {
    "ival": (ast.Integer, int, 0),
    "fval": (ast.Float, str, None),
    "boolval": (ast.Boolean, bool, False),
    "sval": (ast.String, str, None),
    "bsval": (ast.BitString, str, None),
}
_A_CONST_KEYS = frozenset({"isnull", "location", *_A_CONST_VALUES})


def _a_const(b: _Builder, body: dict) -> ast.A_Const:
    if not body.keys() <= _A_CONST_KEYS or type(body.get("location", 0)) is not int:
        raise Unknown(body)
    kinds = [kind for kind in _A_CONST_VALUES if kind in body]
    isnull = body.get("isnull", False)
    node = _new(ast.A_Const)
    if isnull is True and not kinds:
        _set(node, "isnull", True)
        _set(node, "val", None)
    elif "isnull" not in body and len(kinds) == 1:
        kind = kinds[0]
        cls, python_type, zero = _A_CONST_VALUES[kind]
        inner = body[kind]
        if type(inner) is not dict or not inner.keys() <= {kind}:
            raise Unknown(inner)
        value = inner.get(kind, zero)
        wrong_type = type(value) is not python_type or (python_type is bool and value is not True)
        if wrong_type and value is not zero:
            raise Unknown(inner)
        val = _new(cls)
        _set(val, kind, value)
        _set(node, "isnull", False)
        _set(node, "val", val)
    else:
        raise Unknown(body)
    return node


_BUILDERS["A_Const"] = _a_const
