"""How the store reaches its database, whichever it is: one connection guarded by a lock,
the write transaction every change runs in, and one cursor wrapper (``Tx``) so that the
store's statements are written once.

The store's SQL is the subset SQLite and PostgreSQL both accept (``?`` placeholders,
``INSERT ... ON CONFLICT``, ``RETURNING``); the two backends (bot/store/sqlite_db.py,
bot/store/postgres.py) differ only in how they connect, how a write transaction takes its
locks, and which errors mean "the database refused this".
"""

from __future__ import annotations

from collections.abc import Iterable
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any, Protocol

from bot.redaction import Secret


class Refused(Exception):
    """The database refused a change: a unique index (another operation holds the
    environment), the audit log's append-only trigger, or a privilege the role lacks."""


class StoreClosed(Exception):
    """The store was used after ``close()`` (a feed still sending while the bot stops)."""


class Tx:
    """One transaction's cursor: ``?`` placeholders, rows as dicts, the backend's refusals
    raised as ``Refused``."""

    def __init__(self, cursor: Any, placeholder: str, refusals: tuple[type[Exception], ...]):
        self._cursor = cursor
        self._placeholder = placeholder
        self._refusals = refusals

    def _sql(self, sql: str) -> str:
        if self._placeholder == "?":
            return sql
        return sql.replace("%", "%%").replace("?", self._placeholder)

    def execute(self, sql: str, params: Iterable[Any] = ()) -> int:
        """Runs one statement; how many rows it changed."""
        try:
            # Flags are 0/1 integers in both databases (PostgreSQL will not cast a bool).
            values = tuple(int(v) if isinstance(v, bool) else v for v in params)
            self._cursor.execute(self._sql(sql), values)
        except self._refusals as exc:
            raise Refused(str(exc)) from exc
        return self._cursor.rowcount

    def query(self, sql: str, params: Iterable[Any] = ()) -> list[dict]:
        self.execute(sql, params)
        if self._cursor.description is None:
            return []
        names = [d[0] for d in self._cursor.description]
        return [dict(zip(names, row, strict=True)) for row in self._cursor.fetchall()]

    def insert(self, table: str, row: dict[str, Any], returning: str | None = None) -> Any:
        """INSERT one row; the value of ``returning`` (the new row's id) when asked."""
        sql = f"INSERT INTO {table} ({', '.join(row)}) VALUES ({', '.join('?' * len(row))})"
        if returning is None:
            self.execute(sql, row.values())
            return None
        return self.query(f"{sql} RETURNING {returning}", row.values())[0][returning]

    def insert_all(self, table: str, rows: Iterable[dict[str, Any]]) -> None:
        for row in rows:
            self.insert(table, row)

    def update(self, table: str, key: str, columns: dict[str, Any]) -> int:
        """UPDATE the row whose ``id`` is ``key``."""
        sets = ", ".join(f"{name} = ?" for name in columns)
        return self.execute(f"UPDATE {table} SET {sets} WHERE id = ?", [*columns.values(), key])


class Database(Protocol):
    """What the store needs of a backend."""

    location: Path | Secret
    # Appended to a SELECT that reads rows the same transaction then changes: row locks on
    # PostgreSQL; nothing on SQLite, whose BEGIN IMMEDIATE already holds the write lock.
    for_update: str
    # Run first in a transaction that appends to the audit log (whose hash chain needs
    # appends one at a time): PostgreSQL's advisory lock; nothing on SQLite.
    audit_lock: str
    # Run after rows were copied in with their ids (``state migrate``): PostgreSQL's
    # identity must continue after the highest audit id; SQLite's AUTOINCREMENT already does.
    after_copy: tuple[str, ...]
    # The names of the tables in the database (one column, ``name``).
    tables_sql: str

    def transaction(self) -> AbstractContextManager[Tx]: ...

    def query(self, sql: str, params: Iterable[Any] = ()) -> list[dict]: ...

    def close(self) -> None: ...


def open_database(location: Path | str | Secret) -> Database:
    """A PostgreSQL URL (``postgresql://...``, plain or as a Secret) or a SQLite file."""
    url = location.reveal() if isinstance(location, Secret) else str(location)
    if is_postgres_url(url):
        from bot.store.postgres import PostgresDatabase

        return PostgresDatabase(Secret(url))
    from bot.store.sqlite_db import SqliteDatabase

    return SqliteDatabase(Path(location) if not isinstance(location, Secret) else Path(url))


def is_postgres_url(value: str) -> bool:
    return value.startswith(("postgresql://", "postgres://"))


class Connected:
    """The store's hold on its database: the statements (bot/store/sqlite.py) call these."""

    def __init__(self, location: Path | str | Secret):
        self._db = open_database(location)
        self.location = self._db.location
        self.path = getattr(self._db, "path", None)  # the SQLite file (None on PostgreSQL)
        self.after_copy = self._db.after_copy

    def close(self) -> None:
        self._db.close()

    def transaction(self) -> AbstractContextManager[Tx]:
        """One write transaction. (Public for tests that set up a state no code path
        leaves, such as a crash.)"""
        return self._db.transaction()

    def _query(self, sql: str, params: tuple = ()) -> list[dict]:
        return self._db.query(sql, params)

    def table_names(self) -> set[str]:
        """Every table the state database holds (``state migrate`` copies them all)."""
        return {row["name"] for row in self._db.query(self._db.tables_sql)}

    def _change(self, sql: str, params: tuple) -> bool:
        """One conditional UPDATE/INSERT; whether it changed a row (won the race)."""
        with self.transaction() as db:
            return db.execute(sql, params) > 0
