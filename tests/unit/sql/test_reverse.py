"""Reverse SQL: applied to a database where the forward statement ran, it restores the
catalog exactly as it was before."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from pglast import parse_sql

from bot.sql.changes import ChangeKind
from bot.sql.diagnosis import diagnose
from bot.sql.reverse import reverse_plan, reverse_script


@dataclass(frozen=True)
class Case:
    id: str
    setup: str  # earlier migrations: also the history that tells previous definitions
    forward: str


REVERSIBLE = [
    Case(
        "create_table",
        "",
        'CREATE TABLE "Post" ("id" SERIAL NOT NULL, "title" TEXT NOT NULL DEFAULT \'\','
        ' CONSTRAINT "Post_pkey" PRIMARY KEY ("id"))',
    ),
    Case(
        "create_index",
        "CREATE TABLE users (email text)",
        'CREATE INDEX "users_email_idx" ON "users"("email")',
    ),
    Case(
        "create_unique_index",
        "CREATE TABLE users (email text)",
        'CREATE UNIQUE INDEX "User_email_key" ON "users"("email")',
    ),
    Case(
        "add_column",
        "CREATE TABLE users (id int)",
        'ALTER TABLE "users" ADD COLUMN "Bio" TEXT NOT NULL DEFAULT \'none\'',
    ),
    Case(
        "add_primary_key",
        "CREATE TABLE users (id int NOT NULL)",
        'ALTER TABLE "users" ADD CONSTRAINT "users_pkey" PRIMARY KEY ("id")',
    ),
    Case(
        "add_foreign_key",
        "CREATE TABLE users (id int PRIMARY KEY); CREATE TABLE posts (id int, author_id int)",
        'ALTER TABLE "posts" ADD CONSTRAINT "posts_author_id_fkey" FOREIGN KEY ("author_id")'
        ' REFERENCES "users"("id") ON DELETE RESTRICT ON UPDATE CASCADE',
    ),
    Case(
        "add_unique",
        "CREATE TABLE users (email text)",
        'ALTER TABLE "users" ADD CONSTRAINT "users_email_key" UNIQUE ("email")',
    ),
    Case(
        "add_check",
        "CREATE TABLE users (age int)",
        'ALTER TABLE "users" ADD CONSTRAINT "users_age_check" CHECK ("age" >= 0)',
    ),
    Case("rename_table", "CREATE TABLE users (id int)", 'ALTER TABLE "users" RENAME TO "Member"'),
    Case(
        "rename_column",
        "CREATE TABLE users (id int, bio text)",
        'ALTER TABLE "users" RENAME COLUMN "bio" TO "About"',
    ),
    Case(
        "rename_index",
        "CREATE TABLE users (email text); CREATE INDEX users_email_idx ON users (email)",
        'ALTER INDEX "users_email_idx" RENAME TO "User_email_idx"',
    ),
    Case(
        "rename_constraint",
        "CREATE TABLE users (id int CONSTRAINT users_pkey PRIMARY KEY)",
        'ALTER TABLE "users" RENAME CONSTRAINT "users_pkey" TO "User_pkey"',
    ),
    Case(
        "drop_index_defined_earlier",
        "CREATE TABLE t (a int); CREATE UNIQUE INDEX t_a ON t (a) WHERE a > 0",
        'DROP INDEX "t_a"',
    ),
    Case(
        "drop_foreign_key_defined_earlier",
        'CREATE TABLE "U" ("id" int PRIMARY KEY); CREATE TABLE "P" ("u" int);'
        ' ALTER TABLE "P" ADD CONSTRAINT "P_u_fkey" FOREIGN KEY ("u") REFERENCES "U"("id")'
        " ON DELETE SET NULL ON UPDATE CASCADE",
        'ALTER TABLE "P" DROP CONSTRAINT "P_u_fkey"',
    ),
    Case(
        "drop_check_defined_in_create_table",
        "CREATE TABLE t (a int, CONSTRAINT t_a_check CHECK (a > 0))",
        "ALTER TABLE t DROP CONSTRAINT t_a_check",
    ),
    Case("create_enum", "", "CREATE TYPE \"Role\" AS ENUM ('USER', 'ADMIN')"),
    Case("rename_type", "CREATE TYPE mood AS ENUM ('ok')", 'ALTER TYPE "mood" RENAME TO "Mood"'),
    Case("create_schema", "", 'CREATE SCHEMA "Audit"'),
    Case(
        "alter_column_type",
        "CREATE TABLE users (name varchar(50))",
        'ALTER TABLE "users" ALTER COLUMN "name" SET DATA TYPE VARCHAR(100)',
    ),
    Case(
        "alter_column_type_of_serial",
        'CREATE TABLE "T" ("id" SERIAL NOT NULL)',
        'ALTER TABLE "T" ALTER COLUMN "id" SET DATA TYPE BIGINT',
    ),
    Case(
        "set_not_null",
        "CREATE TABLE users (email text)",
        'ALTER TABLE "users" ALTER COLUMN "email" SET NOT NULL',
    ),
    Case(
        "drop_not_null",
        "CREATE TABLE users (email text NOT NULL)",
        'ALTER TABLE "users" ALTER COLUMN "email" DROP NOT NULL',
    ),
    Case(
        "set_default_where_there_was_none",
        "CREATE TABLE users (status text)",
        'ALTER TABLE "users" ALTER COLUMN "status" SET DEFAULT \'active\'',
    ),
    Case(
        "set_default_replacing_one",
        "CREATE TABLE users (status text DEFAULT 'new');"
        " ALTER TABLE users ALTER status SET DEFAULT 'old'",
        'ALTER TABLE "users" ALTER COLUMN "status" SET DEFAULT \'active\'',
    ),
    Case(
        "drop_default",
        "CREATE TABLE users (seen timestamp(3) DEFAULT CURRENT_TIMESTAMP)",
        'ALTER TABLE "users" ALTER COLUMN "seen" DROP DEFAULT',
    ),
    Case(
        "several_subcommands",
        "CREATE TABLE users (id int, name varchar(10))",
        'ALTER TABLE "users" ADD COLUMN "bio" TEXT, ALTER COLUMN "name" SET DATA TYPE TEXT,'
        ' ALTER COLUMN "name" SET NOT NULL',
    ),
    Case(
        "schema_qualified",
        'CREATE SCHEMA audit; CREATE TABLE audit."Log" (id int)',
        'ALTER TABLE "audit"."Log" ADD COLUMN "At" TIMESTAMP(3);'
        ' CREATE INDEX "Log_At_idx" ON "audit"."Log"("At")',
    ),
    Case(
        "prisma_migration",
        "CREATE TABLE users (id int PRIMARY KEY, email text)",
        """-- CreateEnum
CREATE TYPE "Role" AS ENUM ('USER', 'ADMIN');
-- CreateTable
CREATE TABLE "Post" (
    "id" SERIAL NOT NULL,
    "authorId" INTEGER NOT NULL,
    "role" "Role" NOT NULL DEFAULT 'USER',
    CONSTRAINT "Post_pkey" PRIMARY KEY ("id")
);
-- AlterTable
ALTER TABLE "users" ADD COLUMN "bio" TEXT;
-- CreateIndex
CREATE UNIQUE INDEX "users_email_key" ON "users"("email");
-- AddForeignKey
ALTER TABLE "Post" ADD CONSTRAINT "Post_authorId_fkey" FOREIGN KEY ("authorId")
    REFERENCES "users"("id") ON DELETE RESTRICT ON UPDATE CASCADE;
-- RenameTable
ALTER TABLE "Post" RENAME TO "Article";
""",
    ),
]


def run_reverse(conn, plan) -> None:
    with conn.transaction():
        conn.execute(plan.sql)


@pytest.mark.parametrize("case", REVERSIBLE, ids=[c.id for c in REVERSIBLE])
def test_reverse_restores_the_catalog(conn, catalog_snapshot, case):
    if case.setup:
        conn.execute(case.setup)
    before = catalog_snapshot()
    conn.execute(case.forward)
    assert catalog_snapshot() != before

    plan = reverse_plan(diagnose(conn, case.forward, earlier_sql=[case.setup]))
    assert plan.complete, [step.note for step in plan.irreversible]
    for statement in plan.statements:
        parse_sql(statement)
    run_reverse(conn, plan)

    assert catalog_snapshot() == before


def test_only_applied_statements_are_reversed_last_first(conn, catalog_snapshot):
    history = ["CREATE TABLE users (id int PRIMARY KEY)"]
    conn.execute(history[0])
    before = catalog_snapshot()
    script = (
        'CREATE TABLE "Post" ("id" int);\n'
        'ALTER TABLE "users" ADD COLUMN "bio" TEXT;\n'
        'CREATE INDEX "Post_id_idx" ON "Post"("id");\n'
    )
    conn.execute('CREATE TABLE "Post" ("id" int); ALTER TABLE "users" ADD COLUMN "bio" TEXT')

    plan = reverse_plan(diagnose(conn, script, earlier_sql=history))

    assert plan.statements == (
        'ALTER TABLE "public"."users" DROP COLUMN IF EXISTS "bio"',
        'DROP TABLE IF EXISTS "public"."Post"',
    )
    run_reverse(conn, plan)
    assert catalog_snapshot() == before


@pytest.mark.parametrize(
    ("setup", "forward", "reason"),
    [
        ("CREATE TABLE t (id int)", "DROP TABLE t", "destroyed its rows"),
        (
            "CREATE TABLE t (id int, bio text)",
            "ALTER TABLE t DROP COLUMN bio",
            "destroyed its values",
        ),
        (
            "CREATE TYPE r AS ENUM ('a'); CREATE TABLE t (x r)",
            "DROP TYPE r CASCADE",
            "type definition",
        ),
        ("CREATE SCHEMA s", "DROP SCHEMA s", "schema and what it held"),
        ("CREATE TABLE t (id int)", "UPDATE t SET id = 1", "nobody can tell whether it ran"),
    ],
)
def test_irreversible_changes_are_flagged_with_a_reason(conn, setup, forward, reason):
    conn.execute(setup)
    conn.execute(forward)

    plan = reverse_plan(diagnose(conn, forward, earlier_sql=[setup]))

    assert not plan.complete
    (step,) = plan.irreversible
    assert reason in step.note
    assert plan.sql == ""


def test_without_the_history_a_drop_cannot_be_judged(conn):
    # Was t_a there before the migration? Only the history says: without it, nobody can
    # tell whether the DROP ran, and nothing is undone on a guess.
    conn.execute("CREATE TABLE t (a int); CREATE INDEX t_a ON t (a)")
    conn.execute("DROP INDEX t_a")

    plan = reverse_plan(diagnose(conn, "DROP INDEX t_a"))

    (step,) = plan.irreversible
    assert "nobody can tell whether it ran" in step.note


@pytest.mark.parametrize(
    ("forward", "what"),
    [
        ("ALTER TABLE users ALTER COLUMN status SET DEFAULT 'active'", "default"),
        ("ALTER TABLE users ALTER COLUMN status DROP DEFAULT", "default"),
        ("ALTER TABLE users ALTER COLUMN status SET NOT NULL", "nullability"),
        ("ALTER TABLE users ALTER COLUMN status TYPE varchar(20)", "type"),
    ],
)
def test_previous_definition_unknown_without_history(forward, what):
    plan = reverse_script(forward, earlier_sql=None)  # no earlier migrations known

    (step,) = plan.irreversible
    assert f"previous {what} of public.users.status is not known" in step.note


def test_an_added_enum_value_stays_with_a_note_not_a_refusal(conn, catalog_snapshot):
    setup = "CREATE TYPE r AS ENUM ('a'); CREATE TABLE t (id int)"
    forward = "ALTER TYPE r ADD VALUE 'b'; ALTER TABLE t ADD COLUMN x r"
    conn.execute(setup)
    before = catalog_snapshot()
    conn.execute(forward)

    plan = reverse_script(forward, earlier_sql=[setup])

    assert plan.complete
    (kept,) = plan.residues
    assert kept.effect.startswith("leaves value 'b' of enum public.r in place: PostgreSQL")
    assert "-- LEFT IN PLACE: leaves value 'b'" in plan.script(
        lock_timeout="1s", statement_timeout="1s"
    )
    conn.execute(plan.sql)
    after = catalog_snapshot()
    assert after["types"] != before["types"]  # the value stays...
    assert {k: v for k, v in after.items() if k != "types"} == {
        k: v for k, v in before.items() if k != "types"
    }  # ...and nothing else differs


def test_set_not_null_on_a_column_that_was_not_null_needs_no_undo():
    plan = reverse_script(
        "ALTER TABLE t ALTER COLUMN a SET NOT NULL",
        earlier_sql=["CREATE TABLE t (a int NOT NULL)"],
    )

    assert plan.complete
    assert plan.statements == ()


def test_reverse_script_undoes_a_whole_migration_with_quoted_names():
    plan = reverse_script(
        'CREATE TABLE "we""ird" ("id" int); ALTER TABLE "we""ird" RENAME TO "Odd"',
        default_schema="app",
    )

    assert [step.undoes.kind for step in plan.steps] == [
        ChangeKind.RENAME_TABLE,
        ChangeKind.CREATE_TABLE,
    ]
    assert plan.sql == (
        'ALTER TABLE "app"."Odd" RENAME TO "we""ird";\nDROP TABLE IF EXISTS "app"."we""ird";\n'
    )
