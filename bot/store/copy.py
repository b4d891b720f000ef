"""``rollback-bot state migrate``: the whole state copied from one store to another (SQLite
to PostgreSQL when a team moves to more than one replica), in one transaction on the
target, refused when the target already holds any state.

Every row is copied as it is (audit ids included, so the log reads the same), except the
walkers' leases: the process that held them is stopped, so a replica of the new store may
take them at once.
"""

from __future__ import annotations

from bot.errors import ConfigError
from bot.store.sqlite import Store

# Parents before children (the foreign keys).
TABLES = (
    "operations",
    "steps",
    "approvals",
    "checklist_items",
    "decisions",
    "audit",
    "scheduled_jobs",
    "seen_events",
    "once_markers",
    "card_messages",
    "approval_copies",
    "bot_channels",
)
# Written by each database's own migrations, not copied: the target has its own.
NOT_COPIED = frozenset({"schema_version"})
_NO_LEASE = {"lease_owner": None, "lease_expires_at": None}


def copy_state(source: Store, target: Store) -> dict[str, int]:
    """Copies every table; how many rows each had. Nothing is written when the target
    already holds state (ConfigError saying so), or when the source holds a table this
    version does not know how to copy (a state from a newer release)."""
    unknown = source.table_names() - set(TABLES) - NOT_COPIED
    if unknown:
        raise ConfigError(
            "the source state holds tables this version does not copy"
            f" ({', '.join(sorted(unknown))}): run `state migrate` with the release that"
            " wrote it (nothing was copied)."
        )
    held = [t for t in TABLES if target._query(f"SELECT 1 FROM {t} LIMIT 1")]
    if held:
        raise ConfigError(
            f"the target state database already holds {', '.join(held)}: migrate into an"
            " empty database (nothing was copied)."
        )
    counts = {}
    with target.transaction() as db:
        for table in TABLES:
            rows = source._query(f"SELECT * FROM {table}")
            for row in rows:
                db.insert(table, row | _NO_LEASE if table == "operations" else row)
            counts[table] = len(rows)
        for statement in target.after_copy:
            db.execute(statement)
    return counts
