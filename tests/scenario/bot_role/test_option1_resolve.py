"""Option 1 (resolve: undo what took effect, mark rolled back, re-deploy) as the bot's role."""

from __future__ import annotations

from tests.scenario import test_resolve as flows
from tests.scenario.test_resolve import bot, prisma  # noqa: F401 - fixtures, on this pg_url


def test_resolve_as_the_documented_role(bot, prisma):  # noqa: F811
    flows.test_resolve_undoes_what_took_effect_marks_rolled_back_and_redeploys(bot, prisma)
