"""0003: the walker's lease on an operation (bot/store/leases.py): which replica walks it,
until when, and the fencing token checked when a step is claimed and its result recorded."""

from __future__ import annotations

import sqlite3

import psycopg

from bot.store.migrations.sqlite_target import columns

_COLUMNS = (
    ("lease_owner", "TEXT"),
    ("lease_token", "INTEGER NOT NULL DEFAULT 0"),
    ("lease_expires_at", "TEXT"),
)


def sqlite(conn: sqlite3.Connection) -> None:
    have = columns(conn, "operations")
    for name, definition in _COLUMNS:
        if name not in have:
            conn.execute(f"ALTER TABLE operations ADD COLUMN {name} {definition}")


def postgres(conn: psycopg.Connection) -> None:
    for name, definition in _COLUMNS:
        conn.execute(f"ALTER TABLE operations ADD COLUMN IF NOT EXISTS {name} {definition}")
