"""The Change of a DO block, described by what its PL/pgSQL runs (bot.sql.do_blocks)."""

from __future__ import annotations

from pglast import ast

from bot.sql.do_blocks import DoBlock, read_do_block
from bot.sql.names import QualifiedName
from bot.sql.schema_change import Change, ChangeKind
from bot.text import plural

_NAMED_AT_MOST = 5


def do_block_change(node: ast.DoStmt) -> list[Change]:
    described = what_it_does(read_do_block(node))
    return [Change(ChangeKind.DO_BLOCK, QualifiedName(None, "DO block"), f"DO block ({described})")]


def what_it_does(block: DoBlock) -> str:
    """'ALTER TABLE ... ADD COLUMN "RuntimeEnvironment".shortcode; UPDATE
    "RuntimeEnvironment"; CREATE UNIQUE INDEX ... (under a condition)'."""
    from bot.sql.changes import changes_of  # changes imports this module's reader

    if block.unreadable:
        return block.unreadable
    parts = []
    for statement in block.statements:
        if statement.node is None:
            parts.append("a statement the bot cannot parse")
            continue
        text = ", ".join(c.description for c in changes_of(statement.node)) or "no schema change"
        parts.append(text + (" (under a condition)" if statement.conditional else ""))
    if len(parts) > _NAMED_AT_MOST:
        parts = [
            *parts[:_NAMED_AT_MOST],
            f"{plural(len(parts) - _NAMED_AT_MOST, 'more statement')}",
        ]
    if block.dynamic:
        parts.append("SQL built at run time, which the bot cannot see")
    if block.raises:
        parts.append("raises an error on purpose under a condition")
    return "; ".join(parts) or "nothing the bot can see"
