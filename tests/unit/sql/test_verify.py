"""Reverses that run, and a verify step that compares by definition.

Each case: a history, a migration applied to it, the generated reverse run as a revert file
runs (one simple query), then the catalog must be exactly as before the migration and the
diagnosis must find nothing still in effect (``differences_from_before``). The cases are the
ones that made a correct revert end as failed ("still in effect") or a reverse fail to run.
"""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from bot.sql.diagnosis import diagnose
from bot.sql.impact import LiveImpact
from bot.sql.reverse import reverse_script

STAMP = "20260101"
USERS = (
    'CREATE TABLE "User" ("id" TEXT NOT NULL, "email" TEXT NOT NULL,'
    ' CONSTRAINT "User_pkey" PRIMARY KEY ("id"));\n'
    'CREATE TABLE "Post" ("id" TEXT NOT NULL, "authorId" TEXT, "tenant" TEXT NOT NULL,'
    ' CONSTRAINT "Post_pkey" PRIMARY KEY ("id"));\n'
    'ALTER TABLE "Post" ADD CONSTRAINT "Post_authorId_fkey" FOREIGN KEY ("authorId")'
    ' REFERENCES "User"("id") ON DELETE SET NULL ON UPDATE CASCADE;\n'
)


@dataclass(frozen=True)
class Case:
    id: str
    history: str
    migration: str


CASES = [
    Case(
        "foreign_key_re_added_under_the_same_name",
        USERS,
        'ALTER TABLE "Post" DROP CONSTRAINT "Post_authorId_fkey";\n'
        'ALTER TABLE "Post" ADD CONSTRAINT "Post_authorId_fkey" FOREIGN KEY ("authorId")'
        ' REFERENCES "User"("id") ON DELETE CASCADE ON UPDATE CASCADE;\n',
    ),
    Case(
        "rename_constraint",
        USERS,
        'ALTER TABLE "Post" RENAME CONSTRAINT "Post_authorId_fkey" TO "Post_author_fkey";\n',
    ),
    Case(
        "composite_keys",
        USERS,
        'ALTER TABLE "Post" DROP CONSTRAINT "Post_pkey",\n'
        'ADD CONSTRAINT "Post_pkey" PRIMARY KEY ("id", "tenant");\n'
        'CREATE UNIQUE INDEX "Post_tenant_authorId_key" ON "Post"("tenant", "authorId");\n',
    ),
    Case(
        "drop_default_on_a_column_the_revert_removes",
        USERS,
        'ALTER TABLE "User" ADD COLUMN "plan" TEXT NOT NULL DEFAULT \'free\';\n'
        'ALTER TABLE "User" ALTER COLUMN "plan" DROP DEFAULT;\n',
    ),
    Case(
        "primary_key_using_index_gives_the_index_back",
        USERS + 'CREATE UNIQUE INDEX "Post_id_tenant_key" ON "Post"("id", "tenant");\n',
        'ALTER TABLE "Post" DROP CONSTRAINT "Post_pkey",\n'
        'ADD CONSTRAINT "Post_pkey" PRIMARY KEY USING INDEX "Post_id_tenant_key";\n',
    ),
    Case(
        "unique_using_index_gives_the_index_back",
        USERS + 'CREATE UNIQUE INDEX "User_email_idx" ON "User"("email");\n',
        'ALTER TABLE "User" ADD CONSTRAINT "User_email_key" UNIQUE USING INDEX "User_email_idx";\n',
    ),
    Case(
        "unnamed_unique_using_index_gives_the_index_back",
        USERS + 'CREATE UNIQUE INDEX "Post_tenant_authorId_idx" ON "Post"("tenant", "authorId");\n',
        'ALTER TABLE "Post" ADD UNIQUE USING INDEX "Post_tenant_authorId_idx";\n'
        'ALTER TABLE "Post" ADD COLUMN "slug" TEXT;\n',
    ),
    Case(
        "unique_made_using_index_dropped_comes_back_with_its_index",
        USERS + 'CREATE UNIQUE INDEX "User_email_idx" ON "User"("email");\n'
        'ALTER TABLE "User" ADD CONSTRAINT "User_email_key" UNIQUE USING INDEX "User_email_idx";\n',
        'ALTER TABLE "User" DROP CONSTRAINT "User_email_key";\n',
    ),
    Case(
        "primary_key_on_a_nullable_column_gives_the_null_back",
        'CREATE TABLE "Tag" ("name" TEXT, "note" TEXT);\n',
        'ALTER TABLE "Tag" ADD CONSTRAINT "Tag_pkey" PRIMARY KEY ("name");\n',
    ),
    Case(
        "index_dropped_concurrently_is_rebuilt_in_the_transaction",
        USERS + 'CREATE INDEX CONCURRENTLY "Post_tenant_idx" ON "Post"("tenant");\n',
        'DROP INDEX CONCURRENTLY "Post_tenant_idx";\n',
    ),
    Case(
        "table_dropped_with_cascade_and_created_again_in_the_same_migration",
        USERS,
        'CREATE TABLE "Log" ("id" TEXT NOT NULL, CONSTRAINT "Log_pkey" PRIMARY KEY ("id"));\n'
        'DROP TABLE "Log" CASCADE;\n'
        'CREATE TABLE "Log" ("id" INTEGER NOT NULL, CONSTRAINT "Log_pkey" PRIMARY KEY ("id"));\n',
    ),
    Case(
        "enum_value_stays_and_is_not_a_difference",
        "CREATE TYPE \"Role\" AS ENUM ('USER');\n" + USERS,
        "ALTER TYPE \"Role\" ADD VALUE 'ADMIN';\n"
        'ALTER TABLE "User" ADD COLUMN "role" "Role" NOT NULL DEFAULT \'USER\';\n',
    ),
    Case(
        "functions_replaced_dropped_and_created_and_a_trigger",
        USERS + "CREATE FUNCTION stamp() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RETURN NEW;"
        " END $$;\n"
        "CREATE FUNCTION old_helper(a integer) RETURNS integer LANGUAGE sql AS 'SELECT a';\n",
        "CREATE OR REPLACE FUNCTION stamp() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN"
        ' NEW."email" := lower(NEW."email"); RETURN NEW; END $$;\n'
        "DROP FUNCTION IF EXISTS old_helper(int);\n"
        "CREATE FUNCTION new_helper(a text, b int DEFAULT 1) RETURNS text LANGUAGE sql"
        " AS 'SELECT a';\n"
        'CREATE TRIGGER "User_stamp" BEFORE INSERT ON "User" FOR EACH ROW EXECUTE FUNCTION'
        " stamp();\n",
    ),
    Case(
        "type_changed_and_its_default_written_again",
        'CREATE TABLE "Prompt" ("id" TEXT NOT NULL, "config" JSONB NOT NULL DEFAULT \'{}\');\n',
        'ALTER TABLE "Prompt" ALTER COLUMN "config" TYPE JSON USING "config"::JSON;\n'
        'ALTER TABLE "Prompt" ALTER COLUMN "config" SET DEFAULT \'{}\'::JSON;\n',
    ),
    Case(
        "enum_recreated_with_the_column_default_moved_over",
        "CREATE TYPE \"Severity\" AS ENUM ('UNKNOWN', 'OK');\n"
        'CREATE TABLE "Monitor" ("id" TEXT NOT NULL,'
        ' "severity" "Severity" NOT NULL DEFAULT \'UNKNOWN\');\n',
        'ALTER TYPE "Severity" RENAME TO "Severity_old";\n'
        "CREATE TYPE \"Severity\" AS ENUM ('PAUSED', 'UNKNOWN', 'OK');\n"
        'ALTER TABLE "Monitor" ALTER COLUMN "severity" DROP DEFAULT,\n'
        '  ALTER COLUMN "severity" TYPE "Severity" USING "severity"::text::"Severity",\n'
        '  ALTER COLUMN "severity" SET DEFAULT \'UNKNOWN\'::"Severity";\n'
        'DROP TYPE "Severity_old";\n',
    ),
    Case(
        "view_replaced_by_one_with_more_columns",
        'CREATE TABLE "T" ("a" INTEGER, "b" INTEGER);\nCREATE VIEW "V" AS SELECT "a" FROM "T";\n',
        'CREATE OR REPLACE VIEW "V" AS SELECT "a", "b" FROM "T";\n',
    ),
    Case(
        "a_temporary_table_ends_with_its_session",
        USERS,
        'CREATE TEMP TABLE "scratch" ("id" TEXT);\n'
        'INSERT INTO "scratch" SELECT "id" FROM "User";\n'
        'CREATE TEMPORARY TABLE "copied" AS SELECT "id" FROM "scratch";\n'
        'DROP TABLE "copied";\n'
        'ALTER TABLE "User" ADD COLUMN "score" INTEGER;\n'
        'DROP TABLE "scratch";\n',
    ),
    Case(
        "unused_enum_dropped_and_created_again",
        "CREATE TYPE \"Role\" AS ENUM ('USER', 'ADMIN');\n",
        "BEGIN;\nCREATE TYPE \"Role_new\" AS ENUM ('USER');\n"
        'ALTER TYPE "Role" RENAME TO "Role_old";\nALTER TYPE "Role_new" RENAME TO "Role";\n'
        'DROP TYPE "Role_old";\nCOMMIT;\n',
    ),
]


def _statements_of(script: str) -> list[str]:
    # A history file may hold CREATE INDEX CONCURRENTLY, which cannot share a simple query.
    return [part for part in script.split(";\n") if part.strip()]


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_the_reverse_runs_restores_the_schema_and_verify_agrees(conn, catalog_snapshot, case):
    for statement in _statements_of(case.history):
        conn.execute(statement)
    before = catalog_snapshot()
    for statement in _statements_of(case.migration):
        if statement.strip() not in ("BEGIN", "COMMIT"):
            conn.execute(statement)

    plan = reverse_script(
        case.migration, earlier_sql=[case.history], live=LiveImpact(conn), backup_stamp=STAMP
    )
    assert plan.complete, [s.effect for s in plan.irreversible]
    conn.execute(plan.script(lock_timeout="5s", statement_timeout="60s"))  # one simple query
    for backup in plan.backups:
        conn.execute(f"DROP TABLE {backup.name.sql()}")

    after = catalog_snapshot()
    if plan.residues:
        assert {k: v for k, v in after.items() if k != "types"} == {
            k: v for k, v in before.items() if k != "types"
        }
    else:
        assert after == before
    verified = diagnose(conn, case.migration, earlier_sql=[case.history])
    assert verified.differences_from_before() == []
    assert verified.applied == ()


def test_the_rebuilt_index_says_it_takes_a_lock_instead_of_concurrently():
    history = USERS + 'CREATE INDEX CONCURRENTLY "Post_tenant_idx" ON "Post"("tenant");\n'

    plan = reverse_script('DROP INDEX CONCURRENTLY "Post_tenant_idx";', earlier_sql=[history])

    (step,) = plan.steps
    assert step.sql == 'CREATE INDEX "Post_tenant_idx" ON "public"."Post" ("tenant")'
    assert "without CONCURRENTLY" in step.note and "SHARE lock" in step.note


def test_verify_names_a_constraint_re_added_with_another_definition(conn):
    migration = CASES[0].migration
    conn.execute(USERS)
    conn.execute(migration)
    conn.execute(reverse_script(migration, earlier_sql=[USERS]).sql)
    conn.execute(
        'ALTER TABLE "Post" DROP CONSTRAINT "Post_authorId_fkey";'
        ' ALTER TABLE "Post" ADD CONSTRAINT "Post_authorId_fkey" FOREIGN KEY ("authorId")'
        ' REFERENCES "User"("id") ON DELETE RESTRICT'
    )

    left = diagnose(conn, migration, earlier_sql=[USERS]).differences_from_before()

    assert len(left) == 1
    assert 'constraint "Post_authorId_fkey" on public."Post" is as defined there' in left[0]


def test_backups_take_the_columns_the_table_has_when_they_run(conn):
    # The second backup copies the whole table after the first step dropped a column; a
    # column list read before any step ran would name that column (42703).
    history = "CREATE TYPE \"Role\" AS ENUM ('USER');\n"
    migration = (
        'CREATE TABLE "Member" ("id" TEXT NOT NULL, "role" "Role" NOT NULL,'
        ' CONSTRAINT "Member_pkey" PRIMARY KEY ("id"));\n'
        'ALTER TABLE "Member" ADD COLUMN "nick" TEXT;\n'
    )
    conn.execute(history + migration)
    conn.execute("""INSERT INTO "Member" VALUES ('m1', 'USER', 'mo'), ('m2', 'USER', NULL)""")

    plan = reverse_script(
        migration, earlier_sql=[history], live=LiveImpact(conn), backup_stamp=STAMP
    )
    conn.execute(plan.script(lock_timeout="5s", statement_timeout="60s"))

    nick, member = plan.backups
    assert conn.execute(f"SELECT * FROM {nick.name.sql()} ORDER BY 1").fetchall() == [
        ("m1", "mo"),
        ("m2", None),
    ]
    assert conn.execute(f"SELECT * FROM {member.name.sql()} ORDER BY 1").fetchall() == [
        ("m1", "USER"),
        ("m2", "USER"),
    ]


def test_a_do_block_is_refused_with_what_it_does(conn):
    history = 'CREATE TABLE "Env" ("id" TEXT NOT NULL, CONSTRAINT "Env_pkey" PRIMARY KEY ("id"));'
    migration = (
        'DO $$ BEGIN ALTER TABLE "Env" ADD COLUMN "code" TEXT; UPDATE "Env" SET "code" = "id";'
        ' IF NOT EXISTS (SELECT 1) THEN CREATE INDEX "Env_code_idx" ON "Env"("code"); END IF;'
        " END $$;"
    )

    plan = reverse_script(migration, earlier_sql=[history])

    (step,) = plan.irreversible
    assert step.undoes.description == (
        'DO block (ADD COLUMN "Env".code; UPDATE "Env";'
        ' CREATE INDEX "Env_code_idx" ON "Env" (under a condition))'
    )
    assert "procedural code is not reversed" in step.note


def test_a_view_that_selects_star_is_not_created_again_from_its_text():
    # Its columns are those its tables had when it was made; made again now, it would read
    # the columns they have now (langfuse's traces_view: t.* gained created_at).
    history = 'CREATE TABLE "T" ("a" INTEGER);\nCREATE VIEW "V" AS SELECT * FROM "T";\n'

    plan = reverse_script('DROP VIEW "V";', earlier_sql=[history])

    (step,) = plan.irreversible
    assert "the view selects *" in step.note


def test_unique_using_index_is_reversed_by_creating_the_absorbed_index_again(conn):
    history = USERS + 'CREATE UNIQUE INDEX "User_email_idx" ON "User"("email");\n'
    migration = (
        'ALTER TABLE "User" ADD CONSTRAINT "User_email_key" UNIQUE USING INDEX "User_email_idx"'
    )
    conn.execute(history)
    conn.execute(migration)

    plan = reverse_script(migration, earlier_sql=[history])
    conn.execute(plan.sql)

    (step,) = plan.steps
    assert step.statements == (
        'ALTER TABLE "public"."User" DROP CONSTRAINT IF EXISTS "User_email_key"',
        'CREATE UNIQUE INDEX "User_email_idx" ON "public"."User" ("email")',
    )
    assert conn.execute(
        "SELECT indexname, indexdef FROM pg_indexes WHERE tablename = 'User' ORDER BY 1"
    ).fetchall() == [
        (
            "User_email_idx",
            'CREATE UNIQUE INDEX "User_email_idx" ON public."User" USING btree (email)',
        ),
        ("User_pkey", 'CREATE UNIQUE INDEX "User_pkey" ON public."User" USING btree (id)'),
    ]
    assert conn.execute(
        "SELECT count(*) FROM pg_constraint WHERE conname = 'User_email_key'"
    ).fetchone() == (0,)
