"""Prisma Migrate's advisory lock: who holds it, and taking it around every history write.

Prisma takes ``SELECT pg_advisory_lock(72707369)`` with a 10 s timeout before it touches
``_prisma_migrations`` (sql-schema-connector, postgres flavour ``acquire_lock``; P1002 on
timeout). The bot takes the same lock, so it never races a real ``prisma migrate deploy``.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime

import psycopg

from bot.prisma.error_codes import p1002_lock_timeout

PRISMA_LOCK_KEY = 72707369
DEFAULT_LOCK_TIMEOUT = 10.0  # seconds, Prisma's ADVISORY_LOCK_TIMEOUT

# A bigint advisory key shows in pg_locks as classid = high 32 bits, objid = low 32 bits,
# objsubid = 1 (PostgreSQL docs, pg_locks).
_HOLDER_QUERY = """
SELECT a.pid, a.usename, a.application_name, host(a.client_addr), a.backend_start
FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
WHERE l.locktype = 'advisory' AND l.granted
  AND l.classid = %s AND l.objid = %s AND l.objsubid = 1
  AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
ORDER BY a.backend_start
LIMIT 1
"""


@dataclass(frozen=True)
class LockHolder:
    pid: int
    user: str | None
    application_name: str | None
    client_addr: str | None  # None for a unix-socket connection
    since: datetime | None  # when that session connected (the lock is taken right after)

    def describe(self) -> str:
        parts = [f"user {self.user}"] if self.user else []
        if self.application_name:
            parts.append(f"application {self.application_name}")
        if self.client_addr:
            parts.append(f"from {self.client_addr}")
        if self.since:
            parts.append(f"connected since {self.since:%Y-%m-%d %H:%M:%S %Z}")
        return f"PostgreSQL backend pid {self.pid} ({', '.join(parts)})"


def lock_holder(conn: psycopg.Connection) -> LockHolder | None:
    """The session holding Prisma's migration lock in this database, if any."""
    key = (PRISMA_LOCK_KEY >> 32, PRISMA_LOCK_KEY & 0xFFFFFFFF)
    row = conn.execute(_HOLDER_QUERY, key).fetchone()
    return LockHolder(*row) if row else None


@contextmanager
def prisma_advisory_lock(
    conn: psycopg.Connection, timeout: float = DEFAULT_LOCK_TIMEOUT
) -> Iterator[None]:
    """Hold Prisma's session-level advisory lock for the block.

    The wait is bounded with lock_timeout, which applies to advisory locks like any heavy
    lock wait (PostgreSQL docs, lock_timeout); on timeout the error names the holder.
    ``conn`` must be in autocommit mode, as Prisma's connection is.
    """
    previous = conn.execute("SELECT current_setting('lock_timeout')").fetchone()[0]
    conn.execute("SELECT set_config('lock_timeout', %s, false)", (f"{round(timeout * 1000)}ms",))
    try:
        conn.execute("SELECT pg_advisory_lock(%s)", (PRISMA_LOCK_KEY,))
    except psycopg.errors.LockNotAvailable as exc:
        holder = lock_holder(conn)
        raise p1002_lock_timeout(timeout, holder.describe() if holder else None) from exc
    finally:
        conn.execute("SELECT set_config('lock_timeout', %s, false)", (previous,))
    try:
        yield
    finally:
        _unlock(conn)


def _unlock(conn: psycopg.Connection) -> None:
    if conn.closed:
        return  # a closed session has released its locks
    if conn.info.transaction_status == psycopg.pq.TransactionStatus.INERROR:
        conn.execute("ROLLBACK")  # a script's own failed BEGIN block would refuse the unlock
    conn.execute("SELECT pg_advisory_unlock(%s)", (PRISMA_LOCK_KEY,))
