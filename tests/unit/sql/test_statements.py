import pytest

from bot.errors import UserError
from bot.sql.statements import split_statements

PRISMA_SCRIPT = """-- CreateEnum
CREATE TYPE "Role" AS ENUM ('USER', 'ADMIN');

-- CreateTable
CREATE TABLE "User" (
    "id" SERIAL NOT NULL,
    "email" TEXT NOT NULL,
    CONSTRAINT "User_pkey" PRIMARY KEY ("id")
);

-- CreateIndex
CREATE UNIQUE INDEX "User_email_key" ON "User"("email");
"""


def test_splits_a_prisma_script_keeping_each_statement_text():
    statements = split_statements(PRISMA_SCRIPT)

    assert [s.text for s in statements] == [
        "CREATE TYPE \"Role\" AS ENUM ('USER', 'ADMIN')",
        'CREATE TABLE "User" (\n    "id" SERIAL NOT NULL,\n    "email" TEXT NOT NULL,\n'
        '    CONSTRAINT "User_pkey" PRIMARY KEY ("id")\n)',
        'CREATE UNIQUE INDEX "User_email_key" ON "User"("email")',
    ]
    assert [s.index for s in statements] == [0, 1, 2]
    assert [s.line for s in statements] == [2, 5, 12]
    assert [type(s.node).__name__ for s in statements] == [
        "CreateEnumStmt",
        "CreateStmt",
        "IndexStmt",
    ]


def test_semicolons_inside_strings_comments_and_dollar_quotes_do_not_split():
    sql = (
        "INSERT INTO t VALUES ('a;b'); /* c; d */ "
        "CREATE FUNCTION f() RETURNS int AS $$ SELECT 1; $$ LANGUAGE sql; SELECT 'é;'"
    )

    texts = [s.text for s in split_statements(sql)]

    assert texts == [
        "INSERT INTO t VALUES ('a;b')",
        "CREATE FUNCTION f() RETURNS int AS $$ SELECT 1; $$ LANGUAGE sql",
        "SELECT 'é;'",
    ]


def test_empty_script_has_no_statements():
    assert split_statements("-- nothing here\n") == ()


def test_unparsable_sql_is_a_user_error_naming_the_line():
    with pytest.raises(UserError) as caught:
        split_statements("SELECT 1;\nCREATE TABLE (;\n")

    assert "does not parse" in caught.value.message
    assert "line 2" in caught.value.message
