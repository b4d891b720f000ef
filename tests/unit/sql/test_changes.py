"""What a statement changes, from its AST alone."""

import pytest

from bot.sql.changes import ChangeKind, changes_of, resolved
from bot.sql.names import QualifiedName
from bot.sql.statements import split_statements


def only_statement_changes(sql: str):
    (statement,) = split_statements(sql)
    return changes_of(statement.node)


@pytest.mark.parametrize(
    ("sql", "kind", "description"),
    [
        ('CREATE TABLE "Post" (id int)', ChangeKind.CREATE_TABLE, 'CREATE TABLE "Post"'),
        ("DROP TABLE audit.logs", ChangeKind.DROP_TABLE, "DROP TABLE audit.logs"),
        (
            "ALTER TABLE users RENAME TO members",
            ChangeKind.RENAME_TABLE,
            "RENAME TABLE users TO members",
        ),
        ("ALTER TABLE users ADD COLUMN bio text", ChangeKind.ADD_COLUMN, "ADD COLUMN users.bio"),
        (
            'ALTER TABLE "User" DROP COLUMN "Bio"',
            ChangeKind.DROP_COLUMN,
            'DROP COLUMN "User"."Bio"',
        ),
        (
            "ALTER TABLE users ALTER COLUMN n TYPE varchar(9)",
            ChangeKind.ALTER_COLUMN_TYPE,
            "ALTER COLUMN users.n TYPE varchar(9)",
        ),
        (
            "ALTER TABLE users ALTER COLUMN n SET NOT NULL",
            ChangeKind.SET_NOT_NULL,
            "ALTER COLUMN users.n SET NOT NULL",
        ),
        (
            "ALTER TABLE users ALTER COLUMN n DROP NOT NULL",
            ChangeKind.DROP_NOT_NULL,
            "ALTER COLUMN users.n DROP NOT NULL",
        ),
        (
            "ALTER TABLE users ALTER COLUMN n SET DEFAULT 'x'",
            ChangeKind.SET_DEFAULT,
            "ALTER COLUMN users.n SET DEFAULT 'x'",
        ),
        (
            "ALTER TABLE users ALTER COLUMN n DROP DEFAULT",
            ChangeKind.DROP_DEFAULT,
            "ALTER COLUMN users.n DROP DEFAULT",
        ),
        (
            'CREATE UNIQUE INDEX "User_email_key" ON "User"(email)',
            ChangeKind.CREATE_INDEX,
            'CREATE UNIQUE INDEX "User_email_key" ON "User"',
        ),
        ("DROP INDEX users_email_idx", ChangeKind.DROP_INDEX, "DROP INDEX users_email_idx"),
        (
            "ALTER TABLE p ADD CONSTRAINT p_fk FOREIGN KEY (a) REFERENCES u(id)",
            ChangeKind.ADD_CONSTRAINT,
            "ADD CONSTRAINT p_fk FOREIGN KEY ON p",
        ),
        (
            "ALTER TABLE p DROP CONSTRAINT p_fk",
            ChangeKind.DROP_CONSTRAINT,
            "DROP CONSTRAINT p_fk ON p",
        ),
        ("CREATE TYPE mood AS ENUM ('sad')", ChangeKind.CREATE_TYPE, "CREATE TYPE mood AS ENUM"),
        (
            "ALTER TYPE mood ADD VALUE 'it''s ok'",
            ChangeKind.ADD_ENUM_VALUE,
            "ALTER TYPE mood ADD VALUE 'it''s ok'",
        ),
        ("CREATE SCHEMA IF NOT EXISTS audit", ChangeKind.CREATE_SCHEMA, "CREATE SCHEMA audit"),
        ("DROP EXTENSION pg_trgm", ChangeKind.DROP_EXTENSION, "DROP EXTENSION pg_trgm"),
        ("UPDATE users SET bio = NULL", ChangeKind.DATA_CHANGE, "UPDATE users"),
    ],
)
def test_statement_kinds_and_descriptions(sql, kind, description):
    (change,) = only_statement_changes(sql)

    assert change.kind == kind
    assert change.description == description


def test_one_change_per_subcommand_and_per_dropped_object():
    alter = only_statement_changes(
        "ALTER TABLE t ADD COLUMN a int NOT NULL DEFAULT 0, DROP COLUMN b"
    )
    drop = only_statement_changes("DROP TABLE a, b")

    assert [c.kind for c in alter] == [ChangeKind.ADD_COLUMN, ChangeKind.DROP_COLUMN]
    assert alter[0].column.not_null and alter[0].column.default_sql == "0"
    assert [c.target.name for c in drop] == ["a", "b"]


def test_transaction_control_changes_nothing():
    assert only_statement_changes("BEGIN") == ()
    assert only_statement_changes("SET lock_timeout = '5s'") == ()


def test_index_lives_in_its_tables_schema_and_names_resolve_to_the_default_schema():
    (qualified,) = only_statement_changes("CREATE INDEX i ON audit.t (a)")
    (unqualified,) = only_statement_changes("ALTER TABLE t ADD COLUMN a int")

    assert qualified.target == QualifiedName("audit", "i")
    assert resolved(unqualified, "app").target == QualifiedName("app", "t")
    assert resolved(qualified, "app").target == QualifiedName("audit", "i")


def test_primary_key_columns_of_create_table_are_not_null():
    (change,) = only_statement_changes(
        'CREATE TABLE t ("id" SERIAL, "n" TEXT DEFAULT \'x\', CONSTRAINT t_pkey PRIMARY KEY ("id"))'
    )

    assert [(c.name, c.type_sql, c.not_null, c.default_sql) for c in change.columns] == [
        ("id", "serial", True, None),
        ("n", "text", False, "'x'"),
    ]
