"""Property: migrations that drop, re-create and rename objects of the same names,
failed at every statement, are never judged confidently wrong, and every undo the bot
recommends restores the schema exactly as before the migration.

Hypothesis draws statements from small pools of names (so a later statement often
re-creates what an earlier one dropped), keeps those that run in sequence on the real
PostgreSQL, and hands the resulting migration to the same checks the real histories go
through (tests/unit/sql/history_checks.py): every failure point diagnosed and the advice
followed, then the whole migration applied and its reverse run. Each example runs inside
one transaction that is rolled back.
"""

from __future__ import annotations

import psycopg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.rig.postgres import database_name
from tests.unit.sql.history_checks import Migration, Tally, every_point, walk_history

pytestmark = pytest.mark.timeout(1200)

BASE = """CREATE TYPE "Role" AS ENUM ('USER', 'ADMIN');
CREATE TABLE "User" (
    "id" TEXT NOT NULL,
    "email" TEXT NOT NULL,
    "name" TEXT,
    "role" "Role" NOT NULL DEFAULT 'USER',
    CONSTRAINT "User_pkey" PRIMARY KEY ("id")
);
CREATE TABLE "Post" (
    "id" SERIAL NOT NULL,
    "authorId" TEXT,
    "title" TEXT NOT NULL DEFAULT '',
    "views" INTEGER,
    CONSTRAINT "Post_pkey" PRIMARY KEY ("id")
);
CREATE UNIQUE INDEX "User_email_key" ON "User"("email");
CREATE INDEX "Post_authorId_idx" ON "Post"("authorId");
ALTER TABLE "Post" ADD CONSTRAINT "Post_authorId_fkey" FOREIGN KEY ("authorId")
    REFERENCES "User"("id") ON DELETE SET NULL ON UPDATE CASCADE;
"""

# Names from small pools, so that statements meet: a table dropped and created again, a
# foreign key dropped and re-added with another action, a column dropped and added back.
TABLES = st.sampled_from(["User", "Post", "Tag"])
COLUMN_OF = st.sampled_from(
    [
        ("User", "email"),
        ("User", "name"),
        ("User", "note"),
        ("Post", "authorId"),
        ("Post", "title"),
        ("Post", "views"),
        ("Post", "note"),
        ("Tag", "note"),
    ]
)
INDEXES = st.sampled_from(["User_email_key", "Post_authorId_idx", "Tag_note_idx", "Post_views_idx"])
INDEX_ON = st.sampled_from(
    [
        ("User_email_key", "User", "email"),
        ("Post_authorId_idx", "Post", "authorId"),
        ("Post_views_idx", "Post", "views"),
        ("Tag_note_idx", "Tag", "note"),
    ]
)
CONSTRAINT_OF = st.sampled_from(
    [
        ("Post", "Post_authorId_fkey"),
        ("Post", "Post_pkey"),
        ("User", "User_pkey"),
        ("Tag", "Tag_pkey"),
    ]
)
TYPES = st.sampled_from(["TEXT", "INTEGER", "VARCHAR(20)"])
ACTIONS = st.sampled_from(["CASCADE", "SET NULL", "RESTRICT"])
MAYBE = st.sampled_from(["", "IF EXISTS "])


def _sql(template: str, **parts) -> st.SearchStrategy[str]:
    def render(**drawn) -> str:
        flat = {}
        for key, value in drawn.items():
            if isinstance(value, tuple):
                flat.update({f"{key}{n}": v for n, v in enumerate(value)})
            else:
                flat[key] = value
        return template.format(**flat)

    return st.builds(render, **parts)


# Pairs that re-create what they drop, under the same name: the cases names alone misjudge.
RE_CREATIONS = st.one_of(
    _sql(
        'DROP TABLE "{t}" CASCADE;\nCREATE TABLE "{t}" ("id" TEXT NOT NULL, "{c}" {ty},'
        ' CONSTRAINT "{t}_pkey" PRIMARY KEY ("id"))',
        t=st.sampled_from(["User", "Post"]),
        c=st.sampled_from(["email", "authorId", "views"]),
        ty=TYPES,
    ),
    _sql(
        'ALTER TABLE "Post" DROP CONSTRAINT "Post_authorId_fkey";\nALTER TABLE "Post" ADD'
        ' CONSTRAINT "Post_authorId_fkey" FOREIGN KEY ("authorId") REFERENCES "User"("id")'
        " ON DELETE {a} ON UPDATE CASCADE",
        a=ACTIONS,
    ),
    _sql(
        'DROP INDEX "{i0}";\nCREATE {u}INDEX "{i0}" ON "{i1}"("{i2}")',
        i=INDEX_ON,
        u=st.sampled_from(["", "UNIQUE "]),
    ),
    _sql(
        'ALTER TABLE "{c0}" DROP COLUMN "{c1}";\nALTER TABLE "{c0}" ADD COLUMN "{c1}" {ty}',
        c=COLUMN_OF,
        ty=TYPES,
    ),
)

SINGLE = st.one_of(
    _sql('DROP TABLE {m}"{t}" CASCADE', m=MAYBE, t=TABLES),
    _sql(
        'CREATE TABLE "{t}" ("id" TEXT NOT NULL, "{c}" {ty}, "note" TEXT,'
        ' CONSTRAINT "{t}_pkey" PRIMARY KEY ("id"))',
        t=TABLES,
        c=st.sampled_from(["email", "authorId", "title"]),
        ty=TYPES,
    ),
    _sql('ALTER TABLE "{k0}" DROP CONSTRAINT {m}"{k1}"', k=CONSTRAINT_OF, m=MAYBE),
    _sql(
        'ALTER TABLE "Post" ADD CONSTRAINT "Post_authorId_fkey" FOREIGN KEY ("authorId")'
        ' REFERENCES "User"("id") ON DELETE {a} ON UPDATE CASCADE',
        a=ACTIONS,
    ),
    _sql('DROP INDEX {m}"{i}"', m=MAYBE, i=INDEXES),
    _sql(
        'CREATE {u}INDEX {n}"{i0}" ON "{i1}"("{i2}")',
        u=st.sampled_from(["", "UNIQUE "]),
        n=st.sampled_from(["", "IF NOT EXISTS "]),
        i=INDEX_ON,
    ),
    _sql('ALTER TABLE "{c0}" ADD COLUMN "{c1}" {ty}', c=COLUMN_OF, ty=TYPES),
    _sql('ALTER TABLE "{c0}" DROP COLUMN {m}"{c1}"', c=COLUMN_OF, m=MAYBE),
    _sql(
        'ALTER TABLE "{c0}" RENAME COLUMN "{c1}" TO "{n}"',
        c=COLUMN_OF,
        n=st.sampled_from(["note", "memo"]),
    ),
    _sql('ALTER TABLE "{t}" RENAME TO "{u}"', t=TABLES, u=st.sampled_from(["Tag", "Old"])),
    _sql('ALTER INDEX "{i}" RENAME TO "{j}"', i=INDEXES, j=INDEXES),
    _sql(
        'ALTER TABLE "{k0}" RENAME CONSTRAINT "{k1}" TO "{n}"',
        k=CONSTRAINT_OF,
        n=st.sampled_from(["Post_pkey", "Tag_pkey", "Old_pkey"]),
    ),
    _sql(
        'ALTER TABLE "{c0}" ALTER COLUMN "{c1}" {what}',
        c=COLUMN_OF,
        what=st.sampled_from(
            ["SET NOT NULL", "DROP NOT NULL", "SET DEFAULT 'x'", "DROP DEFAULT", "TYPE TEXT"]
        ),
    ),
    _sql(
        'ALTER TABLE "{i1}" ADD CONSTRAINT "{i1}_pkey" PRIMARY KEY USING INDEX "{i0}"', i=INDEX_ON
    ),
    _sql(
        "ALTER TYPE \"Role\" ADD VALUE {m}'{v}'",
        m=st.sampled_from(["", "IF NOT EXISTS "]),
        v=st.sampled_from(["EDITOR", "ADMIN"]),
    ),
    _sql('UPDATE "{c0}" SET "{c1}" = NULL', c=COLUMN_OF),
)
STATEMENTS = st.one_of(RE_CREATIONS, SINGLE, SINGLE).map(lambda sql: sql.split(";\n"))


@pytest.fixture(scope="module")
def conn(pg_server):
    url = pg_server.create_database()
    try:
        with psycopg.connect(url, autocommit=True) as connection:
            yield connection
    finally:
        pg_server.drop_database(database_name(url))


def runnable(conn: psycopg.Connection, statements: list[str]) -> list[str]:
    """The statements that run one after the other on the base schema (the rest dropped)."""
    kept = []
    with conn.transaction(force_rollback=True):
        conn.execute(BASE)
        for statement in statements:
            try:
                with conn.transaction():
                    conn.execute(statement)
            except psycopg.Error:
                continue
            kept.append(statement)
    return kept


@settings(
    max_examples=100,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
@given(st.lists(STATEMENTS, min_size=1, max_size=6))
def test_no_confidently_wrong_verdict_and_every_undo_is_exact(conn, drawn):
    kept = runnable(conn, [statement for group in drawn for statement in group])
    if len(kept) < 2:
        return
    migration = Migration("20260102000000_generated", "".join(f"{s};\n" for s in kept))
    history = [Migration("20260101000000_base", BASE), migration]
    tally = Tally()

    with conn.transaction(force_rollback=True):
        walk_history(conn, history, tally, choose=every_point, checked_from=1)

    assert tally.statements_wrong == 0, (migration.sql, tally.examples)
    assert tally.undo_failed == tally.undo_inexact == 0, (migration.sql, tally.examples)
    assert tally.resolve_wrong == 0, (migration.sql, tally.examples)
    assert tally.reverse_failed == tally.reverse_inexact == 0, (migration.sql, tally.examples)
