"""0006: where the bot's Slack copies are (bot/store/slack_rows.py): every approver's copy of
an approval request (a decision updates them all), and the incident channels the bot created
(one reused per environment, or one per operation to archive after it)."""

from __future__ import annotations

import sqlite3

import psycopg

from bot.store.migrations.sqlite_target import run_script

_TABLES = """
CREATE TABLE IF NOT EXISTS approval_copies (
    approval_id TEXT NOT NULL REFERENCES approvals(id),
    channel TEXT NOT NULL,
    ts TEXT NOT NULL,
    PRIMARY KEY (approval_id, channel)
);
CREATE TABLE IF NOT EXISTS bot_channels (
    channel TEXT PRIMARY KEY,
    environment TEXT NOT NULL,
    operation_id TEXT,
    reused INTEGER NOT NULL DEFAULT 0,
    created_at TEXT NOT NULL,
    archived_at TEXT
);
"""


def sqlite(conn: sqlite3.Connection) -> None:
    run_script(conn, _TABLES)


def postgres(conn: psycopg.Connection) -> None:
    conn.execute(_TABLES)
