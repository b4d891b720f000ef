"""0005: an index on operations by creation time, newest first: `/rollback history` and App
Home list the newest operations (``Store.operations``: ORDER BY created_at DESC, id DESC
LIMIT n), which without it read and sorted every operation ever run (bench/results.md: 10,000
operations)."""

from __future__ import annotations

from typing import Any

_INDEX = "CREATE INDEX IF NOT EXISTS operations_by_time ON operations(created_at DESC, id DESC)"


def sqlite(conn: Any) -> None:
    conn.execute(_INDEX)


def postgres(conn: Any) -> None:
    conn.execute(_INDEX)
