"""Option 2 (revert: review, backups, apply the reverse as a migration, verify) as the bot's
role on staging (production in that flow is a second database of the rig's own)."""

from __future__ import annotations

from tests.scenario import test_revert as flows
from tests.scenario.test_revert import bot, prisma  # noqa: F401 - fixtures, on this pg_url


def test_revert_as_the_documented_role(bot, prisma):  # noqa: F811
    flows.test_edited_sql_runs_as_edited_and_is_marked(bot, prisma)
