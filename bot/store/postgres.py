"""The state store on PostgreSQL, for more than one replica: every replica reads and writes
the same tables, so one active operation per environment, a decided approval, a seen
request signature and a job already run hold across all of them.

How the guarantees hold here (SQLite gets them from its single writer):
- the connection runs in autocommit; every change is an explicit transaction at READ
  COMMITTED, and a statement that checks then changes is one conditional UPDATE (the row
  lock makes a second writer wait, then re-check its WHERE and change nothing), or reads
  its rows ``FOR UPDATE`` first (``Database.for_update``);
- the one-active-operation rule is the same partial unique index, the audit log's
  append-only rule the same trigger (bot/store/migrations/, the ``postgres`` steps) plus the
  grants of docs/state-privileges.sql.

One connection per process, serialised by a lock, as with SQLite; a connection that broke
(the server restarted, a failover) is replaced at the next statement.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import Any

import psycopg
from psycopg import errors

from bot.errors import ConfigError
from bot.redaction import Secret, redact_url, scrub
from bot.store import migrations
from bot.store.migrations.postgres_target import PostgresTarget
from bot.store.transactions import StoreClosed, Tx

# What the database refuses (rather than fails at): the unique index, the audit trigger's
# RAISE, a grant the role does not have.
_REFUSALS = (errors.IntegrityError, errors.RaiseException, errors.InsufficientPrivilege)


def writable(url: Secret) -> dict:
    """/readyz: a connection of its own that can write (not a read-only standby)."""
    where = redact_url(url.reveal())
    try:
        with psycopg.connect(url.reveal(), connect_timeout=5) as conn:
            read_only = conn.execute("SHOW transaction_read_only").fetchone()[0] == "on"
    except psycopg.Error as error:
        return {"ok": False, "url": where, "error": scrub(str(error), [url.reveal()])}
    if read_only:
        return {"ok": False, "url": where, "error": "the server is read-only (a standby?)"}
    return {"ok": True, "url": where}


class PostgresDatabase:
    for_update = " FOR UPDATE"
    audit_lock = "SELECT pg_advisory_xact_lock(1635083369)"  # any fixed number: "audi"
    after_copy = (
        "SELECT setval(pg_get_serial_sequence('audit', 'id'),"
        " coalesce((SELECT max(id) FROM audit), 0) + 1, false)",
    )
    tables_sql = "SELECT tablename AS name FROM pg_tables WHERE schemaname = current_schema()"

    def __init__(self, url: Secret):
        self.location = url
        self._lock = threading.RLock()
        self._closed = False
        self._conn = self._connect()
        with self._lock:
            migrations.migrate(PostgresTarget(self._conn, redact_url(url.reveal())))

    def _connect(self) -> psycopg.Connection:
        url = self.location.reveal()
        try:
            return psycopg.connect(
                url, autocommit=True, connect_timeout=10, application_name="rollback-bot"
            )
        except psycopg.Error as exc:
            raise ConfigError(
                f"state_db: cannot connect to {redact_url(url)}: {scrub(str(exc).strip(), [url])}"
            ) from None

    def close(self) -> None:
        with self._lock:
            self._closed = True
            self._conn.close()

    def _connection(self) -> psycopg.Connection:
        if self._closed:
            raise StoreClosed("the state store is closed")
        if self._conn.broken or self._conn.closed:
            self._conn = self._connect()
        return self._conn

    @contextmanager
    def transaction(self) -> Iterator[Tx]:
        """One write transaction (a nested one is a savepoint, psycopg's own nesting)."""
        with self._lock:
            conn = self._connection()
            with conn.transaction(), conn.cursor() as cursor:
                yield Tx(cursor, "%s", _REFUSALS)

    def query(self, sql: str, params: Iterable[Any] = ()) -> list[dict]:
        with self._lock, self._connection().cursor() as cursor:
            return Tx(cursor, "%s", _REFUSALS).query(sql, params)
