"""The state store on SQLite (WAL mode), the embedded default: one connection shared by the
app's threads, serialised by a lock; other processes (the terminal, a restarted bot)
coordinate through SQLite's own locking. Every change runs in ``BEGIN IMMEDIATE``, which
takes the write lock up front, so a read-then-write cannot interleave with another."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from bot.store.schema import upgrade
from bot.store.transactions import StoreClosed, Tx


class SqliteDatabase:
    for_update = ""
    audit_lock = ""
    after_copy = ()
    tables_sql = "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'"

    def __init__(self, path: Path):
        self.location = self.path = path
        if str(path) != ":memory:":
            path.parent.mkdir(parents=True, exist_ok=True)
        # isolation_level=None: no implicit transactions; ours are explicit (BEGIN IMMEDIATE).
        self._conn = sqlite3.connect(
            str(path), check_same_thread=False, timeout=30, isolation_level=None
        )
        self._lock = threading.RLock()
        self._depth = 0
        with self._lock:
            self._conn.execute("PRAGMA journal_mode=WAL")
            self._conn.execute("PRAGMA synchronous=NORMAL")
            self._conn.execute("PRAGMA foreign_keys=ON")
            upgrade(self._conn, path)

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    @contextmanager
    def transaction(self) -> Iterator[Tx]:
        """One write transaction; a nested one is a savepoint inside it."""
        with self._lock:
            cursor = self._cursor()
            begin, commit, undo = (
                ("BEGIN IMMEDIATE", "COMMIT", "ROLLBACK")
                if self._depth == 0
                else ("SAVEPOINT nested", "RELEASE nested", "ROLLBACK TO nested")
            )
            cursor.execute(begin)
            self._depth += 1
            try:
                yield Tx(cursor, "?", (sqlite3.IntegrityError,))
            except BaseException:
                cursor.execute(undo)
                if begin.startswith("SAVEPOINT"):
                    cursor.execute(commit)
                raise
            else:
                cursor.execute(commit)
            finally:
                self._depth -= 1

    def query(self, sql: str, params: Iterable[Any] = ()) -> list[dict]:
        with self._lock:
            return Tx(self._cursor(), "?", (sqlite3.IntegrityError,)).query(sql, params)

    def _cursor(self) -> sqlite3.Cursor:
        try:
            return self._conn.cursor()
        except sqlite3.ProgrammingError as exc:  # "Cannot operate on a closed database."
            raise StoreClosed(str(exc)) from exc
