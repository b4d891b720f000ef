"""0004: ``card_messages``: where a card that is edited later was posted (PITR's cleanup card
and switch card: an undo of the switch edits both, so neither offers a deletion)."""

from __future__ import annotations

from typing import Any

_TABLE = """CREATE TABLE IF NOT EXISTS card_messages (
    key TEXT PRIMARY KEY,
    channel TEXT NOT NULL,
    ts TEXT NOT NULL
)"""


def sqlite(conn: Any) -> None:
    conn.execute(_TABLE)


def postgres(conn: Any) -> None:
    conn.execute(_TABLE)
