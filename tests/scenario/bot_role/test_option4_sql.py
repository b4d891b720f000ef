"""Option 4 (manual SQL: dry run, backup table, commit) as the bot's role."""

from __future__ import annotations

from tests.scenario import test_sql as flows
from tests.scenario.test_sql import db  # noqa: F401 - a fixture, on this pg_url


def test_manual_sql_as_the_documented_role(bot, db):  # noqa: F811
    flows.test_drop_column_flow_in_staging_commits_with_a_backup(bot, db)
