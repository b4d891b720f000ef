"""What a ``DO $$ ... $$`` block does, where its PL/pgSQL can be read.

A DO block is procedural code: the bot never reverses it. But a reason that says only "a
data change" is wrong when the block adds a column and an index; pglast parses PL/pgSQL
(libpg_query's plpgsql parser), so the statements the block runs can be named, with whether
they run every time (top level) or only under a condition (IF, CASE, a loop, a block that
catches errors). ``EXECUTE 'constant SQL'`` is read like a static statement; ``EXECUTE`` of a
string built at run time cannot be seen and says so.
"""

from __future__ import annotations

from dataclasses import dataclass

from pglast import ast, parse_plpgsql
from pglast.parser import ParseError

from bot.sql.parse import parse_sql

# Keys of PL/pgSQL statements whose nested statements run only under a condition.
_CONDITIONAL = frozenset(
    {
        "PLpgSQL_stmt_if",
        "PLpgSQL_stmt_case",
        "PLpgSQL_stmt_loop",
        "PLpgSQL_stmt_while",
        "PLpgSQL_stmt_fori",
        "PLpgSQL_stmt_fors",
        "PLpgSQL_stmt_forc",
        "PLpgSQL_stmt_foreach_a",
        "PLpgSQL_stmt_dynfors",
    }
)
_ERROR_LEVEL = 21  # elog.h ERROR: RAISE EXCEPTION
_QUOTE_TAG = "$rollback_bot_do$"


@dataclass(frozen=True)
class BlockStatement:
    sql: str
    node: ast.Node | None  # None: it does not parse on its own
    conditional: bool  # it runs only under a condition (or may be rolled back by a handler)


@dataclass(frozen=True)
class DoBlock:
    statements: tuple[BlockStatement, ...] = ()
    dynamic: bool = False  # EXECUTE of SQL built at run time: not visible
    raises: bool = False  # RAISE EXCEPTION: it stops the migration on purpose when...
    unreadable: str | None = None  # why the body could not be read at all


def read_do_block(node: ast.DoStmt) -> DoBlock:
    body, language = None, "plpgsql"
    for option in node.args or ():
        if option.defname == "as":
            body = option.arg.sval
        elif option.defname == "language":
            language = option.arg.sval.lower()
    if body is None or language != "plpgsql" or _QUOTE_TAG in body:
        return DoBlock(unreadable=f"a {language} block the bot cannot read")
    try:
        tree = parse_plpgsql(f"DO {_QUOTE_TAG}{body}{_QUOTE_TAG}")
    except ParseError as exc:
        return DoBlock(unreadable=f"its body does not parse ({exc})")
    walker = _Walker()
    walker.walk(tree, conditional=False)
    return DoBlock(tuple(walker.statements), walker.dynamic, walker.raises)


class _Walker:
    def __init__(self) -> None:
        self.statements: list[BlockStatement] = []
        self.dynamic = False
        self.raises = False

    def walk(self, tree: object, conditional: bool) -> None:
        if isinstance(tree, list):
            for item in tree:
                self.walk(item, conditional)
        elif isinstance(tree, dict):
            for key, value in tree.items():
                self._visit(key, value, conditional)

    def _visit(self, key: str, value: object, conditional: bool) -> None:
        if key == "PLpgSQL_stmt_block" and isinstance(value, dict) and "exceptions" in value:
            conditional = True  # a handler rolls the block's statements back
        elif key in _CONDITIONAL:
            conditional = True
        if key == "PLpgSQL_stmt_execsql":
            self._add(value["sqlstmt"]["PLpgSQL_expr"]["query"], conditional)
        elif key == "PLpgSQL_stmt_perform":
            self._add(value["expr"]["PLpgSQL_expr"]["query"], conditional)
        elif key == "PLpgSQL_stmt_fors":
            self._add(value["query"]["PLpgSQL_expr"]["query"], conditional)
        elif key == "PLpgSQL_stmt_dynexecute":
            self._dynamic(value["query"]["PLpgSQL_expr"]["query"], conditional)
        elif key == "PLpgSQL_stmt_raise" and value.get("elog_level", _ERROR_LEVEL) >= _ERROR_LEVEL:
            self.raises = True
        self.walk(value, conditional)

    def _add(self, sql: str, conditional: bool) -> None:
        try:
            parsed = parse_sql(sql)
        except ParseError:
            parsed = ()
        node = parsed[0].stmt if len(parsed) == 1 else None
        self.statements.append(BlockStatement(sql.strip(), node, conditional))

    def _dynamic(self, expression: str, conditional: bool) -> None:
        constant = _string_constant(expression)
        if constant is None:
            self.dynamic = True
            return
        self._add(constant, conditional)


def _string_constant(expression: str) -> str | None:
    try:
        (select,) = parse_sql(f"SELECT {expression}")
    except (ParseError, ValueError):
        return None
    value = select.stmt.targetList[0].val
    if isinstance(value, ast.A_Const) and isinstance(value.val, ast.String):
        return value.val.sval
    return None
