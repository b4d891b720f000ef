"""The PostgreSQL half of the rig: the server itself lives in bot/sandbox/postgres.py (the
sandbox starts the same one); this module adds the pytest fixtures.

Fixtures: ``pg_server`` (session), ``pg_url`` (a fresh database per test, dropped after)
and ``pg_role_url`` (the same database as a role that is not a superuser).
"""

from __future__ import annotations

import functools
import os
import secrets
import subprocess
import uuid
from collections.abc import Iterator
from urllib.parse import quote, urlsplit, urlunsplit

import psycopg
import pytest
from psycopg import sql

from bot.sandbox.postgres import (
    EMBEDDED_FALLBACK_OS_USER,
    ENV_CHOICE,
    MAX_IDENTIFIER_BYTES,
    MIN_MAJOR,
    SUPERUSER,
    SYSTEM_OS_USER,
    TEMPLATE_DB,
    PostgresRigError,
    PostgresServer,
    _choose_install,
    database_name,
)

__all__ = [
    "EMBEDDED_FALLBACK_OS_USER",
    "ENV_CHOICE",
    "MAX_IDENTIFIER_BYTES",
    "MIN_MAJOR",
    "SUPERUSER",
    "SYSTEM_OS_USER",
    "TEMPLATE_DB",
    "PostgresRigError",
    "PostgresServer",
    "_choose_install",
    "database_name",
    "pg_role_url",
    "pg_server",
    "pg_url",
]


@functools.lru_cache(maxsize=1)
def _header_line(choice: str) -> str:
    try:
        return f"rig postgres: {_choose_install(choice).describe()}"
    except (PostgresRigError, OSError, subprocess.SubprocessError) as exc:
        return f"rig postgres: unavailable: {exc}"


def pytest_report_header(config: pytest.Config) -> str:
    return _header_line(os.environ.get(ENV_CHOICE, ""))


@pytest.fixture(scope="session")
def pg_server() -> Iterator[PostgresServer]:
    server = PostgresServer()
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def pg_url(pg_server: PostgresServer) -> Iterator[str]:
    url = pg_server.create_database()
    yield url
    pg_server.drop_database(database_name(url))


@pytest.fixture
def pg_role_url(pg_url: str) -> Iterator[str]:
    """``pg_url`` as a role that is not a superuser and owns the database (so it may create
    tables in its public schema) and nothing more: the bot's connection when a test shows
    what a requester can do to production. The role is dropped after."""
    role = f"rig_bot_{uuid.uuid4().hex[:12]}"
    password = secrets.token_urlsafe(18)
    name = database_name(pg_url)
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute(
            sql.SQL("CREATE ROLE {} LOGIN PASSWORD {} NOSUPERUSER NOCREATEDB NOCREATEROLE").format(
                sql.Identifier(role), sql.Literal(password)
            )
        )
        conn.execute(
            sql.SQL("ALTER DATABASE {} OWNER TO {}").format(
                sql.Identifier(name), sql.Identifier(role)
            )
        )
    parts = urlsplit(pg_url)
    netloc = f"{role}:{quote(password, safe='')}@{parts.hostname}:{parts.port}"
    yield urlunsplit(parts._replace(netloc=netloc))
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = %s", (role,)
        )
        conn.execute(
            sql.SQL("ALTER DATABASE {} OWNER TO {}").format(
                sql.Identifier(name), sql.Identifier(SUPERUSER)
            )
        )
        conn.execute(sql.SQL("DROP OWNED BY {}").format(sql.Identifier(role)))
        conn.execute(sql.SQL("DROP ROLE {}").format(sql.Identifier(role)))
