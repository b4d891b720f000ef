"""Read-only questions to the live catalog that the analysis shares."""

from __future__ import annotations

import psycopg


def current_schema(conn: psycopg.Connection) -> str:
    """The schema unqualified names are created in: the first existing schema of the
    search_path (PostgreSQL's current_schema()), 'public' when there is none."""
    row = conn.execute("SELECT current_schema()").fetchone()
    return row[0] if row and row[0] else "public"
