"""diagnose() against a real PostgreSQL: every statement kind, applied and not applied.

The diagnosis judges a migration against the schema its history leaves (``earlier_sql``):
each case's ``setup`` is that history."""

from __future__ import annotations

from dataclasses import dataclass

import psycopg
import pytest

from bot.sql.diagnosis import Verdict, diagnose


@dataclass(frozen=True)
class Case:
    id: str
    setup: str  # the schema before the migration
    migration: str  # one statement
    description: str


CASES = [
    Case(
        "create_table",
        "",
        'CREATE TABLE "Post" ("id" SERIAL NOT NULL, CONSTRAINT "Post_pkey" PRIMARY KEY ("id"))',
        'CREATE TABLE "Post"',
    ),
    Case(
        "drop_table",
        "CREATE TABLE old_things (id int)",
        "DROP TABLE old_things",
        "DROP TABLE old_things",
    ),
    Case(
        "rename_table",
        "CREATE TABLE users (id int)",
        'ALTER TABLE "users" RENAME TO "Member"',
        'RENAME TABLE users TO "Member"',
    ),
    Case(
        "add_column",
        "CREATE TABLE users (id int)",
        'ALTER TABLE "users" ADD COLUMN "bio" TEXT',
        "ADD COLUMN users.bio",
    ),
    Case(
        "drop_column",
        "CREATE TABLE users (id int, bio text)",
        'ALTER TABLE "users" DROP COLUMN "bio"',
        "DROP COLUMN users.bio",
    ),
    Case(
        "rename_column",
        "CREATE TABLE users (id int, bio text)",
        'ALTER TABLE "users" RENAME COLUMN "bio" TO "about"',
        "RENAME COLUMN users.bio TO about",
    ),
    Case(
        "alter_column_type",
        "CREATE TABLE users (name varchar(50))",
        'ALTER TABLE "users" ALTER COLUMN "name" SET DATA TYPE VARCHAR(100)',
        "ALTER COLUMN users.name TYPE varchar(100)",
    ),
    Case(
        "alter_column_type_array",
        "CREATE TABLE users (tags text)",
        'ALTER TABLE "users" ALTER COLUMN "tags" SET DATA TYPE TEXT[] USING ARRAY["tags"]',
        "ALTER COLUMN users.tags TYPE text[]",
    ),
    Case(
        "set_not_null",
        "CREATE TABLE users (email text)",
        'ALTER TABLE "users" ALTER COLUMN "email" SET NOT NULL',
        "ALTER COLUMN users.email SET NOT NULL",
    ),
    Case(
        "drop_not_null",
        "CREATE TABLE users (email text NOT NULL)",
        'ALTER TABLE "users" ALTER COLUMN "email" DROP NOT NULL',
        "ALTER COLUMN users.email DROP NOT NULL",
    ),
    Case(
        "set_default",
        "CREATE TABLE users (status text)",
        'ALTER TABLE "users" ALTER COLUMN "status" SET DEFAULT \'active\'',
        "ALTER COLUMN users.status SET DEFAULT 'active'",
    ),
    Case(
        "set_default_now",
        "CREATE TABLE users (seen timestamp(3))",
        'ALTER TABLE "users" ALTER COLUMN "seen" SET DEFAULT CURRENT_TIMESTAMP',
        "ALTER COLUMN users.seen SET DEFAULT CURRENT_TIMESTAMP",
    ),
    Case(
        "drop_default",
        "CREATE TABLE users (status text DEFAULT 'x')",
        'ALTER TABLE "users" ALTER COLUMN "status" DROP DEFAULT',
        "ALTER COLUMN users.status DROP DEFAULT",
    ),
    Case(
        "create_index",
        "CREATE TABLE users (email text)",
        'CREATE INDEX "users_email_idx" ON "users"("email")',
        "CREATE INDEX users_email_idx ON users",
    ),
    Case(
        "create_unique_index",
        "CREATE TABLE users (email text)",
        'CREATE UNIQUE INDEX "User_email_key" ON "users"("email")',
        'CREATE UNIQUE INDEX "User_email_key" ON users',
    ),
    Case(
        "drop_index",
        "CREATE TABLE users (email text); CREATE INDEX users_email_idx ON users (email)",
        'DROP INDEX "users_email_idx"',
        "DROP INDEX users_email_idx",
    ),
    Case(
        "rename_index",
        "CREATE TABLE users (email text); CREATE INDEX users_email_idx ON users (email)",
        'ALTER INDEX "users_email_idx" RENAME TO "User_email_idx"',
        'RENAME INDEX users_email_idx TO "User_email_idx"',
    ),
    Case(
        "add_primary_key",
        "CREATE TABLE users (id int NOT NULL)",
        'ALTER TABLE "users" ADD CONSTRAINT "users_pkey" PRIMARY KEY ("id")',
        "ADD CONSTRAINT users_pkey PRIMARY KEY ON users",
    ),
    Case(
        "add_foreign_key",
        "CREATE TABLE users (id int PRIMARY KEY); CREATE TABLE posts (id int, author_id int)",
        'ALTER TABLE "posts" ADD CONSTRAINT "posts_author_id_fkey" FOREIGN KEY ("author_id")'
        ' REFERENCES "users"("id") ON DELETE RESTRICT ON UPDATE CASCADE',
        "ADD CONSTRAINT posts_author_id_fkey FOREIGN KEY ON posts",
    ),
    Case(
        "add_unique",
        "CREATE TABLE users (email text)",
        'ALTER TABLE "users" ADD CONSTRAINT "users_email_key" UNIQUE ("email")',
        "ADD CONSTRAINT users_email_key UNIQUE ON users",
    ),
    Case(
        "add_check",
        "CREATE TABLE users (age int)",
        'ALTER TABLE "users" ADD CONSTRAINT "users_age_check" CHECK ("age" >= 0)',
        "ADD CONSTRAINT users_age_check CHECK ON users",
    ),
    Case(
        "drop_constraint",
        "CREATE TABLE users (age int CONSTRAINT users_age_check CHECK (age >= 0))",
        'ALTER TABLE "users" DROP CONSTRAINT "users_age_check"',
        "DROP CONSTRAINT users_age_check ON users",
    ),
    Case(
        "rename_constraint",
        "CREATE TABLE users (id int CONSTRAINT users_pkey PRIMARY KEY)",
        'ALTER TABLE "users" RENAME CONSTRAINT "users_pkey" TO "User_pkey"',
        'RENAME CONSTRAINT users_pkey TO "User_pkey" ON users',
    ),
    Case(
        "create_enum",
        "",
        "CREATE TYPE \"Role\" AS ENUM ('USER', 'ADMIN')",
        'CREATE TYPE "Role" AS ENUM',
    ),
    Case(
        "enum_add_value",
        "CREATE TYPE \"Role\" AS ENUM ('USER')",
        "ALTER TYPE \"Role\" ADD VALUE 'ADMIN'",
        "ALTER TYPE \"Role\" ADD VALUE 'ADMIN'",
    ),
    Case(
        "drop_type", "CREATE TYPE \"Role\" AS ENUM ('USER')", 'DROP TYPE "Role"', 'DROP TYPE "Role"'
    ),
    Case(
        "rename_type",
        "CREATE TYPE \"Role\" AS ENUM ('USER')",
        'ALTER TYPE "Role" RENAME TO "Role_old"',
        'RENAME TYPE "Role" TO "Role_old"',
    ),
    Case("create_schema", "", 'CREATE SCHEMA "audit"', "CREATE SCHEMA audit"),
    Case("drop_schema", "CREATE SCHEMA audit", 'DROP SCHEMA "audit"', "DROP SCHEMA audit"),
    Case(
        "schema_qualified_quoted_names",
        'CREATE SCHEMA audit; CREATE TABLE audit."Log" (id int);'
        ' CREATE TABLE public."Log" (id int)',
        'ALTER TABLE "audit"."Log" ADD COLUMN "At" TIMESTAMP(3)',
        'ADD COLUMN audit."Log"."At"',
    ),
]


def run(conn: psycopg.Connection, sql: str) -> None:
    if sql:
        conn.execute(sql)


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_statement_that_ran_is_applied(conn, case):
    run(conn, case.setup)
    run(conn, case.migration)

    diagnosis = diagnose(conn, case.migration, earlier_sql=[case.setup])

    (statement,) = diagnosis.statements
    assert statement.description == case.description
    if case.id == "enum_add_value":
        # A value PostgreSQL cannot drop may also be what an earlier undo left behind.
        assert statement.verdict == Verdict.UNKNOWN
        assert "left by an earlier undo" in statement.changes[0].evidence
        return
    assert statement.verdict == Verdict.APPLIED, statement.changes
    assert diagnosis.summary == f"1 of 1 statement took effect: {case.description}."


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_statement_that_did_not_run_is_not_applied(conn, case):
    run(conn, case.setup)

    diagnosis = diagnose(conn, case.migration, earlier_sql=[case.setup])

    (statement,) = diagnosis.statements
    assert statement.verdict == Verdict.NOT_APPLIED, statement.changes
    assert diagnosis.summary == "0 of 1 statement took effect."


@pytest.mark.parametrize("created", [True, False], ids=["applied", "not_applied"])
def test_extension(conn, extension_name, created):
    create = f'CREATE EXTENSION IF NOT EXISTS "{extension_name}"'
    if created:
        conn.execute(create)

    (statement,) = diagnose(conn, create, earlier_sql=[]).statements

    assert statement.verdict == (Verdict.APPLIED if created else Verdict.NOT_APPLIED)
    assert statement.description == f"CREATE EXTENSION {extension_name}"


@pytest.mark.parametrize("dropped", [True, False], ids=["applied", "not_applied"])
def test_drop_extension(conn, extension_name, dropped):
    setup = f'CREATE EXTENSION "{extension_name}"'
    conn.execute(setup)
    drop = f'DROP EXTENSION "{extension_name}"'
    if dropped:
        conn.execute(drop)

    (statement,) = diagnose(conn, drop, earlier_sql=[setup]).statements

    assert statement.verdict == (Verdict.APPLIED if dropped else Verdict.NOT_APPLIED)


@pytest.mark.parametrize(
    "dml",
    [
        "UPDATE users SET bio = NULL",
        "INSERT INTO users (id) VALUES (1)",
        "DELETE FROM users WHERE id = 1",
    ],
)
def test_data_changes_alone_are_unknown(conn, dml):
    setup = "CREATE TABLE users (id int, bio text)"
    conn.execute(setup)

    diagnosis = diagnose(conn, dml, earlier_sql=[setup])

    (statement,) = diagnosis.statements
    assert statement.verdict == Verdict.UNKNOWN
    assert "leaves nothing the catalog shows" in statement.changes[0].evidence
    assert diagnosis.summary.startswith("0 of 1 statement took effect. 1 cannot be")


@pytest.mark.parametrize(("ran", "verdict"), [(0, Verdict.NOT_APPLIED), (2, Verdict.APPLIED)])
def test_a_data_change_is_judged_by_the_statements_around_it(conn, ran, verdict):
    # Statements take effect in order: a later one that did means the data change did too;
    # an earlier one that did not means it did not.
    setup = "CREATE TABLE users (id int, bio text)"
    script = (
        'ALTER TABLE users ADD COLUMN "a" int;\n'
        "UPDATE users SET a = 1;\n"
        'ALTER TABLE users ADD COLUMN "b" int;\n'
    )
    conn.execute(setup)
    for statement in script.splitlines()[: ran + (ran > 0)]:
        conn.execute(statement)

    (_, update, _) = diagnose(conn, script, earlier_sql=[setup]).statements

    assert update.verdict == verdict
    assert "leaves nothing the catalog shows" in update.changes[0].evidence


def test_subcommands_are_judged_one_by_one_and_summarised(conn):
    setup = "CREATE TABLE users (id int, legacy text)"
    conn.execute(setup)
    sql = (
        'ALTER TABLE "users" ADD COLUMN "bio" TEXT, ADD COLUMN "age" INTEGER, DROP COLUMN "legacy"'
    )

    before = diagnose(conn, sql, earlier_sql=[setup]).statements[0]
    conn.execute(sql)
    after = diagnose(conn, sql, earlier_sql=[setup]).statements[0]

    assert before.verdict == Verdict.NOT_APPLIED
    assert after.verdict == Verdict.APPLIED
    assert [c.verdict for c in after.changes] == [Verdict.APPLIED] * 3
    assert (
        after.description == "ADD COLUMN users.bio, ADD COLUMN users.age, DROP COLUMN users.legacy"
    )


def test_a_catalog_no_point_of_the_migration_explains_makes_everything_unknown(conn):
    # One statement is atomic; half of it present means someone changed the schema since.
    setup = "CREATE TABLE users (id int)"
    conn.execute(setup)
    conn.execute("ALTER TABLE users ADD COLUMN bio text")  # by hand, outside any migration

    diagnosis = diagnose(
        conn, "ALTER TABLE users ADD COLUMN bio text, ADD COLUMN age int", earlier_sql=[setup]
    )

    (statement,) = diagnosis.statements
    assert statement.verdict == Verdict.UNKNOWN
    assert diagnosis.points == ()
    assert "matches no point of the migration" in diagnosis.summary


def test_without_the_history_only_what_the_migration_shows_counts(conn):
    # The same catalog, judged without knowing the history: bio may have been there before.
    conn.execute("CREATE TABLE users (id int, bio text)")

    (statement,) = diagnose(
        conn, "ALTER TABLE users ADD COLUMN bio text, ADD COLUMN age int"
    ).statements

    assert statement.verdict == Verdict.NOT_APPLIED  # age is missing: it did not run


def test_partly_applied_script_summary_names_what_took_effect(conn):
    script = """-- CreateTable
CREATE TABLE "Post" ("id" SERIAL NOT NULL, CONSTRAINT "Post_pkey" PRIMARY KEY ("id"));
-- AlterTable
ALTER TABLE "users" ADD COLUMN "bio" TEXT;
-- CreateIndex
CREATE UNIQUE INDEX "users_email_key" ON "users"("email");
-- AddForeignKey
ALTER TABLE "Post" ADD CONSTRAINT "Post_id_fkey" FOREIGN KEY ("id") REFERENCES "users"("id");
"""
    setup = "CREATE TABLE users (id int PRIMARY KEY, email text)"
    conn.execute(setup)
    conn.execute(
        'CREATE TABLE "Post" ("id" SERIAL NOT NULL, CONSTRAINT "Post_pkey" PRIMARY KEY ("id"))'
    )
    conn.execute('ALTER TABLE "users" ADD COLUMN "bio" TEXT')

    diagnosis = diagnose(conn, script, earlier_sql=[setup])

    assert [s.verdict for s in diagnosis.statements] == [
        Verdict.APPLIED,
        Verdict.APPLIED,
        Verdict.NOT_APPLIED,
        Verdict.NOT_APPLIED,
    ]
    assert (
        diagnosis.summary
        == '2 of 4 statements took effect: CREATE TABLE "Post"; ADD COLUMN users.bio.'
    )


def test_renames_later_in_the_script_are_followed(conn):
    script = (
        "CREATE TABLE a (x int); ALTER TABLE a ADD COLUMN y int;"
        " ALTER TABLE a RENAME COLUMN y TO z; ALTER TABLE a RENAME TO b"
    )
    conn.execute(script)

    diagnosis = diagnose(conn, script, earlier_sql=[])

    assert [s.verdict for s in diagnosis.statements] == [Verdict.APPLIED] * 4


def test_unqualified_names_use_the_connections_search_path(conn):
    conn.execute("CREATE SCHEMA app; SET search_path TO app; CREATE TABLE users (id int)")
    history = ["CREATE TABLE users (id int)"]

    diagnosis = diagnose(conn, "ALTER TABLE users ADD COLUMN bio text", earlier_sql=history)
    conn.execute("ALTER TABLE app.users ADD COLUMN bio text")
    after = diagnose(conn, "ALTER TABLE users ADD COLUMN bio text", earlier_sql=history)

    assert diagnosis.default_schema == "app"
    assert diagnosis.statements[0].verdict == Verdict.NOT_APPLIED
    assert after.statements[0].verdict == Verdict.APPLIED


def test_case_and_quotes_matter(conn):
    conn.execute("CREATE TABLE users (id int)")
    history = ["CREATE TABLE users (id int)"]

    (quoted,) = diagnose(conn, 'CREATE TABLE "Users" (id int)', earlier_sql=history).statements
    (folded,) = diagnose(conn, "CREATE TABLE USERS (id int)", earlier_sql=history).statements

    assert quoted.verdict == Verdict.NOT_APPLIED
    # "users" is the table the history created: a CREATE of it fails, it cannot have run.
    assert folded.verdict == Verdict.NOT_APPLIED
    assert "already exists" in folded.changes[0].evidence


def test_transaction_control_is_skipped_not_counted(conn):
    diagnosis = diagnose(conn, "BEGIN; CREATE SCHEMA audit; COMMIT;", earlier_sql=[])

    assert [s.text for s in diagnosis.skipped] == ["BEGIN", "COMMIT"]
    assert diagnosis.summary == "0 of 1 statement took effect."


def test_diagnosis_writes_nothing(conn, catalog_snapshot):
    conn.execute("CREATE TABLE users (id int)")
    before = catalog_snapshot()

    diagnose(conn, 'ALTER TABLE users ALTER COLUMN id TYPE "NoSuchType"; CREATE TABLE t (a int)')

    assert catalog_snapshot() == before


@pytest.mark.parametrize(
    ("stopped_by_error", "verdict"), [(True, "not_applied"), (False, "unknown")]
)
def test_when_prisma_recorded_an_error_the_last_statement_cannot_have_run_with_the_rest(
    conn, stopped_by_error, verdict
):
    setup = "CREATE TABLE users (id int)"
    script = "ALTER TABLE users ADD COLUMN a int;\nUPDATE users SET a = 1;\n"
    conn.execute(setup)
    conn.execute("ALTER TABLE users ADD COLUMN a int")  # the UPDATE is what failed

    diagnosis = diagnose(conn, script, earlier_sql=[setup], stopped_by_error=stopped_by_error)

    assert [s.verdict for s in diagnosis.statements] == ["applied", verdict]


# Regression (issue 18's real histories): "a SET NOT NULL that did not run judged applied".
# Judged by name and by the live attnotnull alone, a SET NOT NULL is "applied" whenever the
# column is NOT NULL now, but the column can be NOT NULL without it: it was before the
# migration, an earlier statement's PRIMARY KEY made it so, or an earlier statement dropped
# the column or the table and created it again NOT NULL. (history, migration, statements
# that ran before the failure; the last statement is the SET NOT NULL that did not run.)
SET_NOT_NULL_THAT_DID_NOT_RUN = {
    "not_null_before_the_migration": (
        'CREATE TABLE "users" ("id" int, "email" text NOT NULL)',
        [
            'UPDATE "users" SET "email" = lower("email")',
            'ALTER TABLE "users" ALTER COLUMN "email" SET NOT NULL',
        ],
        0,
    ),
    "made_not_null_by_an_earlier_primary_key": (
        'CREATE TABLE "users" ("id" int, "email" text)',
        [
            'ALTER TABLE "users" ADD CONSTRAINT "users_pkey" PRIMARY KEY ("email")',
            'ALTER TABLE "users" ALTER COLUMN "email" SET NOT NULL',
        ],
        1,
    ),
    "column_dropped_and_added_back_not_null": (
        'CREATE TABLE "users" ("id" int, "email" text)',
        [
            'ALTER TABLE "users" DROP COLUMN "email"',
            'ALTER TABLE "users" ADD COLUMN "email" TEXT NOT NULL DEFAULT \'\'',
            'ALTER TABLE "users" ALTER COLUMN "email" SET NOT NULL',
        ],
        2,
    ),
    "table_dropped_and_created_again": (
        'CREATE TABLE "users" ("id" TEXT, "email" text)',
        [
            'DROP TABLE "users" CASCADE',
            'CREATE TABLE "users" ("id" TEXT NOT NULL, "email" TEXT)',
            'ALTER TABLE "users" ALTER COLUMN "id" SET NOT NULL',
        ],
        2,
    ),
    "set_earlier_in_the_same_migration": (
        'CREATE TABLE "users" ("id" int, "email" text)',
        [
            'ALTER TABLE "users" ALTER COLUMN "email" SET NOT NULL',
            'ALTER TABLE "users" ADD COLUMN "bio" text',
            'ALTER TABLE "users" ALTER COLUMN "email" SET NOT NULL',
        ],
        2,
    ),
}


@pytest.mark.parametrize(
    ("setup", "statements", "ran"),
    SET_NOT_NULL_THAT_DID_NOT_RUN.values(),
    ids=SET_NOT_NULL_THAT_DID_NOT_RUN.keys(),
)
def test_a_set_not_null_that_did_not_run_is_never_judged_applied(conn, setup, statements, ran):
    conn.execute(setup)
    for statement in statements[:ran]:
        conn.execute(statement)
    column = statements[-1].split('"')[3]
    # The trap is set: the live catalog shows the column NOT NULL.
    assert conn.execute(
        "SELECT attnotnull FROM pg_attribute WHERE attrelid = 'users'::regclass AND attname = %s",
        (column,),
    ).fetchone() == (True,)

    diagnosis = diagnose(conn, "".join(f"{s};\n" for s in statements), earlier_sql=[setup])

    *before, set_not_null = diagnosis.statements
    assert set_not_null.description == f"ALTER COLUMN users.{column} SET NOT NULL"
    assert set_not_null.verdict == Verdict.UNKNOWN, set_not_null.changes
    # And no other verdict is wrong: what ran is not said not to have, and the reverse.
    for judged in before:
        ran_it = judged.statement.index < ran
        assert judged.verdict in (
            Verdict.UNKNOWN,
            Verdict.APPLIED if ran_it else Verdict.NOT_APPLIED,
        ), judged.changes
    assert "took effect" in diagnosis.summary
