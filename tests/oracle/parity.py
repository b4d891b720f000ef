"""What "the bot's deploy and Prisma's agree" compares: the schema as ``pg_dump
--schema-only`` prints it, and the rows of ``_prisma_migrations`` without what differs by
nature (ids are uuid4, timestamps come from each client's clock)."""

from __future__ import annotations

import subprocess

import psycopg
import pytest

# pg_dump 15.14+ prints "\restrict <random key>" lines (CVE-2025-8714), different each run.
_VOLATILE_PREFIXES = ("--", "\\restrict", "\\unrestrict", "SET ", "SELECT pg_catalog.set_config")


def dump_schema(server, url: str) -> str:
    """``pg_dump --schema-only`` of the database, without comments and session settings."""
    pg_dump = server.bin_dir / "pg_dump"
    if not pg_dump.exists():
        pytest.skip(f"pg_dump is not in {server.bin_dir}")
    done = subprocess.run(
        [str(pg_dump), "--schema-only", "--no-owner", "--no-privileges", f"--dbname={url}"],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    if done.returncode != 0:
        raise AssertionError(f"pg_dump failed: {done.stderr.strip()[:500]}")
    kept = [
        line
        for line in done.stdout.splitlines()
        if line.strip() and not line.startswith(_VOLATILE_PREFIXES)
    ]
    return "\n".join(kept)


def history_rows(url: str) -> list[tuple]:
    """Each row's name, checksum, logs, step count and state, in the order Prisma reads
    them (started_at)."""
    with psycopg.connect(url, autocommit=True) as conn:
        return conn.execute(
            "SELECT migration_name, checksum, logs, applied_steps_count,"
            " finished_at IS NOT NULL, rolled_back_at IS NOT NULL"
            " FROM _prisma_migrations ORDER BY started_at, migration_name"
        ).fetchall()
