"""Option 4's allow-list, read from the text alone (no database)."""

from __future__ import annotations

import pytest
from pglast import parse_sql

from bot.sql.allowlist import data_changes, statement_calls
from bot.sql.manual import ManualSqlError, analyse
from tests.faults.hostile_sql import HOSTILE_SQL, HOSTILE_VERIFICATION

STAMP = "20251208_120000"


def test_the_hostile_corpus_has_over_100_statements_that_all_parse():
    assert len(HOSTILE_SQL) + len(HOSTILE_VERIFICATION) >= 150
    for sql in HOSTILE_SQL:
        parse_sql(sql)


@pytest.mark.parametrize("sql", HOSTILE_SQL, ids=lambda s: " ".join(s.split())[-60:])
def test_every_hostile_statement_is_refused_with_why_and_what_to_do(sql):
    with pytest.raises(ManualSqlError) as error:
        analyse(sql, stamp=STAMP)
    assert error.value.field == "sql"
    message = error.value.message
    assert message.startswith("Not run:") and "Instead:" in message
    assert "statement" in message and "line" in message


@pytest.mark.parametrize("query", HOSTILE_VERIFICATION)
def test_every_hostile_verification_query_is_refused(query):
    with pytest.raises(ManualSqlError) as error:
        analyse("SELECT 1", query, stamp=STAMP)
    assert error.value.field == "verification"


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT * FROM users WHERE id = 1",
        "INSERT INTO users (id, email) VALUES (1, 'a') ON CONFLICT DO NOTHING",
        "INSERT INTO users SELECT * FROM users_backup_20251208_120000",
        "UPDATE users SET email = lower(email), token = gen_random_uuid() WHERE id < 10",
        "DELETE FROM users u USING orgs o WHERE u.org_id = o.id AND o.closed",
        "WITH gone AS (DELETE FROM users WHERE id = 1 RETURNING id) SELECT count(*) FROM gone",
        "TRUNCATE users RESTART IDENTITY CASCADE",
        "ALTER TABLE users DROP COLUMN legacy, ADD COLUMN x int DEFAULT 0",
        "ALTER TABLE users ALTER COLUMN email SET NOT NULL",
        "ALTER TABLE users ADD CONSTRAINT u UNIQUE (email)",
        "ALTER TABLE users ALTER COLUMN id TYPE bigint",
        "CREATE TABLE t (id int PRIMARY KEY, at timestamptz DEFAULT now())",
        "CREATE TABLE t AS SELECT * FROM users",
        "CREATE INDEX i ON users (lower(email))",
        "CREATE UNIQUE INDEX IF NOT EXISTS i ON users (email)",
        "DROP TABLE IF EXISTS old_users CASCADE",
        "DROP INDEX IF EXISTS i",
        "DROP VIEW v",
        "DROP TYPE status",
        "CREATE TYPE status AS ENUM ('a', 'b')",
        "ALTER TYPE status ADD VALUE 'c'",
        "ALTER TYPE status RENAME VALUE 'a' TO 'z'",
        "CREATE TYPE pair AS (a int, b int)",
        "CREATE OR REPLACE VIEW v AS SELECT id FROM users",
        "ALTER TABLE users RENAME TO people",
        "ALTER TABLE users RENAME COLUMN email TO mail",
        "ALTER INDEX i RENAME TO j",
        "ALTER TABLE users RENAME CONSTRAINT c TO d",
    ],
)
def test_what_a_rollback_needs_is_accepted(sql):
    analyse(sql, stamp=STAMP)


def test_each_data_modifying_with_query_is_a_part():
    node = parse_sql(
        "WITH a AS (DELETE FROM x WHERE id = 1 RETURNING id),"
        " b AS (UPDATE y SET v = 1 WHERE id IN (SELECT id FROM a) RETURNING id),"
        " c AS (SELECT 1)"
        " INSERT INTO z SELECT id FROM b"
    )[0].stmt
    assert [p.label() for p in data_changes(node)] == [
        "WITH a: DELETE x",
        "WITH b: UPDATE y",
        "INSERT z",
    ]


def test_calls_are_collected_everywhere_and_predicates_apart():
    node = parse_sql(
        "UPDATE t SET v = gen_random_uuid(), w = x::mood"
        " WHERE id IN (SELECT f(id) FROM u WHERE a @@ b) RETURNING g(v)"
    )[0].stmt
    calls = statement_calls(node)
    assert calls.functions == {(None, "gen_random_uuid"), (None, "f"), (None, "g")}
    assert calls.in_predicates == {(None, "f")}
    assert (None, "@@") in calls.operators and (None, "=") in calls.operators
    assert calls.types == {(None, "mood")}
