"""Split a migration script into statements with PostgreSQL's own parser.

pglast wraps libpg_query, the parser of PostgreSQL itself, so a semicolon inside a string, a
dollar-quoted function body or a comment never splits a statement (no regular expressions
on SQL anywhere in the bot).
"""

from __future__ import annotations

from dataclasses import dataclass

from pglast import ast
from pglast.parser import ParseError

from bot.errors import UserError
from bot.sql.parse import parse_sql


@dataclass(frozen=True)
class Statement:
    """One statement of a script: its AST and its source text as written."""

    index: int  # 0-based position in the script
    text: str  # source text, without the trailing semicolon
    node: ast.Node  # the statement's AST (RawStmt.stmt)
    line: int  # 1-based line where it starts in the script


def split_statements(sql: str) -> tuple[Statement, ...]:
    """Statements of ``sql`` in order; a script that does not parse raises a UserError."""
    try:
        raw_statements = parse_sql(sql)
    except ParseError as exc:
        raise _parse_error(sql, exc) from exc
    # Line numbers by a running count from one statement to the next (statements come in
    # order): counting from the start of the script for every statement made a
    # 5,000-statement migration quadratic, and a per-character scan cost 0.05 s (bench/).
    statements, line, counted = [], 1, 0
    for index, raw in enumerate(raw_statements):
        # pglast reports stmt_location/stmt_len in characters, with leading comments and
        # whitespace already skipped; stmt_len 0 means "up to the end of the script" (the
        # last statement without a semicolon), as in PostgreSQL's RawStmt.
        start = raw.stmt_location or 0
        end = start + raw.stmt_len if raw.stmt_len else len(sql)
        line += sql.count("\n", counted, start)
        counted = start
        statements.append(Statement(index, sql[start:end].strip(), raw.stmt, line))
    return tuple(statements)


def _parse_error(sql: str, exc: ParseError) -> UserError:
    message = exc.args[0] if exc.args else str(exc)
    position = exc.args[1] if len(exc.args) > 1 else None
    where = ""
    if isinstance(position, int) and position >= 0:
        where = f" (line {sql.count(chr(10), 0, position) + 1})"
    return UserError(
        f"The SQL does not parse: {message}{where}.",
        "Fix the SQL so that PostgreSQL accepts it, then try again.",
    )
