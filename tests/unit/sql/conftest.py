"""Shared fixtures for the SQL analysis tests: a connection to a throw-away database and a
catalog snapshot to compare schemas before and after."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import psycopg
import pytest

from tests.unit.sql.catalog_snapshot import catalog_snapshot_of


@pytest.fixture
def conn(pg_url: str) -> Iterator[psycopg.Connection]:
    with psycopg.connect(pg_url, autocommit=True) as connection:
        yield connection


@pytest.fixture
def catalog_snapshot(conn: psycopg.Connection) -> Callable[[], dict[str, list[tuple]]]:
    return lambda: catalog_snapshot_of(conn)


@pytest.fixture
def extension_name(conn: psycopg.Connection) -> str:
    """A contrib extension this server can install (the diagnosis only needs one)."""
    row = conn.execute(
        "SELECT name FROM pg_available_extensions"
        " WHERE name IN ('pg_trgm', 'citext', 'hstore', 'pgcrypto') AND installed_version IS NULL"
        " ORDER BY name LIMIT 1"
    ).fetchone()
    if row is None:
        pytest.skip("no contrib extension (pg_trgm, citext, hstore, pgcrypto) on this server")
    return row[0]
