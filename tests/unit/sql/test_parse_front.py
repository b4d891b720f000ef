"""bot.sql.parse builds exactly pglast's own parse (bot/sql/parse.py says why it exists).

The trees feed option 4's SQL safety analysis and the reverse generator, so "the same" is
checked strictly: same classes, every slot (locations and stmt_len included, which
pglast's own Node.__eq__ skips), same Python types (True is not 1), same enum members,
and the same text when deparsed. The fast path is checked on its own (``parse_sql_fast``,
which raises where ``parse_sql`` would fall back), so a fallback cannot make a test pass.

Corpora: every migration of tests/data (trigger.dev's 400, as whole scripts and statement
by statement), every string literal in the test suite (option 4's hostile and allowlist
SQL, the reverse and diagnosis tests' migrations, and every non-SQL string, whose parse
error must be pglast's), and generated statements (hypothesis).
"""

from __future__ import annotations

import ast as python_ast
import enum
import json
from pathlib import Path

import pglast
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pglast import ast
from pglast.parser import ParseError
from pglast.stream import RawStream

from bot.sql import parse as front
from bot.sql.parse import Unknown, parse_sql, parse_sql_fast
from tests.faults.hostile_sql import HOSTILE_SQL

ROOT = Path(__file__).resolve().parents[3]
MIGRATIONS = sorted((ROOT / "tests" / "data").rglob("*.sql"))


def difference(fast, slow, path: str = "") -> str | None:
    """Where two parse results differ (None when identical), slot by slot."""
    if type(fast) is not type(slow):
        return f"{path}: {type(fast).__name__} != {type(slow).__name__}"
    if isinstance(slow, ast.Node):
        for slot in type(slow).__slots__:
            found = difference(getattr(fast, slot), getattr(slow, slot), f"{path}.{slot}")
            if found:
                return found
        return None
    if isinstance(slow, tuple):
        if len(fast) != len(slow):
            return f"{path}: {len(fast)} items != {len(slow)}"
        for index, (a, b) in enumerate(zip(fast, slow, strict=True)):
            found = difference(a, b, f"{path}[{index}]")
            if found:
                return found
        return None
    if isinstance(slow, enum.Enum):
        return None if fast is slow else f"{path}: {fast!r} != {slow!r}"
    return None if fast == slow else f"{path}: {fast!r} != {slow!r}"


def deparsed(statements: tuple) -> list[str]:
    out = []
    for raw in statements:
        try:
            out.append(RawStream()(raw.stmt))
        except Exception as exc:  # noqa: BLE001 - pglast's printer errors, compared as text
            out.append(f"{type(exc).__name__}: {exc}")
    return out


def assert_same_parse(sql: str, *, fast_path: bool = True) -> None:
    """``sql`` parses the same through bot.sql.parse as through pglast, or fails the same.

    ``fast_path``: the fast path itself must build it (no fallback to pglast)."""
    try:
        slow = pglast.parse_sql(sql)
    except ParseError as exc:
        with pytest.raises(ParseError) as raised:
            parse_sql(sql)
        assert raised.value.args == exc.args, sql
        return
    if fast_path and may_hold_empty_string(sql):
        with pytest.raises(Unknown):
            parse_sql_fast(sql)  # the one case the fast path leaves to pglast on purpose
        fast_path = False
    fast = parse_sql_fast(sql) if fast_path else parse_sql(sql)
    assert difference(fast, slow) is None, (difference(fast, slow), sql)
    assert fast == slow  # pglast's own equality too
    assert deparsed(fast) == deparsed(slow), sql


def may_hold_empty_string(sql: str) -> bool:
    return "''" in sql or front._EMPTY_DOLLAR_QUOTE.search(sql) is not None


def test_the_corpus_is_there():
    assert len(MIGRATIONS) >= 400


@pytest.mark.parametrize("path", MIGRATIONS, ids=lambda p: p.parent.name or p.name)
def test_every_migration_and_each_of_its_statements(path: Path):
    sql = path.read_text()
    assert_same_parse(sql)  # (tests/data/state holds a SQLite schema: the same error)
    for raw in pglast.parse_sql(sql) if _parses(sql) else ():
        start = raw.stmt_location or 0
        end = start + raw.stmt_len if raw.stmt_len else len(sql)
        assert_same_parse(sql[start:end])


def string_literals() -> list[str]:
    """Every string constant in the test suite's Python files (SQL or not)."""
    found = set()
    for path in sorted((ROOT / "tests").rglob("*.py")):
        for node in python_ast.walk(python_ast.parse(path.read_text())):
            if isinstance(node, python_ast.Constant) and isinstance(node.value, str):
                found.add(node.value)
    return sorted(found)


def test_every_string_literal_of_the_test_suite():
    literals = string_literals()
    assert len(literals) > 3000
    parsed = 0
    for sql in literals:
        assert_same_parse(sql)
        parsed += _parses(sql)
    assert parsed > 900  # a corpus of SQL, not only of parse errors


def test_option_4_hostile_sql():
    for sql in HOSTILE_SQL:
        assert_same_parse(sql)


def _parses(sql: str) -> int:
    try:
        return bool(pglast.parse_sql(sql))
    except ParseError:
        return 0


# ---------------------------------------------------------------- generated statements

IDENTIFIER = st.one_of(
    st.sampled_from(["id", "user", "select", "Name", "ünïcode", "a b", 'q"uote', "x" * 70]),
    st.text(
        alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"),
        min_size=1,
        max_size=8,
    ),
)
LITERAL = st.one_of(
    st.integers(-(2**70), 2**70).map(str),
    st.floats(allow_nan=False, allow_infinity=False).map(repr),
    st.text(max_size=12)
    .filter(lambda s: "\x00" not in s)
    .map(lambda s: "'" + s.replace("'", "''") + "'"),
    st.sampled_from(
        ["NULL", "TRUE", "false", "B'0101'", "X'1F'", "E'a\\nb'", "$$x$$", "$t$;$t$", "0", "-0.0"]
    ),
)
TYPE = st.sampled_from(
    [
        "TEXT",
        "INTEGER",
        "VARCHAR(3)",
        "numeric(10,2)",
        "timestamp(3) with time zone",
        "int[]",
        "jsonb",
        '"Enum"',
        "char",
    ]
)


def quoted(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


@st.composite
def expression(draw, depth: int = 2) -> str:
    if depth == 0 or draw(st.booleans()):
        return draw(st.one_of(LITERAL, IDENTIFIER.map(quoted)))
    a, b = draw(expression(depth - 1)), draw(expression(depth - 1))
    form = draw(
        st.sampled_from(
            [
                "{a} + {b}",
                "{a} = {b}",
                "{a} IS NULL",
                "NOT {a}",
                "{a} IN ({a}, {b})",
                "coalesce({a}, {b})",
                "{a}::{t}",
                "CASE WHEN {a} THEN {b} END",
                "{a} BETWEEN {b} AND {a}",
                "{a} LIKE {b}",
                "ARRAY[{a}, {b}]",
                "({a}) AND ({b}) OR {a}",
                "(SELECT {a})",
                '{a} COLLATE "C"',
            ]
        )
    )
    return form.format(a=a, b=b, t=draw(TYPE))


@st.composite
def statement(draw) -> str:
    t, c, d = (quoted(draw(IDENTIFIER)) for _ in range(3))
    e, typ = draw(expression()), draw(TYPE)
    return draw(
        st.sampled_from(
            [
                f"CREATE TABLE {t} ({c} {typ} NOT NULL DEFAULT {e}, {d} SERIAL,"
                f" CONSTRAINT {quoted('pk')} PRIMARY KEY ({d}))",
                f"ALTER TABLE {t} ADD COLUMN {c} {typ}",
                f"ALTER TABLE {t} DROP COLUMN IF EXISTS {c} CASCADE",
                f"ALTER TABLE {t} ALTER COLUMN {c} SET DEFAULT {e}",
                f"ALTER TABLE {t} ALTER COLUMN {c} TYPE {typ} USING {e}",
                f"ALTER TABLE {t} RENAME COLUMN {c} TO {d}",
                f"ALTER TABLE {t} ADD CONSTRAINT {c} FOREIGN KEY ({d}) REFERENCES {t}({c})"
                " ON DELETE SET NULL ON UPDATE CASCADE",
                f"CREATE UNIQUE INDEX {c} ON {t}({d} DESC NULLS LAST) WHERE {e}",
                f"CREATE TYPE {t} AS ENUM ('a', {draw(LITERAL)})",
                f"DROP TABLE {t}, {c}",
                f"SELECT {e}, {c} AS {d} FROM {t} WHERE {e} ORDER BY 1 LIMIT 3",
                f"UPDATE {t} SET {c} = {e} WHERE {d} > {e} RETURNING *",
                f"DELETE FROM {t} USING {c} WHERE {e}",
                f"INSERT INTO {t} ({c}) VALUES ({e}) ON CONFLICT DO NOTHING",
                f"WITH x AS (DELETE FROM {t} RETURNING *) SELECT count(*) FROM x",
                f"SET {draw(st.sampled_from(['search_path', 'lock_timeout']))} = {e}",
                f"COMMENT ON COLUMN {t}.{c} IS {draw(LITERAL)}",
                f"DO $$ BEGIN PERFORM {e}; END $$",
                f"CREATE OR REPLACE FUNCTION {t}() RETURNS trigger"
                " AS $$ BEGIN RETURN NEW; END $$ LANGUAGE plpgsql",
                f"GRANT SELECT ON {t} TO {c}",
            ]
        )
    )


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.lists(statement(), min_size=1, max_size=4),
    st.sampled_from([";\n", ";", "; -- é\n", ";\n/* ☃ */ "]),
)
def test_generated_statements(statements, separator):
    assert_same_parse(separator.join(statements))


@settings(max_examples=300, deadline=None)
@given(
    st.lists(
        st.sampled_from(
            [
                "SELECT",
                "(",
                ")",
                "'é'",
                "1",
                ",",
                ";",
                "FROM",
                "t",
                "--x\n",
                "$$",
                '"',
                "E'\\''",
                "::",
                "int",
                "WHERE",
                "*",
                "ÿ",
            ]
        ),
        max_size=12,
    )
)
def test_generated_token_soup(tokens):
    """Mostly not SQL: the error (message and position) must be pglast's."""
    assert_same_parse(" ".join(tokens), fast_path=False)


# ---------------------------------------------------------------- what it does not know


def build(tree: dict, sql: str = "SELECT 1"):
    return front._Builder(sql).statements(tree)


@pytest.mark.parametrize(
    "stmt",
    [
        {"NoSuchNode": {}},  # a node type pglast does not define
        {
            "SelectStmt": {"op": "SETOP_NONE", "limitOption": "LIMIT_OPTION_DEFAULT", "newField": 1}
        },  # a key
        {
            "SelectStmt": {"op": "SETOP_SOMETHING_NEW", "limitOption": "LIMIT_OPTION_DEFAULT"}
        },  # enum name
        {"SelectStmt": {"limitOption": "LIMIT_OPTION_DEFAULT"}},  # an enum left out
        {
            "SelectStmt": {"op": "SETOP_NONE", "limitOption": "LIMIT_OPTION_DEFAULT", "all": 1}
        },  # bool as int
        {"ColumnRef": {"location": "7"}},  # a location that is not an integer
        {"RangeVar": {"relpersistence": "pp", "inh": True}},  # a char of two
        {"A_Const": {"ival": {"ival": 1}, "sval": {"sval": "x"}}},  # two union members
        {"A_Const": {"isnull": True, "ival": {"ival": 1}}},
        {"A_Const": {"ival": {"ival": "1"}}},
        {"Query": {}},  # planner-only types (Bitmapset*, ...) have no rule
        [1],
    ],
)
def test_what_the_fast_path_does_not_know_is_not_guessed(stmt):
    with pytest.raises(Unknown):
        build({"stmts": [{"stmt": stmt}]})


def test_an_unknown_tree_falls_back_to_pglast(monkeypatch):
    # The JSON writer of a future libpg_query, simulated: the front end must not guess.
    sql = "SELECT a FROM t"
    tree = json.loads(pglast.parser.parse_sql_json(sql))
    tree["stmts"][0]["stmt"]["SelectStmt"]["futureField"] = True
    monkeypatch.setattr(front, "parse_sql_json", lambda _sql: json.dumps(tree))
    with pytest.raises(Unknown):
        parse_sql_fast(sql)
    assert difference(parse_sql(sql), pglast.parse_sql(sql)) is None


@pytest.mark.parametrize(
    "sql",
    [
        "COMMENT ON TABLE t IS ''",
        "COMMENT ON TABLE t IS $$$$",
        "ALTER TYPE e ADD VALUE $x$$x$",
        "NOTIFY c, E''",
    ],
)
def test_an_empty_string_literal_goes_to_pglast(sql):
    """libpg_query's JSON writes an empty string field as it writes NULL (nothing): built
    from the JSON it would be None where pglast has ''. So such a script is not built."""
    built = front._Builder(sql).statements(json.loads(pglast.parser.parse_sql_json(sql)))
    assert difference(built, pglast.parse_sql(sql)) is not None  # why the rule exists
    with pytest.raises(Unknown):
        parse_sql_fast(sql)
    assert difference(parse_sql(sql), pglast.parse_sql(sql)) is None


@pytest.mark.parametrize(
    "sql",
    [
        "CREATE ROLE r NOSUPERUSER",  # a Boolean node writes boolval false
        "ALTER TABLE t ADD COLUMN c int DEFAULT 0",  # an Integer 0: {"ival": {}}
        "SELECT -0.0, B'1', X'F', true, false, NULL, 1e400",
        "CREATE INDEX CONCURRENTLY i ON t USING gin (c jsonb_path_ops) INCLUDE (d)",
        "ALTER TABLE t ALTER COLUMN c ADD GENERATED ALWAYS AS IDENTITY",  # a char field
    ],
)
def test_the_fast_path_itself_builds(sql):
    assert difference(parse_sql_fast(sql), pglast.parse_sql(sql)) is None


def test_locations_are_characters_not_utf8_bytes():
    sql = 'SELECT \'ünïcödé ☃\', "é" FROM "tä"; SELECT 1'
    fast = parse_sql_fast(sql)
    assert difference(fast, pglast.parse_sql(sql)) is None
    assert sql[fast[1].stmt_location :].startswith("SELECT 1")
