"""Properties (hypothesis) over generated statement mixes against a real PostgreSQL:

- nothing before approval (analysis and dry run) changes the catalog, a row, another
  session, the locks or the server's file system, even for a superuser's connection;
- after a committed run, every backup holds exactly the rows the statement destroyed (gone,
  or changed), through cascades, SET NULL, data-modifying WITH queries, USING and FROM.
"""

from __future__ import annotations

import os
import uuid
from collections import Counter

import psycopg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bot.errors import UserError
from bot.sql.manual import analyse
from bot.sql.manual_run import apply, dry_run
from bot.sql.session import Limits
from tests.faults.hostile_sql import HOSTILE_SQL
from tests.unit.sql.catalog_snapshot import catalog_snapshot_of

LIMITS = Limits("2s", "5s")
TABLES = ("users", "projects", "tasks", "notes")
SCHEMA = """
CREATE TABLE users (id int PRIMARY KEY, email text NOT NULL, team text);
CREATE TABLE projects (id int PRIMARY KEY, owner_id int REFERENCES users ON DELETE CASCADE,
    name text);
CREATE TABLE tasks (id int PRIMARY KEY, project_id int REFERENCES projects ON DELETE CASCADE,
    assignee_id int REFERENCES users ON DELETE SET NULL, title text);
CREATE TABLE notes (id int PRIMARY KEY, user_id int, note text);
"""
DATA = """
INSERT INTO users SELECT n, 'u' || n || '@example.com', (ARRAY['a', 'b', 'c'])[n % 3 + 1]
    FROM generate_series(1, 30) n;
INSERT INTO projects SELECT n, n % 30 + 1, 'p' || n FROM generate_series(1, 40) n;
INSERT INTO tasks SELECT n, n % 40 + 1, CASE WHEN n % 4 = 0 THEN NULL ELSE n % 30 + 1 END,
    't' || n FROM generate_series(1, 90) n;
INSERT INTO notes SELECT n, n % 30 + 1, 'n' || n FROM generate_series(1, 25) n;
"""

_table = st.sampled_from(TABLES)
_predicate = st.one_of(
    st.integers(1, 45).map(lambda k: f"id < {k}"),
    st.tuples(st.integers(2, 7), st.integers(0, 6)).map(
        lambda t: f"id % {t[0]} = {t[0] - 1 - t[1] % t[0]}"
    ),
    st.lists(st.integers(1, 95), min_size=1, max_size=4).map(
        lambda ids: "id IN (" + ", ".join(map(str, ids)) + ")"
    ),
    st.just("true"),
    st.integers(1, 40).map(lambda k: f"id IN (SELECT user_id FROM notes WHERE id < {k})"),
)
_column = {"users": "team", "projects": "name", "tasks": "title", "notes": "note"}


@st.composite
def _destructive(draw) -> str:
    table = draw(_table)
    where = draw(_predicate)
    column = _column[table]
    kind = draw(st.integers(0, 6))
    return [
        f"DELETE FROM {table} WHERE {where}",
        f"UPDATE {table} SET {column} = {column} || '!' WHERE {where}",
        f"WITH gone AS (DELETE FROM {table} WHERE {where} RETURNING id) SELECT count(*) FROM gone",
        f"WITH gone AS (DELETE FROM {table} WHERE {where}) SELECT 1",
        f"WITH moved AS (UPDATE {table} SET {column} = 'x' WHERE {where} RETURNING id)"
        " SELECT count(*) FROM moved",
        f"DELETE FROM {table} t USING notes n WHERE t.id = n.user_id AND n.{where}",
        f"UPDATE {table} t SET {column} = n.note FROM notes n WHERE t.id = n.id AND n.{where}",
    ][kind]


_harmless = st.sampled_from(
    [
        "SELECT count(*) FROM users",
        "SELECT * FROM tasks WHERE assignee_id IS NULL",
        "SELECT email FROM users ORDER BY id LIMIT 3",
    ]
)
_schema_change = st.sampled_from(
    [
        "ALTER TABLE notes ADD COLUMN extra int DEFAULT 1",
        "ALTER TABLE notes DROP COLUMN note",
        "DROP TABLE notes",
        "TRUNCATE tasks",
        "TRUNCATE projects CASCADE",
        "CREATE INDEX ON users (team)",
        "CREATE TABLE made (id int)",
        "INSERT INTO notes VALUES (900, 1, 'new')",
    ]
)


def _hostile(path: str):
    return st.sampled_from(
        [
            *HOSTILE_SQL[:40],
            f"COPY (SELECT 1) TO '{path}'",
            f"COPY (SELECT 1) TO PROGRAM 'touch {path}'",
            f"SELECT lo_export(lo_from_bytea(0, 'x'), '{path}')",
        ]
    )


@pytest.fixture
def role_db(pg_role_url):
    with psycopg.connect(pg_role_url, autocommit=True) as conn:
        conn.execute(SCHEMA)
        conn.execute(DATA)
        yield conn


def _reset(conn) -> None:
    for (name,) in conn.execute(
        "SELECT quote_ident(relname) FROM pg_class WHERE relkind = 'r'"
        " AND relnamespace = 'public'::regnamespace AND relname LIKE '%\\_backup\\_%'"
    ).fetchall():
        conn.execute(f"DROP TABLE {name}")
    conn.execute("TRUNCATE " + ", ".join(TABLES))
    conn.execute(DATA)


def _state(conn) -> tuple:
    hashes = {
        t: conn.execute(
            f"SELECT md5(coalesce(string_agg(x::text, ',' ORDER BY x::text), '')) FROM {t} x"
        ).fetchone()[0]
        for t in TABLES
    }
    return catalog_snapshot_of(conn), hashes


def test_nothing_before_approval_leaves_a_trace(pg_url, role_db, conn):
    """The bot's connection is a superuser here: what stops these is the bot, not a
    missing privilege."""
    path = f"/tmp/rollback-bot-property-{uuid.uuid4().hex}"
    statements = st.one_of(_destructive(), _harmless, _schema_change, _hostile(path))
    with psycopg.connect(pg_url, autocommit=True) as sentinel:
        sentinel_pid = sentinel.info.backend_pid
        before = _state(conn)

        @settings(
            max_examples=60,
            deadline=None,
            derandomize=True,
            suppress_health_check=list(HealthCheck),
        )
        @given(mix=st.lists(statements, min_size=1, max_size=5))
        def check(mix):
            sql = ";\n".join(mix)
            try:
                manual = analyse(sql, "SELECT count(*) FROM users", stamp="20250101_000000")
                with psycopg.connect(pg_url, autocommit=False) as bot:
                    dry_run(bot, manual, LIMITS)
            except UserError:
                pass  # refused or failed: still nothing may have changed
            assert _state(conn) == before, sql
            assert sentinel.execute("SELECT pg_backend_pid()").fetchone() == (sentinel_pid,)
            assert not os.path.exists(path), sql
            locks = conn.execute(
                "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory'"
                " OR (locktype = 'relation' AND pid <> pg_backend_pid()"
                " AND relation IN (SELECT oid FROM pg_class WHERE relnamespace ="
                " 'public'::regnamespace))"
            ).fetchone()
            assert locks == (0,), sql

        check()


def test_every_backup_holds_exactly_the_rows_the_statement_destroyed(pg_role_url, role_db, conn):
    @settings(
        max_examples=60,
        deadline=None,
        derandomize=True,
        suppress_health_check=list(HealthCheck),
    )
    @given(
        before_it=st.lists(_harmless, max_size=2),
        statement=_destructive(),
        after_it=st.lists(_harmless, max_size=2),
    )
    def check(before_it, statement, after_it):
        _reset(role_db)
        rows_before = {t: _rows(conn, t) for t in TABLES}
        sql = ";\n".join([*before_it, statement, *after_it])
        try:
            manual = analyse(sql, stamp="20250101_000000")
            with psycopg.connect(pg_role_url, autocommit=False) as bot:
                result = apply(bot, manual, LIMITS, lambda r: "commit")
        except UserError:
            assert {t: _rows(conn, t) for t in TABLES} == rows_before, sql
            return
        for table in TABLES:
            # Gone, or written again (a new row version, even with the same values).
            now = {key: version for key, _, version in _rows(conn, table)}
            destroyed = Counter(
                text for key, text, version in rows_before[table] if now.get(key) != version
            )
            backed_up = Counter()
            for backup in result.backups:
                if backup.source.split(".")[-1] == table and not backup.skipped:
                    backed_up.update(
                        r[0] for r in conn.execute(f"SELECT b::text FROM {backup.name} b")
                    )
            assert backed_up == destroyed, (sql, table)

    check()


def _rows(conn, table: str) -> list[tuple[int, str, str]]:
    return conn.execute(f"SELECT id, x::text, xmin::text FROM {table} x ORDER BY id").fetchall()
