"""Every function a typed statement calls, resolved against the live catalog."""

from __future__ import annotations

import pytest
from pglast import parse_sql

from bot.sql.allowlist import statement_calls
from bot.sql.volatility import _VOLATILE_BUILTINS, builtin_refusals, check_calls


def refusals(conn, sql: str) -> list[str]:
    return [r.text() for r in check_calls(conn, statement_calls(parse_sql(sql)[0].stmt))]


def test_the_list_of_volatile_builtins_is_the_servers(conn):
    live = {
        r[0]
        for r in conn.execute(
            "SELECT DISTINCT proname FROM pg_proc WHERE provolatile = 'v'"
            " AND pronamespace = 'pg_catalog'::regnamespace"
        )
    }
    version = conn.info.server_version // 10000
    if version == 15:
        assert live == _VOLATILE_BUILTINS
    else:  # another major version may add some: the live catalog check still catches them
        assert len(live & _VOLATILE_BUILTINS) > 200


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT now(), lower('A'), count(*), coalesce(NULL, 1), current_setting('TimeZone')",
        "SELECT '{}'::jsonb @> '{}'::jsonb, 'a' || 'b', 1 BETWEEN 0 AND 2, 'x' LIKE 'x%'",
        "SELECT gen_random_uuid(), random(), clock_timestamp()",
        "UPDATE pg_temp_table SET x = random() WHERE id = 1",
        "SELECT pg_catalog.upper('a'), 'x'::text, '1'::int, '2025-01-01'::timestamptz",
        "SELECT 1 WHERE 1 IN (SELECT 1) AND 2 = ANY (ARRAY[2])",
    ],
)
def test_reading_functions_operators_and_casts_are_accepted(conn, sql):
    assert refusals(conn, sql) == []


@pytest.mark.parametrize(
    ("sql", "words"),
    [
        ("SELECT pg_terminate_backend(1)", "kills other sessions"),
        ("SELECT pg_catalog.pg_cancel_backend(1)", "cancels other sessions"),
        ("SELECT set_config('search_path', 'x', true)", "changes a setting"),
        ("SELECT pg_advisory_xact_lock(1)", "advisory locks"),
        ("SELECT lo_unlink(1)", "large objects"),
        ("SELECT pg_sleep(1)", "holds the statement's locks"),
        ("SELECT setval('s', 1)", "never rolled back"),
        ("SELECT nextval('s')", "never rolled back"),
        ("SELECT pg_reload_conf()", "volatile"),
        ("SELECT query_to_xml('DELETE FROM x', true, true, '')", "volatile"),
        ("SELECT no_such_function()", "not a function this database knows"),
        ("DELETE FROM t WHERE random() < 0.5", "different value each time"),
        ("UPDATE t SET x = 1 FROM (SELECT gen_random_uuid() AS u) s WHERE t.u = s.u", "each time"),
    ],
)
def test_volatile_and_unknown_functions_are_refused(conn, sql, words):
    found = refusals(conn, sql)
    assert found and words in found[0]


def test_user_defined_volatile_functions_operators_and_casts_are_refused(conn):
    conn.execute(
        "CREATE FUNCTION bump() RETURNS int LANGUAGE sql VOLATILE AS 'SELECT 1';"
        " CREATE FUNCTION reads() RETURNS int LANGUAGE sql STABLE AS 'SELECT 1';"
        " CREATE FUNCTION reads(int) RETURNS int LANGUAGE sql VOLATILE AS 'SELECT 1';"
        " CREATE FUNCTION eq_loudly(int, text) RETURNS bool LANGUAGE sql VOLATILE"
        "  AS 'SELECT true';"
        " CREATE OPERATOR === (LEFTARG = int, RIGHTARG = text, FUNCTION = eq_loudly);"
        " CREATE TYPE mood AS ENUM ('ok');"
        " CREATE FUNCTION mood_of(int) RETURNS mood LANGUAGE sql VOLATILE"
        "  AS $$ SELECT 'ok'::mood $$;"
        " CREATE CAST (int AS mood) WITH FUNCTION mood_of(int);"
        " CREATE FUNCTION random() RETURNS double precision LANGUAGE sql VOLATILE"
        "  AS 'SELECT 0.5::float8'"
    )
    assert "bump() is refused" in refusals(conn, "SELECT bump()")[0]
    # One volatile overload is enough: the bot does not guess which one PostgreSQL picks.
    assert "reads() is refused" in refusals(conn, "SELECT reads()")[0]
    assert "operator ===" in refusals(conn, "SELECT 1 === 'x'")[0]
    assert "cast to mood" in refusals(conn, "SELECT 1::mood")[0]
    # public.random() shadows nothing but is a candidate: refused, unlike pg_catalog's.
    assert "random() is refused" in refusals(conn, "SELECT random()")[0]
    assert refusals(conn, "SELECT pg_catalog.random()") == []


def test_an_extensions_harmless_volatile_function_is_accepted(conn):
    available = conn.execute(
        "SELECT 1 FROM pg_available_extensions WHERE name = 'uuid-ossp'"
    ).fetchone()
    if available is None:
        pytest.skip("uuid-ossp is not available on this server")
    conn.execute('CREATE EXTENSION "uuid-ossp"')
    assert refusals(conn, "SELECT uuid_generate_v4()") == []
    assert "uuid_generate_v4" in refusals(conn, "DELETE FROM t WHERE u = uuid_generate_v4()")[0]


def test_builtin_refusals_need_no_database():
    calls = statement_calls(parse_sql("SELECT pg_terminate_backend(1), lower('x')")[0].stmt)
    assert [r.why.split("(")[0] for r in builtin_refusals(calls)] == ["pg_terminate_backend"]
    own = statement_calls(parse_sql("SELECT myschema.pg_sleep(1)")[0].stmt)
    assert builtin_refusals(own) == []  # another schema's function: the live check decides
