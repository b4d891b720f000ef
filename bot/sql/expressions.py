"""Compare a default expression as written in a migration with the one in the catalog.

PostgreSQL stores a default with the casts it resolved (``'x'`` becomes ``'x'::text``,
``nextval('s')`` becomes ``nextval('s'::regclass)``, ``-1`` may come back as
``'-1'::integer``), so both sides are parsed with pglast, stripped of casts, their numeric
constants read as text, and printed again before comparing.
"""

from __future__ import annotations

from pglast import ast
from pglast.parser import ParseError
from pglast.stream import RawStream
from pglast.visitors import Visitor

from bot.sql.parse import parse_sql

# Casts nest ('x'::text::varchar) and the visitor does not revisit a replacement: a few
# passes reach the fixed point for anything a migration writes.
_MAX_PASSES = 5


class _StripCasts(Visitor):
    def visit_TypeCast(self, ancestors, node: ast.TypeCast) -> ast.Node:
        return node.arg

    def visit_A_Const(self, ancestors, node: ast.A_Const) -> ast.Node | None:
        value = node.val
        if isinstance(value, ast.Integer):
            return ast.A_Const(val=ast.String(sval=str(value.ival)))
        if isinstance(value, ast.Float):
            return ast.A_Const(val=ast.String(sval=value.fval))
        return None


def normalized_expression(expression_sql: str) -> str:
    """A cast-free, canonical printing of one SQL expression (the input if it does not parse)."""
    try:
        select = parse_sql(f"SELECT {expression_sql}")[0].stmt
    except ParseError:
        return expression_sql
    printed = RawStream()(select.targetList[0].val)
    for _ in range(_MAX_PASSES):
        _StripCasts()(select)
        again = RawStream()(select.targetList[0].val)
        if again == printed:
            break
        printed = again
    return printed


def same_expression(written_sql: str, catalog_sql: str) -> bool:
    return normalized_expression(written_sql) == normalized_expression(catalog_sql)
