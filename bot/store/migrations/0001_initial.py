"""0001: the state schema as releases before schema versioning left it.

Every statement is ``IF NOT EXISTS`` and the one column added before versioning is added
when missing, so a file written by any earlier release ends here the same as a new one.

On PostgreSQL (more than one replica) the same tables, columns and rules; types follow the
SQLite tables so one set of statements (bot/store/sqlite.py) serves both: timestamps are the
store's ISO text (it sorts as time does), flags 0/1 integers.
"""

from __future__ import annotations

import sqlite3

import psycopg

from bot.store.migrations.sqlite_target import columns, run_script

SQLITE_SCHEMA = """
CREATE TABLE IF NOT EXISTS operations (
    id TEXT PRIMARY KEY,
    runbook TEXT NOT NULL,
    environment TEXT NOT NULL,
    status TEXT NOT NULL,
    requester TEXT NOT NULL,
    params TEXT NOT NULL DEFAULT '{}',
    summary TEXT NOT NULL DEFAULT '',
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    finished_at TEXT,
    result TEXT,
    -- 1 while the operation holds its environment; the partial unique index below
    -- makes "one active operation per environment" a database rule, not a hope.
    holds_environment INTEGER,
    incident_channel TEXT,
    status_ts TEXT,
    notify_channel TEXT,
    notify_ts TEXT,
    cancel_requested_by TEXT
);
CREATE UNIQUE INDEX IF NOT EXISTS one_active_operation_per_environment
    ON operations(environment) WHERE holds_environment = 1;
CREATE TABLE IF NOT EXISTS steps (
    operation_id TEXT NOT NULL REFERENCES operations(id),
    position INTEGER NOT NULL,
    step_id TEXT NOT NULL,
    title TEXT NOT NULL,
    destructive INTEGER NOT NULL,
    idempotent INTEGER NOT NULL,
    status TEXT NOT NULL DEFAULT 'pending',
    started_at TEXT,
    finished_at TEXT,
    detail TEXT NOT NULL DEFAULT '',
    error TEXT,
    attempts INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (operation_id, step_id)
);
CREATE TABLE IF NOT EXISTS approvals (
    id TEXT PRIMARY KEY,
    operation_id TEXT NOT NULL REFERENCES operations(id),
    step_id TEXT NOT NULL,
    plan_text TEXT NOT NULL,
    plan_hash TEXT NOT NULL,
    requested_by TEXT NOT NULL,
    requested_at TEXT NOT NULL,
    expires_at TEXT NOT NULL,
    status TEXT NOT NULL,
    decided_by TEXT,
    decided_at TEXT,
    channel TEXT,
    message_ts TEXT
);
CREATE INDEX IF NOT EXISTS approvals_by_operation ON approvals(operation_id, step_id);
CREATE TABLE IF NOT EXISTS checklist_items (
    operation_id TEXT NOT NULL REFERENCES operations(id),
    checklist TEXT NOT NULL,
    item_id TEXT NOT NULL,
    position INTEGER NOT NULL,
    label TEXT NOT NULL,
    checked INTEGER NOT NULL DEFAULT 0,
    checked_by TEXT,
    checked_at TEXT,
    by_bot INTEGER NOT NULL DEFAULT 0,
    note TEXT,
    PRIMARY KEY (operation_id, checklist, item_id)
);
CREATE TABLE IF NOT EXISTS audit (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    operation_id TEXT,
    at TEXT NOT NULL,
    actor TEXT NOT NULL,
    event TEXT NOT NULL,
    step_id TEXT,
    message TEXT NOT NULL DEFAULT '',
    detail TEXT NOT NULL DEFAULT '{}'
);
CREATE INDEX IF NOT EXISTS audit_by_operation ON audit(operation_id, id);
CREATE TRIGGER IF NOT EXISTS audit_is_append_only_update BEFORE UPDATE ON audit
    BEGIN SELECT RAISE(ABORT, 'audit is append-only'); END;
CREATE TRIGGER IF NOT EXISTS audit_is_append_only_delete BEFORE DELETE ON audit
    BEGIN SELECT RAISE(ABORT, 'audit is append-only'); END;
CREATE TABLE IF NOT EXISTS scheduled_jobs (
    id TEXT PRIMARY KEY,
    operation_id TEXT,
    kind TEXT NOT NULL,
    run_at TEXT NOT NULL,
    payload TEXT NOT NULL DEFAULT '{}',
    done_at TEXT
);
CREATE TABLE IF NOT EXISTS decisions (
    id TEXT PRIMARY KEY,
    operation_id TEXT NOT NULL REFERENCES operations(id),
    step_id TEXT NOT NULL,
    prompt TEXT NOT NULL,
    choices TEXT NOT NULL,
    default_choice TEXT NOT NULL,
    status TEXT NOT NULL,
    asked_at TEXT NOT NULL,
    expires_at TEXT NOT NULL,
    choice TEXT,
    decided_by TEXT,
    decided_at TEXT,
    channel TEXT,
    message_ts TEXT
);
-- Slack event ids and request signatures, for de-duplication: pruned after a day.
CREATE TABLE IF NOT EXISTS seen_events (
    event_id TEXT PRIMARY KEY,
    seen_at TEXT NOT NULL
);
-- Things that happen once per operation ("checklist complete"): kept for good, unlike
-- seen_events.
CREATE TABLE IF NOT EXISTS once_markers (
    key TEXT PRIMARY KEY,
    at TEXT NOT NULL
);
"""


def sqlite(conn: sqlite3.Connection) -> None:
    run_script(conn, SQLITE_SCHEMA)
    # Added after the first release; SQLite has no ADD COLUMN IF NOT EXISTS.
    if "cancel_requested_by" not in columns(conn, "operations"):
        conn.execute("ALTER TABLE operations ADD COLUMN cancel_requested_by TEXT")
    # Before once_markers, "checklist complete" markers were kept in seen_events.
    conn.execute(
        "INSERT OR IGNORE INTO once_markers (key, at) SELECT event_id, seen_at FROM seen_events"
        " WHERE event_id LIKE 'checklist-complete:%'"
    )


POSTGRES_SCHEMA = """
CREATE TABLE IF NOT EXISTS operations (
    id TEXT PRIMARY KEY,
    runbook TEXT NOT NULL,
    environment TEXT NOT NULL,
    status TEXT NOT NULL,
    requester TEXT NOT NULL,
    params TEXT NOT NULL DEFAULT '{}',
    summary TEXT NOT NULL DEFAULT '',
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    finished_at TEXT,
    result TEXT,
    holds_environment INTEGER,
    incident_channel TEXT,
    status_ts TEXT,
    notify_channel TEXT,
    notify_ts TEXT,
    cancel_requested_by TEXT
);
CREATE UNIQUE INDEX IF NOT EXISTS one_active_operation_per_environment
    ON operations(environment) WHERE holds_environment = 1;
CREATE TABLE IF NOT EXISTS steps (
    operation_id TEXT NOT NULL REFERENCES operations(id),
    position INTEGER NOT NULL,
    step_id TEXT NOT NULL,
    title TEXT NOT NULL,
    destructive INTEGER NOT NULL,
    idempotent INTEGER NOT NULL,
    status TEXT NOT NULL DEFAULT 'pending',
    started_at TEXT,
    finished_at TEXT,
    detail TEXT NOT NULL DEFAULT '',
    error TEXT,
    attempts INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (operation_id, step_id)
);
CREATE TABLE IF NOT EXISTS approvals (
    id TEXT PRIMARY KEY,
    operation_id TEXT NOT NULL REFERENCES operations(id),
    step_id TEXT NOT NULL,
    plan_text TEXT NOT NULL,
    plan_hash TEXT NOT NULL,
    requested_by TEXT NOT NULL,
    requested_at TEXT NOT NULL,
    expires_at TEXT NOT NULL,
    status TEXT NOT NULL,
    decided_by TEXT,
    decided_at TEXT,
    channel TEXT,
    message_ts TEXT
);
CREATE INDEX IF NOT EXISTS approvals_by_operation ON approvals(operation_id, step_id);
CREATE TABLE IF NOT EXISTS checklist_items (
    operation_id TEXT NOT NULL REFERENCES operations(id),
    checklist TEXT NOT NULL,
    item_id TEXT NOT NULL,
    position INTEGER NOT NULL,
    label TEXT NOT NULL,
    checked INTEGER NOT NULL DEFAULT 0,
    checked_by TEXT,
    checked_at TEXT,
    by_bot INTEGER NOT NULL DEFAULT 0,
    note TEXT,
    PRIMARY KEY (operation_id, checklist, item_id)
);
CREATE TABLE IF NOT EXISTS audit (
    id BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
    operation_id TEXT,
    at TEXT NOT NULL,
    actor TEXT NOT NULL,
    event TEXT NOT NULL,
    step_id TEXT,
    message TEXT NOT NULL DEFAULT '',
    detail TEXT NOT NULL DEFAULT '{}'
);
CREATE INDEX IF NOT EXISTS audit_by_operation ON audit(operation_id, id);
CREATE TABLE IF NOT EXISTS scheduled_jobs (
    id TEXT PRIMARY KEY,
    operation_id TEXT,
    kind TEXT NOT NULL,
    run_at TEXT NOT NULL,
    payload TEXT NOT NULL DEFAULT '{}',
    done_at TEXT
);
CREATE TABLE IF NOT EXISTS decisions (
    id TEXT PRIMARY KEY,
    operation_id TEXT NOT NULL REFERENCES operations(id),
    step_id TEXT NOT NULL,
    prompt TEXT NOT NULL,
    choices TEXT NOT NULL,
    default_choice TEXT NOT NULL,
    status TEXT NOT NULL,
    asked_at TEXT NOT NULL,
    expires_at TEXT NOT NULL,
    choice TEXT,
    decided_by TEXT,
    decided_at TEXT,
    channel TEXT,
    message_ts TEXT
);
CREATE TABLE IF NOT EXISTS seen_events (
    event_id TEXT PRIMARY KEY,
    seen_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS once_markers (
    key TEXT PRIMARY KEY,
    at TEXT NOT NULL
);
"""

# The audit log is append-only for every role, its owner included: UPDATE and DELETE are
# refused row by row, TRUNCATE by statement. (The grants in docs/state-privileges.sql keep
# the replicas' own role from even trying.)
POSTGRES_AUDIT_RULES = """
CREATE OR REPLACE FUNCTION audit_is_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'audit is append-only';
END $$;
DROP TRIGGER IF EXISTS audit_is_append_only_row ON audit;
CREATE TRIGGER audit_is_append_only_row BEFORE UPDATE OR DELETE ON audit
    FOR EACH ROW EXECUTE FUNCTION audit_is_append_only();
DROP TRIGGER IF EXISTS audit_is_append_only_truncate ON audit;
CREATE TRIGGER audit_is_append_only_truncate BEFORE TRUNCATE ON audit
    FOR EACH STATEMENT EXECUTE FUNCTION audit_is_append_only();
"""


def postgres(conn: psycopg.Connection) -> None:
    conn.execute(POSTGRES_SCHEMA)
    conn.execute(POSTGRES_AUDIT_RULES)
