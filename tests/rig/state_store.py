"""The state store under test: SQLite (the default, fast) or PostgreSQL (``--state-store
postgresql`` or ``ROLLBACK_BOT_TEST_STATE_STORE=postgresql``; CI runs the store, engine and
scenario tests both ways).

Fixtures: ``state_db`` (the location the bot and the store use in this test: a file under
tmp_path, or a fresh database on the rig's PostgreSQL server, dropped after) and
``any_state_db`` (parametrised over both, for the store's own tests, whatever the option).
``state_db_for(tmp_path)`` gives the same location to helpers that only hold tmp_path.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.rig.postgres import PostgresServer, database_name

ENV_STORE = "ROLLBACK_BOT_TEST_STATE_STORE"
KINDS = ("sqlite", "postgresql")
_current: dict[str, pytest.FixtureRequest] = {}


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--state-store",
        choices=KINDS,
        default=os.environ.get(ENV_STORE) or "sqlite",
        help=f"the state store the bot and engine tests use (default sqlite; ${ENV_STORE})",
    )


def pytest_report_header(config: pytest.Config) -> str:
    return f"state store: {config.getoption('--state-store')}"


def _location(request: pytest.FixtureRequest, kind: str, tmp_path: Path) -> Iterator[str]:
    if kind == "sqlite":
        yield str(tmp_path / "state.db")
        return
    server: PostgresServer = request.getfixturevalue("pg_server")
    url = server.create_database()
    try:
        yield url
    finally:
        server.drop_database(database_name(url))


@pytest.fixture
def state_db(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    yield from _location(request, request.config.getoption("--state-store"), tmp_path)


@pytest.fixture(params=KINDS)
def any_state_db(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    yield from _location(request, request.param, tmp_path)


@pytest.fixture(autouse=True)
def _state_db_request(request: pytest.FixtureRequest) -> Iterator[None]:
    _current["request"] = request
    yield
    _current.clear()


def state_db_for(tmp_path: Path) -> Path | str:
    """This test's state location, for helpers that only hold tmp_path."""
    request = _current["request"]
    if request.config.getoption("--state-store") == "sqlite":
        return tmp_path / "state.db"
    return request.getfixturevalue("state_db")
