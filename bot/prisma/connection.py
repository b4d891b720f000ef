"""Connections used the way Prisma uses them: autocommit, in the schema Prisma would use."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import psycopg

ConnOrUrl = psycopg.Connection | str


@contextmanager
def autocommit_connection(conn_or_url: ConnOrUrl) -> Iterator[psycopg.Connection]:
    """An autocommit connection: opened from a URL (and closed after), or the caller's own
    connection switched to autocommit for the block.

    Prisma writes its bookkeeping rows outside any transaction, so a failed migration's row
    stays "failed" even when the migration's own DDL is rolled back.
    """
    if isinstance(conn_or_url, str):
        with connect_prisma_url(conn_or_url) as conn:
            yield conn
        return
    conn = conn_or_url
    was_autocommit = conn.autocommit
    conn.autocommit = True  # psycopg refuses this inside a transaction: the caller's bug
    try:
        yield conn
    finally:
        conn.autocommit = was_autocommit


def connect_prisma_url(url: str) -> psycopg.Connection:
    """Connect with a Prisma-style URL: ``?schema=NAME`` (a Prisma parameter libpq does not
    know) becomes the session's search_path, as Prisma's connector does."""
    parts = urlsplit(url)
    query = parse_qsl(parts.query, keep_blank_values=True)
    schema = next((value for key, value in query if key == "schema"), None)
    rest = urlencode([(key, value) for key, value in query if key != "schema"])
    conn = psycopg.connect(urlunsplit(parts._replace(query=rest)), autocommit=True)
    if schema:
        conn.execute("SELECT set_config('search_path', quote_ident(%s), false)", (schema,))
    return conn
