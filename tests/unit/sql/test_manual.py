"""Manual SQL analysis, dry run, backups and the held transaction, against a real
PostgreSQL."""

from __future__ import annotations

import threading
import time

import psycopg
import pytest

from bot.sql.manual import (
    IDENTIFIER_MAX_BYTES,
    ManualSqlError,
    SqlRunError,
    Timeouts,
    analyse,
    apply,
    dry_run,
)

STAMP = "20251208_120000"
TIMEOUTS = Timeouts("2s", "5s")

SCHEMA = """
CREATE TABLE users (id int PRIMARY KEY, email text NOT NULL, legacy text,
    CONSTRAINT email_not_blank CHECK (email <> ''));
INSERT INTO users SELECT n, 'u' || n || '@example.com', 'old-' || n FROM generate_series(1, 20) n;
CREATE TABLE audit_log (at int, note text);
INSERT INTO audit_log SELECT n, 'note ' || n FROM generate_series(1, 8) n;
"""


@pytest.fixture
def db(conn: psycopg.Connection) -> psycopg.Connection:
    conn.execute(SCHEMA)
    return conn


@pytest.fixture
def tx(pg_url: str):
    """A connection like the bot's: autocommit off, so the bot's statements share one
    transaction."""
    with psycopg.connect(pg_url, autocommit=False, application_name="manual-sql-test") as c:
        yield c


def row_hashes(conn: psycopg.Connection) -> dict[str, str]:
    tables = [
        r[0]
        for r in conn.execute(
            "SELECT relname FROM pg_class WHERE relkind = 'r' AND relnamespace ="
            " 'public'::regnamespace ORDER BY 1"
        )
    ]
    return {
        t: conn.execute(
            f"SELECT md5(coalesce(string_agg(t::text, ',' ORDER BY t::text), '')) FROM \"{t}\" t"
        ).fetchone()[0]
        for t in tables
    }


def state(conn, catalog_snapshot):
    return catalog_snapshot(), row_hashes(conn)


# --- analysis -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("sql", "words"),
    [
        ("BEGIN; DELETE FROM users WHERE id = 1", "BEGIN/COMMIT/ROLLBACK"),
        ("DELETE FROM users WHERE id = 1; COMMIT", "BEGIN/COMMIT/ROLLBACK"),
        ("ROLLBACK", "BEGIN/COMMIT/ROLLBACK"),
        ("SAVEPOINT s", "BEGIN/COMMIT/ROLLBACK"),
        ("START TRANSACTION", "BEGIN/COMMIT/ROLLBACK"),
        ("CREATE INDEX CONCURRENTLY i ON users (email)", "CREATE INDEX CONCURRENTLY cannot run"),
        ("DROP INDEX CONCURRENTLY i", "DROP INDEX CONCURRENTLY cannot run"),
        ("REINDEX TABLE CONCURRENTLY users", "REINDEX CONCURRENTLY cannot run"),
        ("VACUUM users", "VACUUM cannot run"),
        ("CREATE DATABASE x", "CREATE DATABASE cannot run"),
        ("ALTER SYSTEM SET work_mem = '8MB'", "ALTER SYSTEM cannot run"),
        ("SET statement_timeout = 0", "SET/RESET statement_timeout"),
        ("COPY users FROM STDIN", "COPY FROM STDIN"),
    ],
)
def test_refuses_what_cannot_run_in_the_bots_transaction(sql, words):
    with pytest.raises(ManualSqlError) as error:
        analyse(sql, stamp=STAMP)
    assert error.value.field == "sql"
    assert words in error.value.message
    assert "statement" in error.value.message and "line 1" in error.value.message


@pytest.mark.parametrize(
    ("sql", "words"),
    [
        ("", "no SQL statement"),
        ("-- only a comment\n/* and another */", "no SQL statement"),
        ("SELECT 1;" * 400, "Slack's limit is 3000"),
    ],
)
def test_refuses_empty_comment_only_and_too_long_sql(sql, words):
    with pytest.raises(ManualSqlError, match=words):
        analyse(sql, stamp=STAMP)


def test_a_syntax_error_names_pglasts_message_and_position():
    with pytest.raises(ManualSqlError) as error:
        analyse("DELETE FROM users WHERE id = 1;\n  UPDAT users SET email = 'x'", stamp=STAMP)
    assert 'syntax error at or near "UPDAT"' in error.value.message
    assert "line 2, column 3" in error.value.message


@pytest.mark.parametrize(
    "query",
    [
        "DELETE FROM users",
        "SELECT 1; SELECT 2",
        "SELECT * INTO copy FROM users",
        "WITH gone AS (DELETE FROM users RETURNING *) SELECT * FROM gone",
    ],
)
def test_the_verification_query_must_be_one_read_only_select(query):
    with pytest.raises(ManualSqlError) as error:
        analyse("SELECT 1", query, stamp=STAMP)
    assert error.value.field == "verification"


@pytest.mark.parametrize(
    ("sql", "effect", "backup_kinds"),
    [
        ("DROP TABLE users", "destructive", ["table"]),
        ("TRUNCATE users, audit_log", "destructive", ["table", "table"]),
        ("ALTER TABLE users DROP COLUMN legacy", "destructive", ["columns"]),
        ("ALTER TABLE users DROP CONSTRAINT email_not_blank", "destructive", []),
        ("DELETE FROM users", "destructive", ["table"]),
        ("UPDATE users SET legacy = NULL", "destructive", ["table"]),
        ("DELETE FROM users WHERE id > 10", "changes data", ["rows"]),
        ("UPDATE users SET legacy = NULL WHERE id = 3", "changes data", ["rows"]),
        ("DROP INDEX users_pkey", "destructive", []),
        ("INSERT INTO audit_log VALUES (9, 'x')", "changes data", []),
        ("ALTER TABLE users ADD COLUMN x int", "changes schema", []),
        ("SELECT count(*) FROM users", "reads", []),
    ],
)
def test_recognises_destructive_and_data_changing_statements(sql, effect, backup_kinds):
    (statement,) = analyse(sql, stamp=STAMP).statements
    assert statement.effect == effect
    assert [b.kind for b in statement.backups] == backup_kinds


def test_backup_names_carry_the_time_are_unique_and_fit_63_bytes():
    long_name = "ü" * 40  # 80 bytes in UTF-8
    manual = analyse(
        f'DELETE FROM users WHERE id = 1; DELETE FROM users WHERE id = 2; DROP TABLE "{long_name}"',
        stamp=STAMP,
    )
    names = [b.name.name for b in manual.backups]
    assert names[:2] == [f"users_backup_{STAMP}", f"users_backup_{STAMP}_2"]
    assert len(names[2].encode()) <= IDENTIFIER_MAX_BYTES and names[2].endswith(STAMP)
    assert manual.backups[2].name.sql().startswith('"ü')


# --- dry run --------------------------------------------------------------------------------

SCRIPT = (
    "DELETE FROM users WHERE id > 15;\n"
    "UPDATE users SET legacy = 'new' WHERE id <= 2;\n"
    "ALTER TABLE users DROP COLUMN legacy;\n"
    "TRUNCATE audit_log"
)


def test_dry_run_reports_counts_samples_and_verification_and_changes_nothing(
    db, tx, catalog_snapshot
):
    before = state(db, catalog_snapshot)
    manual = analyse(SCRIPT, "SELECT count(*) AS users FROM users", stamp=STAMP)

    result = dry_run(tx, manual, TIMEOUTS)

    assert state(db, catalog_snapshot) == before
    assert [s.rowcount for s in result.statements][:2] == [5, 2]
    deleted = result.statements[0].sample
    assert deleted.total == 5 and len(deleted.rows) == 5
    assert deleted.columns == ["id", "email", "legacy"]
    assert sorted(int(r[0]) for r in deleted.rows) == [16, 17, 18, 19, 20]
    assert [r[2] for r in result.statements[1].sample.rows] == ["new", "new"]
    assert result.verification.rows == [["15"]]
    assert [(b.name, b.rows) for b in result.backups] == [
        (f"users_backup_{STAMP}", 5),
        (f"users_backup_{STAMP}_2", 2),
        (f"users_backup_{STAMP}_3", 15),
        (f"audit_log_backup_{STAMP}", 8),
    ]


def test_sample_is_capped_but_the_count_is_complete(db, tx):
    manual = analyse("UPDATE users SET legacy = 'x' WHERE id > 0", stamp=STAMP)
    (statement,) = dry_run(tx, manual, TIMEOUTS).statements
    assert statement.rowcount == 20 and len(statement.sample.rows) == 5


# --- the real run ---------------------------------------------------------------------------


def test_commit_applies_and_keeps_backups_holding_every_destroyed_value(db, tx):
    manual = analyse(SCRIPT, "SELECT count(*) FROM users", stamp=STAMP)
    expected_deleted = db.execute("SELECT * FROM users WHERE id > 15 ORDER BY id").fetchall()
    expected_legacy = db.execute("SELECT id, legacy FROM users WHERE id <= 15").fetchall()
    dry = dry_run(tx, manual, TIMEOUTS)
    seen = []

    result = apply(tx, manual, TIMEOUTS, lambda r: seen.append(r) or "commit")

    assert result.committed and seen[0].verification.rows == [["15"]]
    assert [s.rowcount for s in result.statements] == [s.rowcount for s in dry.statements]
    assert db.execute("SELECT count(*) FROM users").fetchone() == (15,)
    columns = [
        r[0]
        for r in db.execute(
            "SELECT attname FROM pg_attribute WHERE attnum > 0"
            " AND attrelid = 'users'::regclass AND NOT attisdropped"
        )
    ]
    assert "legacy" not in columns
    backup = f'"users_backup_{STAMP}"'
    assert db.execute(f"SELECT * FROM {backup} ORDER BY id").fetchall() == expected_deleted
    legacy = db.execute(f'SELECT id, legacy FROM "users_backup_{STAMP}_3" ORDER BY id').fetchall()
    # Backed up after the UPDATE ran: it holds what the DROP COLUMN destroyed.
    assert legacy == [(i, "new" if i <= 2 else v) for i, v in sorted(expected_legacy)]
    assert db.execute(f'SELECT count(*) FROM "audit_log_backup_{STAMP}"').fetchone() == (8,)


def test_roll_back_at_the_decision_leaves_the_database_unchanged(db, tx, catalog_snapshot):
    before = state(db, catalog_snapshot)
    manual = analyse(SCRIPT, "SELECT * FROM users LIMIT 10", stamp=STAMP)
    result = apply(tx, manual, TIMEOUTS, lambda r: "rollback")
    assert not result.committed
    assert state(db, catalog_snapshot) == before


def test_an_error_rolls_back_and_reports_postgres_message_and_position(db, tx, catalog_snapshot):
    before = state(db, catalog_snapshot)
    sql = "DELETE FROM users WHERE id = 1;\n\nUPDATE users\n   SET nope = 1 WHERE id = 2"
    with pytest.raises(SqlRunError) as error:
        apply(tx, analyse(sql, stamp=STAMP), TIMEOUTS, lambda r: "commit")
    message = error.value.message
    assert 'column "nope" of relation "users" does not exist' in message
    assert "Statement 2 (line 3), at line 4, column 8" in message
    assert "nothing was changed" in message
    assert state(db, catalog_snapshot) == before


def test_a_table_that_does_not_exist_is_a_clear_error_in_the_dry_run(db, tx):
    with pytest.raises(SqlRunError) as error:
        dry_run(tx, analyse("DELETE FROM userz WHERE id = 1", stamp=STAMP), TIMEOUTS)
    assert 'relation "userz" does not exist' in error.value.message
    assert "line 1, column 13" in error.value.message


def test_a_connection_lost_while_the_transaction_is_held_commits_nothing(db, tx, catalog_snapshot):
    before = state(db, catalog_snapshot)
    pid = tx.info.backend_pid

    def terminate_then_commit(result):
        assert db.execute("SELECT pg_terminate_backend(%s)", (pid,)).fetchone() == (True,)
        time.sleep(0.2)
        return "commit"

    with pytest.raises(SqlRunError, match="lost before COMMIT.*nothing was committed"):
        apply(tx, analyse(SCRIPT, stamp=STAMP), TIMEOUTS, terminate_then_commit)
    assert state(db, catalog_snapshot) == before


def test_lock_timeout_against_a_locked_table_gives_a_clear_message(db, tx, pg_url):
    locked = threading.Event()
    release = threading.Event()

    def hold_lock():
        with psycopg.connect(pg_url) as other:
            other.execute("LOCK TABLE users IN ACCESS EXCLUSIVE MODE")
            locked.set()
            release.wait(10)

    holder = threading.Thread(target=hold_lock)
    holder.start()
    try:
        assert locked.wait(5)
        started = time.monotonic()
        with pytest.raises(SqlRunError) as error:
            dry_run(
                tx, analyse("DELETE FROM users WHERE id = 1", stamp=STAMP), Timeouts("300ms", "5s")
            )
        assert time.monotonic() - started < 3
    finally:
        release.set()
        holder.join()
    assert "canceling statement due to lock timeout" in error.value.message
    assert "holds a lock" in error.value.hint


def test_statement_timeout_is_honoured(db, tx):
    with pytest.raises(SqlRunError) as error:
        dry_run(tx, analyse("SELECT pg_sleep(3)", stamp=STAMP), Timeouts("1s", "300ms"))
    assert "statement timeout" in error.value.message


def test_a_verification_query_cannot_write(db, tx):
    db.execute(
        "CREATE FUNCTION sneaky() RETURNS int LANGUAGE sql AS"
        " $$ INSERT INTO audit_log VALUES (99, 'sneaky') RETURNING 1 $$"
    )
    manual = analyse("UPDATE users SET legacy = 'x' WHERE id = 1", "SELECT sneaky()", stamp=STAMP)
    result = apply(tx, manual, TIMEOUTS, lambda r: "commit")
    assert result.verification.rows == [["1"]]
    assert db.execute("SELECT count(*) FROM audit_log WHERE at = 99").fetchone() == (0,)
    assert db.execute("SELECT legacy FROM users WHERE id = 1").fetchone() == ("x",)
