"""Migration names typed by a person, checked before anything uses them.

A name must equal, character for character, a migration directory or a history row. Only
that exact name (taken from the directory listing or the database, never the typed text)
goes on to the writes, which pass it as a query parameter.
"""

from __future__ import annotations

import difflib

from bot.errors import NotFound
from bot.prisma.status import MigrationStatus

_SHOWN_CHARS = 80  # a pasted SQL statement should not flood the error message
_CLOSEST = 3


def resolve_migration_name(name: str, status: MigrationStatus) -> str:
    """The known migration named exactly ``name``; otherwise a NotFound listing the closest
    names (typos, partial names, SQL-looking text and ``../`` paths all end here)."""
    known = status.known_names
    if name in known:
        return known[known.index(name)]
    raise NotFound(f"There is no migration named `{_shown(name)}`.", _suggestion(name, known))


def _shown(name: str) -> str:
    printable = "".join(c if c.isprintable() and c != "`" else "?" for c in name)
    return printable if len(printable) <= _SHOWN_CHARS else printable[:_SHOWN_CHARS] + "…"


def _suggestion(name: str, known: tuple[str, ...]) -> str:
    if not known:
        return "This environment has no migrations at all."
    closest = difflib.get_close_matches(name, known, n=_CLOSEST, cutoff=0.3)
    if closest:
        return "Did you mean: " + ", ".join(f"`{n}`" for n in closest) + "?"
    latest = known[-_CLOSEST:]
    return "Use the whole directory name, e.g. one of the latest: " + ", ".join(
        f"`{n}`" for n in latest
    )
