"""squawk lints the generated SQL; a missing squawk is reported, not fatal."""

from __future__ import annotations

import pytest

from bot.sql.lint import lint, squawk_binary

SQL = (
    "SET lock_timeout = '5s';\nSET statement_timeout = '60s';\n"
    'ALTER TABLE "public"."users" DROP COLUMN "bio";\n'
)


def test_squawk_findings_have_rule_and_line():
    if squawk_binary() is None:
        pytest.skip("squawk-cli is not installed here")
    result = lint(SQL)

    assert result.unavailable is None
    rules = {(f.rule, f.line) for f in result.findings}
    assert ("ban-drop-column", 3) in rules


def test_missing_squawk_is_reported_not_raised(tmp_path):
    result = lint(SQL, binary=str(tmp_path / "no-such-squawk"))

    assert result.findings == ()
    assert "squawk could not run" in result.unavailable
