"""The transaction in which the bot runs SQL a person typed, exactly as it was analysed.

- One statement per round trip, with the extended query protocol (psycopg's
  ``prepare=True``: Parse/Bind/Execute), so the server refuses a text that holds more than
  one command ("cannot insert multiple commands into a prepared statement"). With the simple
  protocol a text the bot's parser read as one SELECT could be three commands to a server
  that lexes it differently, COMMIT included.
- The bot opens the transaction (REPEATABLE READ: every statement sees one snapshot, and a
  row another session changes under it is an error instead of silently re-read, which keeps
  the backups exact), sets lock_timeout, statement_timeout and the settings that decide how
  text is lexed with SET LOCAL, takes the table locks whole-table backups need before the
  snapshot, and records the session's settings.
- After every statement it checks that its transaction is still open and that no setting
  moved; anything else aborts.
- A whole-transaction time budget when given (option 4's dry run: it holds its locks before
  anyone approved, and a chain of statements each under statement_timeout could hold them
  for minutes). PostgreSQL 15 has no transaction_timeout (17 does), and statement_timeout
  is pinned: a watchdog thread cancels whatever runs once the budget is spent
  (``Connection.cancel_safe``, made to be called from another thread), and nothing more is
  sent after it.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import psycopg
from psycopg import IsolationLevel
from psycopg.pq import TransactionStatus

from bot.errors import UserError
from bot.sql.names import QualifiedName, quote_literal

log = logging.getLogger(__name__)

# What the bot's parser (pglast, PostgreSQL's own grammar) assumes when it reads text: with
# standard_conforming_strings off, 'a\' would end a string elsewhere than the bot saw.
LEXING = {"standard_conforming_strings": "on", "backslash_quote": "safe_encoding"}
_ENCODING = "UTF8"
# Settings the text must not move (checked after every statement).
_PINNED = (
    *LEXING,
    "client_encoding",
    "search_path",
    "lock_timeout",
    "statement_timeout",
    "idle_in_transaction_session_timeout",
    "transaction_isolation",
    "transaction_read_only",
    "session_replication_role",
    "role",
)
_SETTINGS_QUERY = (
    "SELECT "
    + ", ".join(f"current_setting({quote_literal(name)})" for name in _PINNED)
    + ", current_user::text, session_user::text"
)
_SAVEPOINT = "rollback_bot_savepoint"


@dataclass(frozen=True)
class Limits:
    """What the bot sets for the transaction; the text cannot change them."""

    lock_timeout: str
    statement_timeout: str
    # While the transaction waits for the requester: past this PostgreSQL ends the session
    # (and so rolls back) even if the bot itself is stuck.
    idle_seconds: float | None = None
    # The whole transaction's budget, from begin() on (the dry run's); None: no budget.
    total_seconds: float | None = None


class SessionChanged(UserError):
    """The transaction ended or a setting moved under the bot: everything is rolled back."""


class OverBudget(UserError):
    """The transaction's time budget is spent: what ran was cancelled, nothing more runs."""


class _Watchdog:
    """Cancels whatever runs on ``conn`` once ``budget`` seconds have passed, unless stopped
    first. ``spent`` says whether it did (or the budget is over anyway)."""

    def __init__(self, conn: psycopg.Connection, budget: float):
        self.conn = conn
        self.deadline = time.monotonic() + budget
        self._fired = False
        self._stopped = False
        self._lock = threading.Lock()  # a cancel is never sent after stop() returned
        self._timer = threading.Timer(budget, self._cancel)
        self._timer.daemon = True
        self._timer.start()

    @property
    def spent(self) -> bool:
        return self._fired or time.monotonic() >= self.deadline

    def _cancel(self) -> None:
        with self._lock:
            if self._stopped:
                return
            self._fired = True
            try:
                self.conn.cancel_safe(timeout=5)
            except psycopg.Error as error:  # the statement then ends at its own timeout
                log.warning("could not cancel the dry run's statement: %s", error)

    def stop(self) -> None:
        with self._lock:
            self._stopped = True
        self._timer.cancel()


class GuardedTransaction:
    """One transaction on ``conn`` (autocommit off), configured and watched by the bot."""

    def __init__(self, conn: psycopg.Connection, limits: Limits, *, read_only: bool = False):
        if conn.autocommit:
            raise ValueError("a guarded transaction needs a connection with autocommit off")
        self.conn = conn
        self.limits = limits
        self.read_only = read_only
        self.pinned: tuple | None = None
        self._watchdog: _Watchdog | None = None

    def begin(self, lock: Iterable[QualifiedName] = ()) -> None:
        """Open the transaction: settings, then locks, then the snapshot (the first query
        that reads takes it: docs, LOCK: "obtain locks explicitly before the snapshot is
        frozen")."""
        if self.conn.info.transaction_status != TransactionStatus.IDLE:
            raise ValueError("the connection is already in a transaction")
        if self.limits.total_seconds is not None:
            self._watchdog = _Watchdog(self.conn, self.limits.total_seconds)
        self.conn.isolation_level = IsolationLevel.REPEATABLE_READ
        self.conn.read_only = self.read_only
        # psycopg ignores prepare=True when prepare_threshold is None (it would then send
        # the text with the simple protocol): make sure it is not.
        if self.conn.prepare_threshold is None:
            self.conn.prepare_threshold = 5
        for name, value in self._settings():
            self.bot(f"SET LOCAL {name} = {quote_literal(value)}")
        for table in sorted(set(lock), key=lambda t: t.sql()):
            self.bot(f"LOCK TABLE {table.sql()} IN ACCESS EXCLUSIVE MODE")
        self.pinned = self.conn.execute(_SETTINGS_QUERY).fetchone()
        self.check()

    def _settings(self) -> list[tuple[str, str]]:
        settings = [
            ("lock_timeout", self.limits.lock_timeout),
            ("statement_timeout", self.limits.statement_timeout),
            *LEXING.items(),
        ]
        if self.limits.idle_seconds:
            idle = f"{int(self.limits.idle_seconds * 1000)}ms"
            settings.append(("idle_in_transaction_session_timeout", idle))
        return settings

    def bot(self, text: str, params: tuple | None = None) -> psycopg.Cursor:
        """A statement the bot wrote itself (never text a person typed)."""
        self._within_budget()
        return self.conn.execute(text, params)

    def run(self, text: str) -> psycopg.Cursor:
        """One statement built from typed text: extended protocol, then the checks."""
        self._within_budget()
        cur = self.conn.cursor()
        # Sent as bytes with no parameters: psycopg then sends the text as it is, without
        # looking for %s placeholders; prepare=True sends it with Parse/Bind/Execute.
        cur.execute(text.encode("utf-8"), prepare=True)
        self.check()
        return cur

    @property
    def over_budget(self) -> bool:
        """The time budget is spent (what failed then was most likely cancelled for it)."""
        return self._watchdog is not None and self._watchdog.spent

    def stop_watchdog(self) -> None:
        """Before the transaction ends: no cancel may reach what the bot sends next."""
        if self._watchdog is not None:
            self._watchdog.stop()

    def _within_budget(self) -> None:
        if self.over_budget:
            raise OverBudget(f"The transaction ran out of its {self.limits.total_seconds:g} s.")

    def check(self) -> None:
        status = self.conn.info.transaction_status
        if status != TransactionStatus.INTRANS:
            raise SessionChanged(
                f"The bot's transaction is no longer open ({status.name}); nothing more was"
                " run and nothing is committed by the bot.",
                "Tell the database owner: this should not be possible. Check the database.",
            )
        if self.pinned is None:
            return
        now = self.conn.execute(_SETTINGS_QUERY).fetchone()
        moved = [
            name
            for name, before, after in zip(
                (*_PINNED, "current_user", "session_user"), self.pinned, now, strict=True
            )
            if before != after
        ]
        if moved:
            raise SessionChanged(
                "A statement changed session settings the bot sets ("
                + ", ".join(moved)
                + "); the transaction was rolled back.",
                "Remove whatever changes them.",
            )

    @contextmanager
    def savepoint(self) -> Iterator[None]:
        """Run a block and undo it, keeping the rest of the transaction (the verification
        query: a SELECT cannot change what the requester is about to commit)."""
        self.bot(f"SAVEPOINT {_SAVEPOINT}")
        yield
        self.bot(f"ROLLBACK TO SAVEPOINT {_SAVEPOINT}")


def check_lexing(conn: psycopg.Connection) -> None:
    """The session must lex text as the bot's parser does before it runs a typed script
    with the simple protocol (a migration, as Prisma applies it)."""
    names = (*LEXING, "client_encoding")
    row = conn.execute(
        "SELECT " + ", ".join(f"current_setting({quote_literal(n)})" for n in names)
    ).fetchone()
    expected = (*LEXING.values(), _ENCODING)
    wrong = [
        f"{name} = {value}"
        for name, value, want in zip(names, row, expected, strict=True)
        if value != want and not (name == "backslash_quote" and value == "off")
    ]
    if wrong:
        raise UserError(
            "The database session does not read SQL text the way the bot checked it ("
            + ", ".join(wrong)
            + "); nothing was applied.",
            "Reset these settings on the role or database (ALTER ROLE ... RESET ...).",
        )
