-- A state database as the release before schema versioning (main at c8cde8a) wrote it:
-- bot/store/schema.py of that commit, with one drill operation, its audit records, a job
-- and a seen event written through its Store. `sqlite3 FILE < this` rebuilds it.
BEGIN TRANSACTION;
CREATE TABLE approvals (
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
CREATE TABLE audit (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    operation_id TEXT,
    at TEXT NOT NULL,
    actor TEXT NOT NULL,
    event TEXT NOT NULL,
    step_id TEXT,
    message TEXT NOT NULL DEFAULT '',
    detail TEXT NOT NULL DEFAULT '{}'
);
INSERT INTO "audit" VALUES(1,'op-20261201-a1b2c3','2026-12-02T01:03:47.628702Z','U_ALICE','started',NULL,'Drill started','{}');
INSERT INTO "audit" VALUES(2,'op-20261201-a1b2c3','2026-12-02T01:03:48.628702Z','rollback-bot','step_started','confirm_environment','Confirm','{"k": 1}');
INSERT INTO "audit" VALUES(3,NULL,'2026-12-02T01:03:49.628702Z','unknown','request_refused',NULL,'invalid signature','{}');
CREATE TABLE checklist_items (
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
INSERT INTO "checklist_items" VALUES('op-20261201-a1b2c3','before','backup',0,'Backup',0,NULL,NULL,0,NULL);
CREATE TABLE decisions (
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
CREATE TABLE once_markers (
    key TEXT PRIMARY KEY,
    at TEXT NOT NULL
);
CREATE TABLE operations (
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
INSERT INTO "operations" VALUES('op-20261201-a1b2c3','drill','staging','succeeded','U_ALICE','{"note": "x"}','Drill on staging','2026-12-02T01:03:47.628702Z','2026-12-02T01:03:50.628702Z','2026-12-02T01:03:50.628702Z','Done.',NULL,NULL,NULL,NULL,NULL,NULL);
CREATE TABLE scheduled_jobs (
    id TEXT PRIMARY KEY,
    operation_id TEXT,
    kind TEXT NOT NULL,
    run_at TEXT NOT NULL,
    payload TEXT NOT NULL DEFAULT '{}',
    done_at TEXT
);
INSERT INTO "scheduled_jobs" VALUES('job-1','op-20261201-a1b2c3','approval_expiry','2026-12-02T02:03:47.628702Z','{"approval_id": "apr-1"}',NULL);
CREATE TABLE seen_events (
    event_id TEXT PRIMARY KEY,
    seen_at TEXT NOT NULL
);
INSERT INTO "seen_events" VALUES('Ev123','2026-12-02T01:03:47.631282Z');
CREATE TABLE steps (
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
INSERT INTO "steps" VALUES('op-20261201-a1b2c3',0,'confirm_environment','Confirm',0,1,'pending',NULL,NULL,'',NULL,0);
INSERT INTO "steps" VALUES('op-20261201-a1b2c3',1,'rehearse_destructive_step','Rehearse',1,1,'pending',NULL,NULL,'',NULL,0);
CREATE UNIQUE INDEX one_active_operation_per_environment
    ON operations(environment) WHERE holds_environment = 1;
CREATE INDEX approvals_by_operation ON approvals(operation_id, step_id);
CREATE INDEX audit_by_operation ON audit(operation_id, id);
CREATE TRIGGER audit_is_append_only_update BEFORE UPDATE ON audit
    BEGIN SELECT RAISE(ABORT, 'audit is append-only'); END;
CREATE TRIGGER audit_is_append_only_delete BEFORE DELETE ON audit
    BEGIN SELECT RAISE(ABORT, 'audit is append-only'); END;
DELETE FROM "sqlite_sequence";
INSERT INTO "sqlite_sequence" VALUES('audit',3);
COMMIT;
