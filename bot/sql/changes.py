"""What a statement changes in the schema, read from its AST alone (no database).

A statement yields one Change per effect: ``ALTER TABLE a ADD x, ADD y`` yields two,
``DROP TABLE a, b`` two, ``BEGIN`` none. The diagnosis checks each Change against the live
catalog; the reverse generator undoes it.
"""

from __future__ import annotations

from pglast import ast

from bot.sql.object_changes import OBJECT_READERS
from bot.sql.schema_change import (
    UNQUALIFIED_KINDS,
    Change,
    ChangeKind,
    ColumnSpec,
    deparse,
    other_change,
    resolved,
)
from bot.sql.table_changes import TABLE_READERS

__all__ = [
    "UNQUALIFIED_KINDS",
    "Change",
    "ChangeKind",
    "ColumnSpec",
    "changes_of",
    "deparse",
    "resolved",
]

_READERS = {**TABLE_READERS, **OBJECT_READERS}


def changes_of(node: ast.Node) -> tuple[Change, ...]:
    """The schema changes one statement makes, in the order PostgreSQL makes them."""
    # Session and transaction control (BEGIN, COMMIT, SET ...) and LOCK, which ends with
    # the transaction, change nothing in the schema.
    if isinstance(node, ast.TransactionStmt | ast.VariableSetStmt | ast.LockStmt):
        return ()
    reader = _READERS.get(type(node))
    if reader is None:
        return (other_change(node),)
    return tuple(reader(node))
