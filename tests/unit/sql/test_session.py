"""The guarded transaction that runs typed SQL, against a real PostgreSQL as a role
that is not a superuser."""

from __future__ import annotations

import psycopg
import pytest

from bot.errors import UserError
from bot.sql.names import QualifiedName
from bot.sql.session import GuardedTransaction, Limits, SessionChanged, check_lexing

LIMITS = Limits("1500ms", "7s")


@pytest.fixture
def tx(pg_role_url):
    with psycopg.connect(pg_role_url, autocommit=False) as conn:
        guarded = GuardedTransaction(conn, LIMITS)
        yield guarded
        conn.rollback()


def test_one_text_with_two_commands_is_refused_by_the_server(tx, pg_role_url):
    tx.begin()
    with pytest.raises(psycopg.errors.SyntaxError, match="multiple commands"):
        tx.run("SELECT 1; CREATE TABLE smuggled (x int)")
    tx.conn.rollback()
    with psycopg.connect(pg_role_url) as other:
        assert other.execute("SELECT to_regclass('smuggled')").fetchone() == (None,)


def test_even_without_a_prepare_threshold_statements_go_through_parse(tx):
    tx.conn.prepare_threshold = None  # psycopg would then ignore prepare=True
    tx.begin()
    with pytest.raises(psycopg.errors.SyntaxError, match="multiple commands"):
        tx.run("SELECT 1; SELECT 2")


def test_the_bot_sets_timeouts_lexing_and_isolation_itself(tx, conn, pg_role_url):
    role = psycopg.conninfo.conninfo_to_dict(pg_role_url)["user"]
    conn.execute(f'ALTER ROLE "{role}" SET standard_conforming_strings = off')
    conn.execute(f'ALTER ROLE "{role}" SET statement_timeout = 0')
    with psycopg.connect(pg_role_url, autocommit=False) as fresh:
        guarded = GuardedTransaction(fresh, LIMITS)
        guarded.begin()
        settings = guarded.run(
            "SELECT current_setting('standard_conforming_strings'),"
            " current_setting('lock_timeout'), current_setting('statement_timeout'),"
            " current_setting('transaction_isolation')"
        ).fetchone()
        assert settings == ("on", "1500ms", "7s", "repeatable read")
        # 'a\' is a whole string, as the bot's parser reads it.
        assert guarded.run("SELECT 'a\\'").fetchone() == ("a\\",)


def test_a_setting_moved_by_a_statement_aborts(tx, conn, pg_role_url):
    """A function marked STABLE may still call set_config: caught after the statement."""
    conn.execute(
        "CREATE FUNCTION sly() RETURNS int LANGUAGE plpgsql STABLE AS"
        " $$ BEGIN PERFORM set_config('search_path', 'pg_temp', true); RETURN 1; END $$"
    )
    conn.execute("GRANT EXECUTE ON FUNCTION sly() TO PUBLIC")
    tx.begin()
    with pytest.raises(SessionChanged, match="search_path"):
        tx.run("SELECT public.sly()")


def test_a_transaction_that_is_no_longer_open_aborts(tx):
    tx.begin()
    tx.bot("COMMIT")  # what a smuggled COMMIT would do
    with pytest.raises(SessionChanged, match="no longer open"):
        tx.check()


def test_whole_table_locks_are_held_from_the_start(tx, pg_role_url):
    with psycopg.connect(pg_role_url, autocommit=True) as owner:
        owner.execute("CREATE TABLE t (x int); INSERT INTO t VALUES (1)")
    tx.begin(lock=[QualifiedName(None, "t")])
    assert tx.run("SELECT count(*) FROM t").fetchone() == (1,)
    mode = tx.bot(
        "SELECT mode FROM pg_locks WHERE relation = 't'::regclass AND pid = pg_backend_pid()"
    ).fetchall()
    assert ("AccessExclusiveLock",) in mode


def test_the_savepoint_undoes_what_ran_inside(tx, pg_role_url):
    with psycopg.connect(pg_role_url, autocommit=True) as owner:
        owner.execute("CREATE TABLE t (x int)")
    tx.begin()
    with tx.savepoint():
        tx.run("INSERT INTO t VALUES (1)")
    assert tx.run("SELECT count(*) FROM t").fetchone() == (0,)


def test_check_lexing_refuses_a_session_that_reads_strings_differently(conn):
    check_lexing(conn)
    conn.execute("SET standard_conforming_strings = off")
    with pytest.raises(UserError, match="standard_conforming_strings = off"):
        check_lexing(conn)
