"""Deploy parity on a real history (tests/data/trigger.dev: the first 400
migrations of trigger.dev). The bot's deploy and the real Prisma CLI's, sending each script
whole as its native engine does (tests/oracle/prisma_cli.py), must leave identical
``_prisma_migrations`` rows and an identical ``pg_dump --schema-only``; and real Prisma
must call the bot's database up to date."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from bot.prisma.deploy import deploy
from tests.oracle import prisma_cli
from tests.oracle.parity import dump_schema, history_rows
from tests.rig.postgres import database_name

pytestmark = [pytest.mark.oracle, pytest.mark.timeout(1800)]

EXCERPT = Path(__file__).parents[1] / "data" / "trigger.dev" / "migrations"


def _project(root: Path, node_modules: Path, url: str) -> prisma_cli.PrismaProject:
    project = prisma_cli.PrismaProject(root, node_modules, url)
    shutil.copytree(EXCERPT, project.migrations_dir, dirs_exist_ok=True)
    return project


def test_the_bot_deploys_a_real_history_exactly_as_prisma_does(
    tmp_path, prisma_node_modules, pg_server
):
    names = sorted(d.name for d in EXCERPT.iterdir() if d.is_dir())
    bot_url, prisma_url = pg_server.create_database(), pg_server.create_database()
    try:
        by_prisma = _project(tmp_path / "prisma", prisma_node_modules, prisma_url)
        by_bot = _project(tmp_path / "bot", prisma_node_modules, bot_url)

        real = by_prisma.deploy()
        done = deploy(bot_url, by_bot.migrations_dir)

        assert real.returncode == 0, real.output[-2000:]
        assert done.applied == tuple(names)
        assert history_rows(bot_url) == history_rows(prisma_url)
        assert dump_schema(pg_server, bot_url) == dump_schema(pg_server, prisma_url)
        status = by_bot.status()
        assert status.returncode == 0, status.output[-2000:]
        assert "Database schema is up to date!" in status.output
    finally:
        for url in (bot_url, prisma_url):
            pg_server.drop_database(database_name(url))
