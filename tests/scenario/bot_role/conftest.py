"""Every test in this directory runs with ``pg_url`` naming the role docs/database-privileges.sql
creates: a fresh database whose schema is owned by an application role (as Prisma's
migrations leave it), the SQL file run with psql as the documented command runs it, and the
URL of the bot's role. The set-up of each flow and the bot itself connect as that role."""

from __future__ import annotations

import secrets
import subprocess
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote, urlsplit, urlunsplit

import psycopg
import pytest
from psycopg import sql

from tests.rig.postgres import database_name

PRIVILEGES_SQL = Path(__file__).parents[3] / "docs" / "database-privileges.sql"


def owner_and_bot_roles(database: str) -> tuple[str, str]:
    return f"app_{database}"[:63], f"rollback_bot_{database}"[:63]


def run_privileges_sql(admin_url: str, bot_role: str, owner: str, database: str, password: str):
    """The file exactly as README says to run it."""
    result = subprocess.run(
        ["psql", admin_url, "-v", "ON_ERROR_STOP=1", "-X", "-q"]
        + ["-v", f"bot_role={bot_role}", "-v", f"app_owner={owner}"]
        + ["-v", f"database={database}", "-v", f"password={password}"]
        + ["-f", str(PRIVILEGES_SQL)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr


@pytest.fixture
def pg_url(pg_server) -> Iterator[str]:
    admin_url = pg_server.create_database()
    database = database_name(admin_url)
    owner, bot_role = owner_and_bot_roles(database)
    password = secrets.token_urlsafe(18)
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE ROLE {} NOLOGIN").format(sql.Identifier(owner)))
        conn.execute(sql.SQL("ALTER SCHEMA public OWNER TO {}").format(sql.Identifier(owner)))
    run_privileges_sql(admin_url, bot_role, owner, database, password)
    parts = urlsplit(admin_url)
    netloc = f"{quote(bot_role)}:{quote(password, safe='')}@{parts.hostname}:{parts.port}"
    yield urlunsplit(parts._replace(netloc=netloc))
    pg_server.drop_database(database)
    with psycopg.connect(pg_server.url(), autocommit=True) as conn:
        for role in (bot_role, owner):
            conn.execute(sql.SQL("DROP ROLE IF EXISTS {}").format(sql.Identifier(role)))
