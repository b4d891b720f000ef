"""The guard for typed SQL the bot applies as a script (a reverse migration, applied as
Prisma applies it: statements the server reads from one text).

The bot splits and analyses a script with PostgreSQL's own grammar (pglast), which lexes
strings with standard_conforming_strings on. A script that turns it off (or changes
backslash_quote or the client encoding) makes the server read the rest differently: a
string the bot saw could hide a COMMIT and a DELETE. Such a script is refused,
as is transaction control (Prisma runs a migration as one implicit transaction; a COMMIT
inside would split it); before applying, bot/sql/session.check_lexing checks the session.
"""

from __future__ import annotations

from collections.abc import Iterable

from pglast import ast

from bot.sql.allowlist import walk
from bot.sql.statements import Statement

# Settings that change how the server splits and reads SQL text (docs, 19.13.1 and 24.3).
LEXING_SETTINGS = frozenset(
    {"standard_conforming_strings", "backslash_quote", "client_encoding", "escape_string_warning"}
)


def migration_refusals(statements: Iterable[Statement]) -> list[str]:
    """What in a typed script the bot refuses to apply, one line per statement at fault."""
    found = []
    for statement in statements:
        why = _why(statement.node)
        if why:
            found.append(f"Line {statement.line}: {why}")
    return found


def _why(node: ast.Node) -> str | None:
    if isinstance(node, ast.TransactionStmt):
        return (
            "no BEGIN/COMMIT/ROLLBACK/SAVEPOINT; the bot runs the whole migration in one"
            " transaction."
        )
    for inner in walk(node):
        setting = _lexing_setting(inner)
        if setting:
            return (
                f"{setting} may not be changed: it changes how the server reads the rest of"
                " the SQL, which would then differ from what the bot checked."
            )
    return None


def _lexing_setting(node: ast.Node) -> str | None:
    if isinstance(node, ast.VariableSetStmt):
        name = (node.name or "").lower()
        if name in LEXING_SETTINGS or node.name is None:  # RESET ALL resets them too
            return name or "RESET ALL"
    if isinstance(node, ast.FuncCall) and node.funcname[-1].sval == "set_config":
        first = node.args[0] if node.args else None
        value = getattr(getattr(first, "val", None), "sval", None)
        # A name the bot cannot read (an expression) could be any of them.
        if value is None or value.lower() in LEXING_SETTINGS:
            return f"set_config({value or '...'})"
    return None
