"""The state store's SQLite connection (WAL mode): one connection, one lock, and the write
transaction every change runs in (``BEGIN IMMEDIATE``, so a read-then-write cannot
interleave with another thread's or process's)."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import sqlite_utils

from bot.store.schema import upgrade


class Transactions:
    """One SQLite connection shared by the app's threads, serialised by a lock; other
    processes (the terminal, a restarted bot) coordinate through SQLite's own locking."""

    def __init__(self, path: Path | str):
        self.path = Path(path)
        if str(path) != ":memory:":
            self.path.parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(str(path), check_same_thread=False, timeout=30)
        self.db = sqlite_utils.Database(conn)
        self._lock = threading.RLock()
        with self._lock:
            self.db.execute("PRAGMA journal_mode=WAL")
            self.db.execute("PRAGMA synchronous=NORMAL")
            self.db.execute("PRAGMA foreign_keys=ON")
            upgrade(self.db.conn, path)

    def close(self) -> None:
        with self._lock:
            self.db.close()

    @contextmanager
    def transaction(self) -> Iterator[sqlite_utils.Database]:
        """One write transaction. BEGIN IMMEDIATE takes the write lock up front, so a
        read-then-write (check a status, then change it) cannot interleave with another.
        (Public for tests that set up a state no code path leaves, such as a crash.)"""
        with self._lock:
            if self.db.conn.in_transaction:
                with self.db.atomic():
                    yield self.db
                return
            self.db.conn.execute("BEGIN IMMEDIATE")
            try:
                yield self.db
            except BaseException:
                self.db.conn.execute("ROLLBACK")
                raise
            self.db.conn.execute("COMMIT")

    def _query(self, sql: str, params: tuple = ()) -> list[dict]:
        with self._lock:
            return list(self.db.query(sql, params))

    def _change(self, sql: str, params: tuple) -> bool:
        """One conditional UPDATE/INSERT; whether it changed a row (won the race)."""
        with self.transaction() as db:
            return db.execute(sql, params).rowcount > 0
