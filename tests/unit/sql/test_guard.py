"""Typed SQL applied as a script (a reverse migration) may not change how the server
reads it, nor control the transaction."""

from __future__ import annotations

import pytest

from bot.runbooks.revert.review import SqlFieldError, check_sql
from bot.sql.guard import migration_refusals
from bot.sql.statements import split_statements


@pytest.mark.parametrize(
    "sql",
    [
        "SET standard_conforming_strings = off;\nALTER TABLE t DROP COLUMN x;",
        "SET LOCAL backslash_quote = on;",
        "SET NAMES 'SJIS';",
        "SET client_encoding TO 'BIG5';",
        "RESET ALL;",
        "SELECT set_config('standard_conforming_strings', 'off', false);",
        "SELECT set_config(name, 'off', false) FROM settings;",
        "ALTER ROLE app SET standard_conforming_strings = off;",
        "ALTER DATABASE app SET backslash_quote = on;",
        "BEGIN;\nALTER TABLE t DROP COLUMN x;\nCOMMIT;",
        "ALTER TABLE t DROP COLUMN x;\nCOMMIT;",
        "SAVEPOINT a;",
    ],
)
def test_a_script_that_changes_lexing_or_controls_the_transaction_is_refused(sql):
    assert migration_refusals(split_statements(sql))
    with pytest.raises(SqlFieldError) as error:
        check_sql(sql)
    assert "Line " in error.value.message


@pytest.mark.parametrize(
    "sql",
    [
        "SET lock_timeout = '5s';\nALTER TABLE t DROP COLUMN x;",
        "SET search_path = app;\nALTER TABLE t ADD COLUMN y int;",
        "SELECT set_config('lock_timeout', '5s', false);\nDROP INDEX i;",
        "CREATE TABLE t (note text DEFAULT 'it''s \\ fine');",
    ],
)
def test_an_ordinary_migration_is_accepted(sql):
    assert migration_refusals(split_statements(sql)) == []
    assert check_sql(sql).startswith(sql)
