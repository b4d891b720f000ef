"""Manual SQL analysis, dry run, backups and the held transaction, against a real
PostgreSQL, with the bot connected as a role that is not a superuser (pg_role_url) unless a
test says otherwise."""

from __future__ import annotations

import os
import threading
import time

import psycopg
import pytest

from bot.sql.backups import IDENTIFIER_MAX_BYTES, BackupMismatch
from bot.sql.manual import ManualSqlError, analyse
from bot.sql.manual_run import CountsChanged, SqlRunError, apply, dry_run, verify_after_commit
from bot.sql.session import Limits
from tests.unit.sql.catalog_snapshot import catalog_snapshot_of

STAMP = "20251208_120000"
TIMEOUTS = Limits("2s", "5s")

SCHEMA = """
CREATE TABLE users (id int PRIMARY KEY, email text NOT NULL, legacy text,
    CONSTRAINT email_not_blank CHECK (email <> ''));
INSERT INTO users SELECT n, 'u' || n || '@example.com', 'old-' || n FROM generate_series(1, 20) n;
CREATE TABLE audit_log (at int, note text);
INSERT INTO audit_log SELECT n, 'note ' || n FROM generate_series(1, 8) n;
"""


@pytest.fixture
def db(pg_role_url: str) -> psycopg.Connection:
    """The bot's role, owning the tables (as an application's migrations role would)."""
    with psycopg.connect(pg_role_url, autocommit=True) as conn:
        conn.execute(SCHEMA)
        yield conn


@pytest.fixture
def tx(pg_role_url: str):
    """A connection like the bot's: autocommit off, so the bot's statements share one
    transaction."""
    with psycopg.connect(pg_role_url, autocommit=False, application_name="manual-sql") as c:
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


def state(conn) -> tuple:
    return catalog_snapshot_of(conn), row_hashes(conn)


def rows(conn, sql: str) -> list[tuple]:
    return conn.execute(sql).fetchall()


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
        ("SET statement_timeout = 0", "SET/RESET is refused"),
        ("COPY users FROM STDIN", "COPY reads or writes files"),
    ],
)
def test_refuses_what_cannot_run_in_the_bots_transaction(sql, words):
    with pytest.raises(ManualSqlError) as error:
        analyse(sql, stamp=STAMP)
    assert error.value.field == "sql"
    assert words in error.value.message
    assert "statement" in error.value.message and "line 1" in error.value.message
    assert "Instead:" in error.value.message


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
        "SELECT pg_terminate_backend(1)",
        "SELECT * FROM users FOR UPDATE",
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
        ("DELETE FROM users", "destructive", ["rows"]),
        ("UPDATE users SET legacy = NULL", "destructive", ["rows"]),
        ("DELETE FROM users WHERE id > 10", "changes data", ["rows"]),
        ("UPDATE users SET legacy = NULL WHERE id = 3", "changes data", ["rows"]),
        ("DROP INDEX users_pkey", "destructive", []),
        ("INSERT INTO audit_log VALUES (9, 'x')", "changes data", []),
        ("ALTER TABLE users ADD COLUMN x int", "changes schema", []),
        ("SELECT count(*) FROM users", "reads", []),
        # A DELETE inside WITH is what it is, not "reads".
        (
            "WITH gone AS (DELETE FROM users WHERE id > 10 RETURNING id) SELECT count(*) FROM gone",
            "changes data",
            ["rows"],
        ),
        ("WITH gone AS (DELETE FROM users RETURNING id) SELECT 1", "destructive", ["rows"]),
    ],
)
def test_recognises_destructive_and_data_changing_statements(sql, effect, backup_kinds):
    (statement,) = analyse(sql, stamp=STAMP).statements
    assert statement.effect == effect
    assert [b.kind for b in statement.all_backups] == backup_kinds


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


def test_a_delete_after_120_harmless_statements_is_analysed_like_the_first():
    sql = "SELECT 1;\n" * 120 + "DELETE FROM users"
    manual = analyse(sql, stamp=STAMP)
    last = manual.statements[-1]
    assert last.statement.line == 121
    assert last.effect == "destructive" and [b.kind for b in last.all_backups] == ["rows"]


# --- dry run --------------------------------------------------------------------------------

SCRIPT = (
    "DELETE FROM users WHERE id > 15;\n"
    "UPDATE users SET legacy = 'new' WHERE id <= 2;\n"
    "ALTER TABLE users DROP COLUMN legacy;\n"
    "TRUNCATE audit_log"
)


def test_dry_run_reports_counts_samples_and_verification_and_changes_nothing(db, tx):
    before = state(db)
    manual = analyse(SCRIPT, "SELECT count(*) AS users FROM users", stamp=STAMP)

    result = dry_run(tx, manual, TIMEOUTS)

    assert state(db) == before
    assert [s.rowcount for s in result.statements][:2] == [5, 2]
    deleted = result.statements[0].sample
    assert deleted.total == 5 and len(deleted.rows) == 5
    assert deleted.columns == ["id", "email", "legacy"]
    assert sorted(int(r[0]) for r in deleted.rows) == [16, 17, 18, 19, 20]
    assert [r[2] for r in result.statements[1].sample.rows] == ["new", "new"]
    assert result.verification.rows == [["15"]]
    assert [(b.name, b.rows, b.verified) for b in result.backups] == [
        (f"users_backup_{STAMP}", 5, True),
        (f"users_backup_{STAMP}_2", 2, True),
        (f"users_backup_{STAMP}_3", 15, True),
        (f"audit_log_backup_{STAMP}", 8, True),
    ]


def test_sample_is_capped_but_the_count_is_complete(db, tx):
    manual = analyse("UPDATE users SET legacy = 'x' WHERE id > 0", stamp=STAMP)
    (statement,) = dry_run(tx, manual, TIMEOUTS).statements
    assert statement.rowcount == 20 and len(statement.sample.rows) == 5


def test_counts_only_leave_out_every_sample_row_and_the_verification_rows(db, tx):
    manual = analyse("SELECT email FROM users", "SELECT email FROM users", stamp=STAMP)
    result = dry_run(tx, manual, TIMEOUTS)
    assert "u1@example.com" in str(result.to_dict())
    counts = result.to_dict(samples=False)
    assert "@example.com" not in str(counts)
    assert counts["statements"][0]["rowcount"] == 20
    assert counts["verification"] == {"total": 20}


# --- the real run ---------------------------------------------------------------------------


def test_commit_applies_and_keeps_backups_holding_every_destroyed_value(db, tx):
    manual = analyse(SCRIPT, "SELECT count(*) FROM users", stamp=STAMP)
    expected_deleted = rows(db, "SELECT * FROM users WHERE id > 15 ORDER BY id")
    expected_updated = rows(db, "SELECT * FROM users WHERE id <= 2 ORDER BY id")
    expected_legacy = rows(db, "SELECT id, legacy FROM users WHERE id <= 15")
    dry = dry_run(tx, manual, TIMEOUTS)
    seen = []

    result = apply(tx, manual, TIMEOUTS, lambda r: seen.append(r) or "commit", dry.counts())

    assert result.committed and seen[0].verification.rows == [["15"]]
    assert result.counts() == dry.counts()
    assert rows(db, "SELECT count(*) FROM users") == [(15,)]
    columns = [c[2] for c in catalog_snapshot_of(db)["columns"] if c[1] == "users"]
    assert "legacy" not in columns
    assert rows(db, f'SELECT * FROM "users_backup_{STAMP}" ORDER BY id') == expected_deleted
    # The UPDATE's backup holds the old values, read in the UPDATE's own statement.
    assert rows(db, f'SELECT * FROM "users_backup_{STAMP}_2" ORDER BY id') == expected_updated
    legacy = rows(db, f'SELECT id, legacy FROM "users_backup_{STAMP}_3" ORDER BY id')
    # Backed up after the UPDATE ran: it holds what the DROP COLUMN destroyed.
    assert legacy == [(i, "new" if i <= 2 else v) for i, v in sorted(expected_legacy)]
    assert rows(db, f'SELECT count(*) FROM "audit_log_backup_{STAMP}"') == [(8,)]


def test_roll_back_at_the_decision_leaves_the_database_unchanged(db, tx):
    before = state(db)
    manual = analyse(SCRIPT, "SELECT * FROM users LIMIT 10", stamp=STAMP)
    result = apply(tx, manual, TIMEOUTS, lambda r: "rollback")
    assert not result.committed
    assert state(db) == before


def test_an_error_rolls_back_and_reports_postgres_message_and_position(db, tx):
    before = state(db)
    sql = "DELETE FROM users WHERE id = 1;\n\nUPDATE users\n   SET nope = 1 WHERE id = 2"
    with pytest.raises(SqlRunError) as error:
        apply(tx, analyse(sql, stamp=STAMP), TIMEOUTS, lambda r: "commit")
    message = error.value.message
    assert 'column "nope" of relation "users" does not exist' in message
    assert "Statement 2 (line 3), at line 4, column 8" in message
    assert "nothing was changed" in message
    assert state(db) == before


def test_a_table_that_does_not_exist_is_a_clear_error_in_the_dry_run(db, tx):
    with pytest.raises(SqlRunError) as error:
        dry_run(tx, analyse("DELETE FROM userz WHERE id = 1", stamp=STAMP), TIMEOUTS)
    assert 'relation "userz" does not exist' in error.value.message
    assert "line 1, column 13" in error.value.message


def test_a_connection_lost_while_the_transaction_is_held_commits_nothing(db, tx):
    before = state(db)
    pid = tx.info.backend_pid

    def terminate_then_commit(result):
        assert db.execute("SELECT pg_terminate_backend(%s)", (pid,)).fetchone() == (True,)
        time.sleep(0.2)
        return "commit"

    with pytest.raises(SqlRunError, match="lost before COMMIT.*nothing was committed"):
        apply(tx, analyse(SCRIPT, stamp=STAMP), TIMEOUTS, terminate_then_commit)
    assert state(db) == before


def test_lock_timeout_against_a_locked_table_gives_a_clear_message(db, tx, pg_role_url):
    locked = threading.Event()
    release = threading.Event()

    def hold_lock():
        with psycopg.connect(pg_role_url) as other:
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
                tx, analyse("DELETE FROM users WHERE id = 1", stamp=STAMP), Limits("300ms", "5s")
            )
        assert time.monotonic() - started < 3
    finally:
        release.set()
        holder.join()
    assert "canceling statement due to lock timeout" in error.value.message
    assert "holds a lock" in error.value.hint


def test_statement_timeout_is_honoured(db, tx):
    slow = "SELECT count(*) FROM generate_series(1, 200000000)"
    with pytest.raises(SqlRunError) as error:
        dry_run(tx, analyse(slow, stamp=STAMP), Limits("1s", "300ms"))
    assert "statement timeout" in error.value.message


def test_a_verification_query_calling_a_function_that_writes_is_refused(db, tx):
    db.execute(
        "CREATE FUNCTION sneaky() RETURNS int LANGUAGE sql AS"
        " $$ INSERT INTO audit_log VALUES (99, 'sneaky') RETURNING 1 $$"
    )
    manual = analyse("UPDATE users SET legacy = 'x' WHERE id = 1", "SELECT sneaky()", stamp=STAMP)
    with pytest.raises(ManualSqlError, match=r"sneaky\(\) is refused"):
        apply(tx, manual, TIMEOUTS, lambda r: "commit")
    assert rows(db, "SELECT count(*) FROM audit_log WHERE at = 99") == [(0,)]
    assert rows(db, "SELECT legacy FROM users WHERE id = 1") == [("old-1",)]


# --- nothing before approval can leave a trace -------------------------------------


def test_a_session_that_lexes_strings_differently_cannot_smuggle_a_commit(
    db, tx, conn, pg_role_url
):
    """The reproduction: one harmless SELECT to pglast, three commands to a server with
    standard_conforming_strings off (here the role's default). The bot sets it on for its
    transaction and sends one statement per Parse message."""
    role = psycopg.conninfo.conninfo_to_dict(pg_role_url)["user"]
    conn.execute(f'ALTER ROLE "{role}" SET standard_conforming_strings = off')
    with psycopg.connect(pg_role_url, autocommit=False) as fresh:
        assert fresh.execute("SHOW standard_conforming_strings").fetchone() == ("off",)
        fresh.rollback()
        before = state(db)
        text = "SELECT 'a\\', 'b; COMMIT; DELETE FROM users; DELETE FROM audit_log; --'"
        manual = analyse(text, stamp=STAMP)
        assert [s.effect for s in manual.statements] == ["reads"]
        result = dry_run(fresh, manual, TIMEOUTS)
    assert result.statements[0].sample.rows == [
        ["a\\", "b; COMMIT; DELETE FROM users; DELETE FROM audit_log; --"]
    ]
    assert state(db) == before


@pytest.mark.parametrize(
    "text",
    [
        "SET standard_conforming_strings = off;\nSELECT 'a\\', 'b; COMMIT; DELETE FROM users; --'",
        "SELECT set_config('standard_conforming_strings', 'off', false);\n"
        "SELECT 'a\\', 'b; COMMIT; DELETE FROM users; --'",
    ],
)
def test_the_text_cannot_turn_standard_conforming_strings_off(db, text):
    with pytest.raises(ManualSqlError) as error:
        analyse(text, stamp=STAMP)
    assert "standard_conforming_strings" in error.value.message or "set_config" in (
        error.value.message
    )


@pytest.mark.parametrize(
    "text",
    [
        "COPY (SELECT email FROM users) TO PROGRAM 'touch {path}'",
        "COPY (SELECT email FROM users) TO '{path}'",
        "COPY users FROM PROGRAM 'touch {path}'",
        "SELECT lo_export(lo_from_bytea(0, 'x'), '{path}')",
        "SELECT lo_import('/etc/hostname')",
        "SELECT pg_read_file('/etc/hostname')",
        "SELECT pg_ls_dir('.')",
    ],
)
def test_files_and_programs_on_the_server_are_refused(conn, text):
    """As a superuser, who could otherwise run them (the issue's reproduction)."""
    path = f"/tmp/rollback-bot-{time.monotonic_ns()}"
    with pytest.raises(ManualSqlError) as error:
        analyse(text.format(path=path), stamp=STAMP)
    assert "Instead:" in error.value.message
    assert not os.path.exists(path)


def test_other_sessions_cannot_be_killed(db, tx, pg_role_url):
    with psycopg.connect(pg_role_url, autocommit=True) as victim:
        pid = victim.info.backend_pid
        text = f"SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE pid = {pid}"
        with pytest.raises(ManualSqlError, match="kills other sessions"):
            dry_run(tx, analyse(text, stamp=STAMP), TIMEOUTS)
        assert victim.execute("SELECT 1").fetchone() == (1,)


@pytest.mark.parametrize(
    "text",
    [
        "SELECT set_config('statement_timeout', '0', true);\n"
        "LOCK TABLE users IN ACCESS EXCLUSIVE MODE;\nSELECT pg_sleep(5)",
        "SET LOCAL statement_timeout = 0;\nSELECT count(*) FROM users, pg_sleep(5)",
        "SELECT pg_advisory_lock(42)",
    ],
)
def test_locks_cannot_be_held_past_the_bots_timeout(db, text):
    with pytest.raises(ManualSqlError):
        analyse(text, stamp=STAMP)


def test_a_statement_runs_no_longer_than_the_bots_statement_timeout_while_locking(
    db, tx, pg_role_url
):
    """A heavy but accepted statement holding a table's lock is cancelled at the bot's
    statement_timeout; another session gets the table right after."""
    text = (
        "UPDATE users SET legacy = legacy"
        " WHERE id < (SELECT count(*) FROM generate_series(1, 300000000))"
    )
    started = time.monotonic()
    with pytest.raises(SqlRunError, match="statement timeout"):
        dry_run(tx, analyse(text, stamp=STAMP), Limits("1s", "500ms"))
    assert time.monotonic() - started < 5
    with psycopg.connect(pg_role_url, autocommit=False) as other:
        other.execute("SET lock_timeout = '200ms'")
        other.execute("LOCK TABLE users IN ACCESS EXCLUSIVE MODE")


def test_the_whole_dry_run_has_a_budget_after_which_another_session_gets_the_table(
    db, tx, pg_role_url
):
    """ALTER TABLE takes ACCESS EXCLUSIVE on users; 55 slow reads follow, each well under
    the statement_timeout (about 1 s here), which held the lock for about a minute before
    anyone approved. With a 2 s budget the dry run is cancelled, rolled back, and says so;
    another session waiting for the table gets it (within its 15 s lock_timeout)."""
    before = state(db)
    text = "ALTER TABLE users ADD COLUMN z int;\n" + (
        "SELECT count(*) FROM generate_series(1, 5000000);\n" * 55
    )
    manual = analyse(text, stamp=STAMP)
    failed: list[SqlRunError] = []

    def run_dry_run():
        with pytest.raises(SqlRunError) as error:
            dry_run(tx, manual, Limits("2s", "15s", total_seconds=2))
        failed.append(error.value)

    runner = threading.Thread(target=run_dry_run)
    runner.start()
    try:
        held = "SELECT 1 FROM pg_locks WHERE relation = 'users'::regclass AND granted"
        while runner.is_alive() and not db.execute(held).fetchone():
            time.sleep(0.01)
        assert runner.is_alive(), "the dry run ended before it was seen holding users"
        with psycopg.connect(pg_role_url, autocommit=False) as other:
            other.execute("SET lock_timeout = '15s'")
            other.execute("LOCK TABLE users IN ACCESS EXCLUSIVE MODE")  # it let go
    finally:
        runner.join(120)
    (error,) = failed
    assert "The dry run took longer than 2 s in total" in error.message, error.message
    assert "nothing was changed" in error.message and "dry_run_total_timeout" in error.message
    assert state(db) == before


def test_a_dry_run_within_its_budget_is_not_cut_nor_is_what_follows_on_its_connection(db, tx):
    manual = analyse("ALTER TABLE users ADD COLUMN z int;\nSELECT count(*) FROM users", stamp=STAMP)
    result = dry_run(tx, manual, Limits("2s", "15s", total_seconds=3))
    assert [s.rowcount for s in result.statements][1:] == [1]
    # The watchdog stopped with the dry run: a query on the same connection that runs past
    # the budget's end is not cancelled.
    assert tx.execute("SELECT pg_sleep(4)::text").fetchone() == ("",)


# --- data-modifying WITH queries ----------------------------------------------------


def test_a_delete_inside_with_is_counted_and_backed_up_exactly(db, tx):
    text = "WITH gone AS (DELETE FROM users WHERE id > 17 RETURNING id) SELECT count(*) FROM gone"
    expected = rows(db, "SELECT * FROM users WHERE id > 17 ORDER BY id")
    manual = analyse(text, stamp=STAMP)
    result = apply(tx, manual, TIMEOUTS, lambda r: "commit")
    (statement,) = result.statements
    assert [(p.label, p.rows) for p in statement.parts] == [
        ("WITH gone: DELETE users", 3),
        ("SELECT", 1),
    ]
    assert statement.sample.rows == [["3"]]
    assert rows(db, f'SELECT * FROM "users_backup_{STAMP}" ORDER BY id') == expected
    assert rows(db, "SELECT count(*) FROM users") == [(17,)]


def test_with_queries_that_update_and_insert_are_backed_up_and_counted(db, tx):
    text = (
        "WITH moved AS (UPDATE users SET legacy = 'moved' WHERE id <= 3 RETURNING id),"
        " logged AS (INSERT INTO audit_log SELECT id, 'moved' FROM moved RETURNING at)"
        " SELECT count(*) FROM logged"
    )
    old = rows(db, "SELECT * FROM users WHERE id <= 3 ORDER BY id")
    result = apply(tx, analyse(text, stamp=STAMP), TIMEOUTS, lambda r: "commit")
    parts = [(p.label, p.rows) for p in result.statements[0].parts]
    assert parts == [
        ("WITH moved: UPDATE users", 3),
        ("WITH logged: INSERT audit_log", 3),
        ("SELECT", 1),
    ]
    assert rows(db, f'SELECT * FROM "users_backup_{STAMP}" ORDER BY id') == old
    assert rows(db, "SELECT count(*) FROM audit_log WHERE note = 'moved'") == [(3,)]


def test_an_update_with_from_backs_up_each_changed_row_once(db, tx):
    db.execute("CREATE TABLE fixes (user_id int, note text)")
    db.execute("INSERT INTO fixes VALUES (1, 'a'), (1, 'b'), (2, 'c')")
    text = "UPDATE users u SET legacy = f.note FROM fixes f WHERE u.id = f.user_id"
    old = rows(db, "SELECT * FROM users WHERE id IN (1, 2) ORDER BY id")
    result = apply(tx, analyse(text, stamp=STAMP), TIMEOUTS, lambda r: "commit")
    assert result.statements[0].rowcount == 2
    assert rows(db, f'SELECT * FROM "users_backup_{STAMP}" ORDER BY id') == old


# --- the approval binds the counts -----------------------------------------------------


def test_a_real_run_whose_counts_differ_from_the_dry_run_rolls_back(db, tx, pg_role_url):
    db.execute("CREATE TABLE proposal (project_id int)")
    text = "DELETE FROM users WHERE id IN (SELECT project_id FROM proposal)"
    manual = analyse(text, stamp=STAMP)
    with psycopg.connect(pg_role_url, autocommit=False) as first:
        approved = dry_run(first, manual, TIMEOUTS).counts()
    assert approved[0][1] == 0
    db.execute("INSERT INTO proposal SELECT n FROM generate_series(1, 10) n")
    before = state(db)
    decided = []
    with pytest.raises(CountsChanged) as error:
        apply(tx, manual, TIMEOUTS, lambda r: decided.append(r) or "commit", approved)
    assert not decided
    assert error.value.approved == approved and error.value.now[0][1] == 10
    assert state(db) == before


# --- backups are exact ------------------------------------------------------------------

FAMILY = """
CREATE TABLE projects (id int PRIMARY KEY, owner_id int REFERENCES users ON DELETE CASCADE);
INSERT INTO projects SELECT n, n FROM generate_series(1, 20) n;
CREATE TABLE tasks (id int PRIMARY KEY, project_id int REFERENCES projects ON DELETE CASCADE,
    assignee_id int REFERENCES users ON DELETE SET NULL, title text);
INSERT INTO tasks SELECT n, (n % 20) + 1, (n % 5) + 1, 't' || n FROM generate_series(1, 60) n;
CREATE TABLE comments (id int PRIMARY KEY, task_id int REFERENCES tasks ON DELETE CASCADE,
    author_id int REFERENCES users ON DELETE CASCADE, body text);
INSERT INTO comments SELECT n, (n % 60) + 1, (n % 20) + 1, 'c' || n FROM generate_series(1, 120) n;
"""


def _destroyed(db, table: str, before: list[tuple]) -> list[tuple]:
    """Rows of ``table`` (by primary key id) that are gone or different now."""
    now = {r[0]: r for r in rows(db, f"SELECT * FROM {table}")}
    return sorted(r for r in before if now.get(r[0]) != r)


def _backed_up(db, source: str, result) -> list[tuple]:
    names = [b.name for b in result.backups if b.source.split(".")[-1] == source and not b.skipped]
    out = []
    for name in names:
        out += rows(db, f"SELECT * FROM {name}")
    return sorted(out)


def test_cascades_and_set_null_are_backed_up_exactly_through_every_path(db, tx):
    db.execute(FAMILY)
    tables = ("users", "projects", "tasks", "comments")
    before = {t: rows(db, f"SELECT * FROM {t}") for t in tables}
    text = "DELETE FROM users WHERE id IN (1, 2, 3)"
    dry = dry_run(tx, analyse(text, stamp=STAMP), TIMEOUTS)
    result = apply(tx, analyse(text, stamp=STAMP), TIMEOUTS, lambda r: "commit", dry.counts())
    for table in tables:
        assert _backed_up(db, table, result) == _destroyed(db, table, before[table]), table
    kinds = {(b.source.split(".")[-1], b.kind) for b in result.backups if not b.skipped}
    assert kinds == {
        ("users", "rows"),
        ("projects", "dependents"),
        ("tasks", "dependents"),
        ("comments", "dependents"),
    }
    assert all(b.verified for b in result.backups)


def test_truncate_cascade_backs_up_every_table_it_empties(db, tx):
    db.execute(FAMILY)
    before = {t: rows(db, f"SELECT * FROM {t}") for t in ("projects", "tasks", "comments")}
    result = apply(
        tx, analyse("TRUNCATE projects CASCADE", stamp=STAMP), TIMEOUTS, lambda r: "commit"
    )
    for table, old in before.items():
        assert _backed_up(db, table, result) == sorted(old), table
        assert rows(db, f"SELECT count(*) FROM {table}") == [(0,)]


def test_a_self_referencing_cascade_is_refused_with_its_count_when_it_would_change_rows(db, tx):
    db.execute(
        "CREATE TABLE nodes (id int PRIMARY KEY, parent_id int REFERENCES nodes ON DELETE CASCADE);"
        " INSERT INTO nodes VALUES (1, NULL), (2, 1), (3, 2), (4, NULL)"
    )
    before = state(db)
    with pytest.raises(ManualSqlError) as error:
        dry_run(tx, analyse("DELETE FROM nodes WHERE id = 1", stamp=STAMP), TIMEOUTS)
    message = error.value.message
    assert "nodes (parent_id) ON DELETE CASCADE" in message and "1 row" in message
    assert state(db) == before
    # A row nothing refers to is deleted and backed up.
    result = apply(
        tx, analyse("DELETE FROM nodes WHERE id = 4", stamp=STAMP), TIMEOUTS, lambda r: "commit"
    )
    assert rows(db, f'SELECT * FROM "nodes_backup_{STAMP}"') == [(4, None)]
    assert result.statements[0].rowcount == 1


def test_an_update_of_a_key_other_tables_follow_is_refused_with_counts(db, tx):
    db.execute(
        "CREATE TABLE orders (id int PRIMARY KEY, user_id int REFERENCES users"
        " ON UPDATE CASCADE); INSERT INTO orders VALUES (1, 5), (2, 5), (3, 6)"
    )
    with pytest.raises(ManualSqlError) as error:
        dry_run(tx, analyse("UPDATE users SET id = id + 100 WHERE id = 5", stamp=STAMP), TIMEOUTS)
    assert "orders (user_id) ON UPDATE CASCADE" in error.value.message
    assert "2 rows" in error.value.message


def test_a_random_predicate_is_refused(db):
    with pytest.raises(ManualSqlError, match="random"):
        analyse("DELETE FROM users WHERE random() < 0.3", stamp=STAMP)
    with pytest.raises(ManualSqlError, match="TABLESAMPLE"):
        analyse(
            "DELETE FROM users WHERE id IN (SELECT id FROM users TABLESAMPLE BERNOULLI (30))",
            stamp=STAMP,
        )


def test_a_before_trigger_that_skips_deletes_leaves_only_the_deleted_rows_in_the_backup(db, tx):
    db.execute(
        "CREATE FUNCTION keep_even() RETURNS trigger LANGUAGE plpgsql AS"
        " $$ BEGIN IF OLD.id % 2 = 0 THEN RETURN NULL; END IF; RETURN OLD; END $$;"
        " CREATE TRIGGER keep_even BEFORE DELETE ON users FOR EACH ROW EXECUTE FUNCTION keep_even()"
    )
    result = apply(
        tx, analyse("DELETE FROM users WHERE id <= 6", stamp=STAMP), TIMEOUTS, lambda r: "commit"
    )
    assert result.statements[0].parts[0].triggers == ["keep_even"]
    assert [r[0] for r in rows(db, f'SELECT id FROM "users_backup_{STAMP}" ORDER BY id')] == [
        1,
        3,
        5,
    ]


def test_an_update_a_trigger_skips_is_refused_because_its_backup_would_not_be_exact(db, tx):
    db.execute(
        "CREATE FUNCTION keep_even() RETURNS trigger LANGUAGE plpgsql AS"
        " $$ BEGIN IF OLD.id % 2 = 0 THEN RETURN NULL; END IF; RETURN NEW; END $$;"
        " CREATE TRIGGER keep_even BEFORE UPDATE ON users FOR EACH ROW EXECUTE FUNCTION keep_even()"
    )
    before = state(db)
    with pytest.raises(BackupMismatch, match="rows changed vs rows backed up differ"):
        apply(
            tx,
            analyse("UPDATE users SET legacy = 'x' WHERE id <= 6", stamp=STAMP),
            TIMEOUTS,
            lambda r: "commit",
        )
    assert state(db) == before


def test_a_backup_changed_after_it_was_taken_stops_the_commit(db, tx):
    text = f'DELETE FROM users WHERE id = 1;\nDELETE FROM "users_backup_{STAMP}"'
    before = state(db)
    with pytest.raises(BackupMismatch, match="does not hold exactly what was destroyed"):
        apply(tx, analyse(text, stamp=STAMP), TIMEOUTS, lambda r: "commit")
    assert state(db) == before


def test_the_verification_after_commit_is_guarded_and_read_only(db, tx):
    manual = analyse("DELETE FROM users WHERE id = 1", "SELECT count(*) FROM users", stamp=STAMP)
    apply(tx, manual, TIMEOUTS, lambda r: "commit")
    rows_now = verify_after_commit(tx, manual, TIMEOUTS)
    assert rows_now.rows == [["19"]] and tx.info.transaction_status.name == "IDLE"
    assert verify_after_commit(tx, analyse("SELECT 1", stamp=STAMP), TIMEOUTS) is None


# --- what the rewrite must keep exactly ---------------------------------------------


def test_a_delete_using_another_table_that_matches_a_row_twice_backs_it_up_once(db, tx):
    db.execute("CREATE TABLE bad (user_id int); INSERT INTO bad VALUES (4), (4), (5)")
    text = "DELETE FROM users u USING bad b WHERE u.id = b.user_id"
    old = rows(db, "SELECT * FROM users WHERE id IN (4, 5) ORDER BY id")
    result = apply(tx, analyse(text, stamp=STAMP), TIMEOUTS, lambda r: "commit")
    assert result.statements[0].rowcount == 2
    assert rows(db, f'SELECT * FROM "users_backup_{STAMP}" ORDER BY id') == old


def test_a_with_update_whose_returning_is_read_keeps_its_columns(db, tx):
    text = (
        "WITH renamed AS (UPDATE users SET email = 'x' || id WHERE id <= 2"
        " RETURNING id AS renamed_id, email)"
        " INSERT INTO audit_log SELECT renamed_id, email FROM renamed"
    )
    old = rows(db, "SELECT * FROM users WHERE id <= 2 ORDER BY id")
    result = apply(tx, analyse(text, stamp=STAMP), TIMEOUTS, lambda r: "commit")
    assert [p.rows for p in result.statements[0].parts] == [2, 2]
    assert rows(db, "SELECT at, note FROM audit_log WHERE note LIKE 'x%' ORDER BY at") == [
        (1, "x1"),
        (2, "x2"),
    ]
    assert rows(db, f'SELECT * FROM "users_backup_{STAMP}" ORDER BY id') == old


def test_a_recursive_with_feeding_a_delete_is_run_as_written(db, tx):
    text = (
        "WITH RECURSIVE ids(n) AS (SELECT 18 UNION ALL SELECT n + 1 FROM ids WHERE n < 20)"
        " DELETE FROM users WHERE id IN (SELECT n FROM ids)"
    )
    result = apply(tx, analyse(text, stamp=STAMP), TIMEOUTS, lambda r: "commit")
    assert result.statements[0].rowcount == 3
    assert rows(db, f'SELECT id FROM "users_backup_{STAMP}" ORDER BY id') == [(18,), (19,), (20,)]


def test_a_partitioned_table_is_backed_up_across_its_partitions(db, tx):
    db.execute(
        "CREATE TABLE events (id int, at date) PARTITION BY RANGE (at);"
        " CREATE TABLE events_2024 PARTITION OF events FOR VALUES FROM ('2024-01-01')"
        " TO ('2025-01-01');"
        " CREATE TABLE events_2025 PARTITION OF events FOR VALUES FROM ('2025-01-01')"
        " TO ('2026-01-01');"
        " INSERT INTO events VALUES (1, '2024-05-01'), (2, '2025-05-01'), (3, '2025-06-01')"
    )
    apply(
        tx, analyse("DELETE FROM events WHERE id <> 2", stamp=STAMP), TIMEOUTS, lambda r: "commit"
    )
    assert rows(db, f'SELECT id FROM "events_backup_{STAMP}" ORDER BY id') == [(1,), (3,)]


@pytest.mark.parametrize(
    ("setup", "text", "words"),
    [
        (
            "CREATE VIEW active_users AS SELECT * FROM users",
            "DELETE FROM active_users WHERE id = 1",
            "is not a table",
        ),
        (
            "CREATE TABLE kids (extra int) INHERITS (users)",
            "DELETE FROM users WHERE id = 1",
            "inheritance children",
        ),
        (
            "CREATE RULE keep AS ON DELETE TO users DO INSTEAD NOTHING",
            "DELETE FROM users WHERE id = 1",
            r"rewrite rules \(keep\)",
        ),
    ],
)
def test_tables_the_rewrite_cannot_back_up_exactly_are_refused(db, tx, setup, text, words):
    db.execute(setup)
    before = state(db)
    with pytest.raises(ManualSqlError, match=words):
        dry_run(tx, analyse(text, stamp=STAMP), TIMEOUTS)
    assert state(db) == before


def test_only_skips_inheritance_children(db, tx):
    db.execute("CREATE TABLE kids (extra int) INHERITS (users)")
    result = apply(
        tx,
        analyse("DELETE FROM ONLY users WHERE id = 1", stamp=STAMP),
        TIMEOUTS,
        lambda r: "commit",
    )
    assert result.statements[0].rowcount == 1


def test_drop_table_and_drop_column_backups_are_verified(db, tx):
    text = "ALTER TABLE users DROP COLUMN legacy;\nDROP TABLE audit_log"
    legacy = rows(db, "SELECT id, legacy FROM users ORDER BY id")
    log = rows(db, "SELECT * FROM audit_log ORDER BY at")
    result = apply(tx, analyse(text, stamp=STAMP), TIMEOUTS, lambda r: "commit")
    assert [(b.kind, b.rows, b.verified) for b in result.backups] == [
        ("columns", 20, True),
        ("table", 8, True),
    ]
    assert rows(db, f'SELECT * FROM "users_backup_{STAMP}" ORDER BY id') == legacy
    assert rows(db, f'SELECT * FROM "audit_log_backup_{STAMP}" ORDER BY at') == log


def test_rows_committed_by_another_session_before_the_run_are_in_a_truncate_backup(
    db, tx, pg_role_url
):
    """The whole-table lock comes before the snapshot: nothing committed before the lock
    can be destroyed without being backed up."""
    with psycopg.connect(pg_role_url, autocommit=True) as other:
        other.execute("INSERT INTO audit_log VALUES (100, 'late')")
    apply(tx, analyse("TRUNCATE audit_log", stamp=STAMP), TIMEOUTS, lambda r: "commit")
    assert rows(db, f'SELECT count(*) FROM "audit_log_backup_{STAMP}"') == [(9,)]
