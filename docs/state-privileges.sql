-- rollback-bot's state on PostgreSQL: the grants of the role the replicas connect as.
--
-- The tables are created (and later upgraded) by their owner: run the first
-- `rollback-bot serve` or `rollback-bot state migrate --to postgresql://OWNER@...` as the
-- owning role, then run this file as that owner. The replicas then connect as rollback_bot,
-- which reads and changes the state but may only append to the audit log: with these grants
-- an UPDATE, DELETE or TRUNCATE of audit fails with "permission denied", and the table's
-- trigger refuses them even to its owner.
--
--   CREATE ROLE rollback_bot LOGIN PASSWORD '...';   -- once, by an administrator
--   psql "postgresql://OWNER@HOST/rollback_state" -f docs/state-privileges.sql

GRANT USAGE ON SCHEMA public TO rollback_bot;
GRANT SELECT, INSERT, UPDATE
    ON operations, steps, approvals, checklist_items, decisions, scheduled_jobs, once_markers
    TO rollback_bot;
-- Where the bot's Slack messages are: cards edited later, approvers' copies of an approval
-- request, the incident channels it made (archived later).
GRANT SELECT, INSERT, UPDATE ON card_messages, approval_copies, bot_channels TO rollback_bot;
-- Request signatures and Slack event ids older than a day are pruned.
GRANT SELECT, INSERT, DELETE ON seen_events TO rollback_bot;
GRANT SELECT, INSERT ON audit TO rollback_bot;
-- The replicas read the schema version at start; only the owner migrates.
GRANT SELECT ON schema_version TO rollback_bot;
GRANT USAGE ON SEQUENCE audit_id_seq TO rollback_bot;
