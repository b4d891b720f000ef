"""The PostgreSQL half of the rig: the server itself lives in bot/sandbox/postgres.py (the
sandbox starts the same one); this module adds the pytest fixtures.

Fixtures: ``pg_server`` (session) and ``pg_url`` (a fresh database per test, dropped after).
"""

from __future__ import annotations

import functools
import os
import subprocess
from collections.abc import Iterator

import pytest

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
