"""Running option 4's SQL: the dry run (always rolled back) and the real run (held open
until the requester decides), the same code path for both.

In one guarded transaction (bot/sql/session.py): the functions the SQL calls are checked
against the live catalog; each statement runs on its own with the extended protocol, after
its whole-table backups, or rewritten to capture what it destroys (bot/sql/capture.py);
then the verification query runs in a savepoint; then every backup is measured again and
must hold exactly what was destroyed. Only then is the requester asked.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable
from dataclasses import dataclass, field

import psycopg

from bot.errors import UserError
from bot.sql import dependents
from bot.sql.allowlist import Calls
from bot.sql.backups import (
    Backup,
    BackupMismatch,
    BackupNames,
    Measured,
    copy_select,
    measure,
    verify,
)
from bot.sql.capture import Capture, Catalog, capture
from bot.sql.manual import AnalysedStatement, ManualSql, ManualSqlError
from bot.sql.names import QualifiedName
from bot.sql.session import GuardedTransaction, Limits
from bot.sql.statements import Statement
from bot.sql.volatility import check_calls
from bot.text import plural

SAMPLE_ROWS = 5
VERIFICATION_ROWS = 10
CELL_MAX = 80
_CHECK = "rollback_bot_check"


class SqlRunError(UserError):
    """PostgreSQL refused something, or a check failed; the transaction was rolled back."""


class CountsChanged(UserError):
    """The real run changed other row counts than the dry run the approver saw; ``result``
    is what it found (rolled back)."""

    def __init__(self, approved: list, result: RunResult):
        super().__init__(
            "The real run's row counts differ from the dry run the approver saw; it was"
            " rolled back and nothing was committed.",
            "A new approval is needed, showing both.",
            code="counts_changed",
        )
        self.approved = approved
        self.result = result
        self.now = result.counts()


# --- results -------------------------------------------------------------------------------


@dataclass
class Rows:
    columns: list[str]
    rows: list[list[str]]
    total: int

    def to_dict(self) -> dict:
        return {"columns": self.columns, "rows": self.rows, "total": self.total}


@dataclass
class PartResult:
    label: str
    verb: str
    rows: int
    backup: str | None = None
    triggers: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        return dict(self.__dict__)


@dataclass
class StatementResult:
    index: int
    line: int
    sql: str
    effect: str
    rowcount: int | None
    parts: list[PartResult] = field(default_factory=list)
    sample: Rows | None = None

    def to_dict(self, *, samples: bool = True) -> dict:
        return {
            "index": self.index,
            "line": self.line,
            "sql": self.sql,
            "effect": self.effect,
            "rowcount": self.rowcount,
            "parts": [p.to_dict() for p in self.parts],
            "sample": self.sample.to_dict() if self.sample and samples else None,
        }


@dataclass
class BackupResult:
    name: str
    source: str
    kind: str
    rows: int | None
    checksum: str | None = None
    skipped: str | None = None
    verified: bool = False
    why: str = ""
    statement: int | None = None
    table: str = ""  # the name as SQL (quoted), for the bot's own statements

    def to_dict(self) -> dict:
        return dict(self.__dict__)


@dataclass
class RunResult:
    statements: list[StatementResult] = field(default_factory=list)
    backups: list[BackupResult] = field(default_factory=list)
    verification: Rows | None = None
    committed: bool = False

    def counts(self) -> list:
        """What the approval is bound to besides the text: every statement's row counts
        and every backup's size. The real run must find the same."""
        return [
            [s.index, s.rowcount, [[p.label, p.rows] for p in s.parts]] for s in self.statements
        ] + [[b.name, b.rows] for b in self.backups]

    def to_dict(self, *, samples: bool = True) -> dict:
        """``samples=False``: counts only, for the channel and the audit log (sample rows
        and the verification result go to the requester alone)."""
        verification = self.verification.to_dict() if self.verification else None
        if verification and not samples:
            verification = {"total": verification["total"]}
        return {
            "statements": [s.to_dict(samples=samples) for s in self.statements],
            "backups": [b.to_dict() for b in self.backups],
            "verification": verification,
            "committed": self.committed,
        }


# --- entry points --------------------------------------------------------------------------


def dry_run(conn: psycopg.Connection, manual: ManualSql, limits: Limits) -> RunResult:
    """Everything the real run does, then ROLLBACK: the database is left as it was."""
    try:
        return _run(conn, manual, limits)
    finally:
        _rollback_quietly(conn)


def verify_after_commit(conn: psycopg.Connection, manual: ManualSql, limits: Limits) -> Rows | None:
    """The verification query again, after COMMIT, guarded like everything typed: one
    statement, extended protocol, in a READ ONLY transaction that is rolled back."""
    if manual.verification_statement is None:
        return None
    tx = GuardedTransaction(conn, limits, read_only=True)
    run = _Run(tx, manual, set())
    try:
        tx.begin()
        run.check_functions()
        run.verification(manual.verification_statement)
    except psycopg.Error as error:
        raise _database_error(error) from None
    finally:
        _rollback_quietly(conn)
    return run.result.verification


Decide = Callable[[RunResult], str]


def apply(
    conn: psycopg.Connection,
    manual: ManualSql,
    limits: Limits,
    decide: Decide,
    approved_counts: list | None = None,
) -> RunResult:
    """The real run, held open while ``decide(result)`` returns "commit" or anything else
    (roll back). Counts other than ``approved_counts`` roll back and raise CountsChanged.
    Any error rolls back; a lost connection commits nothing."""
    try:
        result = _run(conn, manual, limits)
        if approved_counts is not None and result.counts() != approved_counts:
            raise CountsChanged(approved_counts, result)
        choice = decide(result)
    except BaseException:
        _rollback_quietly(conn)
        raise
    if choice != "commit":
        _rollback_quietly(conn)
        return result
    _commit(conn)
    result.committed = True
    return result


# --- the run -------------------------------------------------------------------------------


def _run(conn: psycopg.Connection, manual: ManualSql, limits: Limits) -> RunResult:
    locks = _whole_table_locks(conn, manual)
    tx = GuardedTransaction(conn, limits)
    run = _Run(tx, manual, {t.sql() for t in locks})
    try:
        tx.begin(locks)
        run.check_functions()
        for item in manual.statements:
            run.statement(item)
        if manual.verification_statement is not None:
            run.verification(manual.verification_statement)
        run.verify_backups()
    except (psycopg.Error, UserError) as error:
        if tx.over_budget:  # whatever failed was cancelled for it, or never sent
            raise _over_budget(limits) from None
        if isinstance(error, psycopg.Error):
            raise _database_error(error) from None
        raise
    finally:
        tx.stop_watchdog()
    return run.result


def _whole_table_locks(conn: psycopg.Connection, manual: ManualSql) -> list[QualifiedName]:
    """The existing tables whose whole content a statement destroys, resolved, with what
    TRUNCATE ... CASCADE also empties; read in a transaction of their own, rolled back, so
    the locks can be taken before the snapshot."""
    found: list[QualifiedName] = []
    try:
        for item in manual.statements:
            tables = [t for name in item.lock if (t := dependents.table(conn, name))]
            found += [t.name for t in tables]
            if item.truncate_cascade:
                found += dependents.truncate_closure(conn, [t.name for t in tables])
    except psycopg.Error as error:
        raise _database_error(error) from None
    finally:
        _rollback_quietly(conn)
    return list(dict.fromkeys(found))


class _Run:
    def __init__(self, tx: GuardedTransaction, manual: ManualSql, locked: set[str]):
        self.tx = tx
        self.manual = manual
        self.locked = locked
        self.names: BackupNames = manual.backup_names()
        self.result = RunResult()
        self.expected: dict[str, tuple[Backup, Measured]] = {}
        conn = tx.conn
        self.catalog = Catalog(
            lambda name: dependents.table(conn, name),
            lambda name: dependents.referencing(conn, name),
        )

    def check_functions(self) -> None:
        calls = Calls()
        items = [*self.manual.statements]
        if self.manual.verification_statement is not None:
            items.append(self.manual.verification_statement)
        for item in items:
            calls.update(item.calls)
        refusals = check_calls(self.tx.conn, calls)
        if refusals:
            field_name = "sql"
            raise ManualSqlError(
                field_name,
                "Not run:\n" + "\n".join(f"• {r.text()}" for r in refusals),
                "Nothing was run.",
            )

    def statement(self, item: AnalysedStatement) -> None:
        s = item.statement
        try:
            if item.captured:
                self._captured(item)
            else:
                self._as_typed(item)
        except psycopg.Error as error:
            # A statement run as typed has the requester's positions; a rewrite has not.
            raise _statement_error(error, s, None if item.captured else 0) from None

    def _as_typed(self, item: AnalysedStatement) -> None:
        s = item.statement
        for backup in item.backups:
            self._copy(backup, s.index)
        if item.truncate_cascade:
            for backup in self._truncate_dependents(item):
                self._copy(backup, s.index)
        cur = self.tx.run(s.text)
        rowcount = cur.rowcount if cur.rowcount >= 0 else None
        self.result.statements.append(
            StatementResult(s.index, s.line, s.text, str(item.effect), rowcount)
        )

    def _truncate_dependents(self, item: AnalysedStatement) -> list[Backup]:
        conn = self.tx.conn
        tables = [t.name for name in item.lock if (t := dependents.table(conn, name))]
        closure = dependents.truncate_closure(conn, tables)
        unlocked = [t for t in closure if t.sql() not in self.locked]
        if unlocked:
            raise SqlRunError(
                f"Statement {item.statement.index + 1}: TRUNCATE ... CASCADE would also empty "
                + ", ".join(t.display() for t in unlocked)
                + ", which refer to it only through a foreign key this script adds; the bot"
                " could not lock them before it started. The transaction was rolled back;"
                " nothing was changed.",
                "Split the script: add the foreign key in one operation, truncate in another.",
            )
        why = "TRUNCATE ... CASCADE"
        return [Backup("table", t, self.names(t), why=why) for t in closure]

    def _copy(self, backup: Backup, index: int) -> None:
        """A whole-table or column backup, taken just before the statement: the table is
        locked since the transaction began, so this is exactly what it destroys."""
        result = BackupResult(
            backup.name.display(),
            backup.source.display(),
            backup.kind,
            None,
            statement=index,
            table=backup.name.sql(),
        )
        self.result.backups.append(result)
        table = dependents.table(self.tx.conn, backup.source)
        if table is None:
            # Nothing to copy: with IF EXISTS the statement does nothing, without it the
            # statement itself fails next, with PostgreSQL's message and position.
            result.skipped = f"{backup.source.display()} does not exist"
            return
        if backup.kind == "columns":
            present = [c for c in backup.columns if c in table.columns]
            if not present and backup.missing_ok:
                result.skipped = "the column does not exist"
                return
        select = copy_select(backup, table.primary_key)
        expected = measure(self.tx, f"({select})")
        self.tx.bot(f"CREATE TABLE {backup.name.sql()} AS {select}")
        self.expected[result.name] = (backup, expected)
        result.rows, result.checksum = expected.rows, expected.checksum

    def _captured(self, item: AnalysedStatement, *, rows: int = SAMPLE_ROWS) -> Capture:
        s = item.statement
        self._check_typed(s)
        plan = capture(s.node, dict(item.rows_backups), self.names, self.catalog, sample_rows=rows)
        if plan.refusals:
            raise ManualSqlError(
                "sql",
                f"Statement {s.index + 1} (line {s.line}) is not run: "
                + " ".join(r.text() for r in plan.refusals),
                "Nothing was run.",
            )
        for create in plan.create:
            self.tx.bot(create)
        row = self.tx.run(plan.sql).fetchone()
        measures = dict(zip(plan.keys, row, strict=True))
        self._refuse_dependents(s, plan, measures)
        self._check_same(s, plan, measures)
        self._check_after(s, plan, measures)
        for bp in plan.backups:
            expected = Measured(measures[bp.count_key], measures[bp.checksum_key])
            self.expected[bp.backup.name.display()] = (bp.backup, expected)
            self.result.backups.append(
                BackupResult(
                    bp.backup.name.display(),
                    bp.backup.source.display(),
                    bp.backup.kind,
                    expected.rows,
                    expected.checksum,
                    why=bp.backup.why,
                    statement=s.index,
                    table=bp.backup.name.sql(),
                )
            )
        parts = [
            PartResult(
                p.label,
                p.verb,
                measures[p.count_key],
                p.backup.name.display() if p.backup else None,
                list(p.triggers),
            )
            for p in plan.parts
        ]
        self.result.statements.append(
            StatementResult(
                s.index,
                s.line,
                s.text,
                str(item.effect),
                parts[-1].rows if parts else None,
                parts,
                _sample(measures["sample"], parts[-1].rows if parts else 0),
            )
        )
        return plan

    def _check_typed(self, s: Statement) -> None:
        """The statement exactly as typed, parsed and analysed by the server (PREPARE
        plans nothing and runs nothing): its errors point into the requester's text."""
        prefix = f"PREPARE {_CHECK} AS "
        try:
            self.tx.run(prefix + s.text)
        except psycopg.Error as error:
            raise _statement_error(error, s, len(prefix)) from None
        self.tx.bot(f"DEALLOCATE {_CHECK}")

    def _refuse_dependents(self, s: Statement, plan: Capture, measures: dict) -> None:
        found = [(what, measures[key]) for what, key in plan.refused if measures[key]]
        if found:
            raise ManualSqlError(
                "sql",
                f"Statement {s.index + 1} (line {s.line}) is not run: it would also change"
                " rows of other tables through foreign keys, which the bot cannot back up"
                " exactly:\n"
                + "\n".join(f"• {what}: {plural(count, 'row')}" for what, count in found),
                "Change those rows first with their own statements (backed up), or"
                " use a reverse migration (option 2). The transaction was rolled back.",
            )

    def _check_same(self, s: Statement, plan: Capture, measures: dict) -> None:
        for left, right, what in plan.same:
            if measures[left] != measures[right]:
                raise BackupMismatch(
                    f"Statement {s.index + 1}: {what} differ ({measures[left]} vs"
                    f" {measures[right]}), so its backup would not be exact. The transaction"
                    " was rolled back; nothing was changed.",
                    "A trigger or a rule may skip or add rows; check the table.",
                )

    def _check_after(self, s: Statement, plan: Capture, measures: dict) -> None:
        for check in plan.after:
            found = self.tx.bot(check.sql).fetchone()[0]
            base = measures[check.base] if check.base else 0
            expected = base - (measures[check.minus] if check.minus else 0)
            if found != expected:
                raise BackupMismatch(
                    f"Statement {s.index + 1}: {check.what}: {found}, expected {expected};"
                    " the backups would not be exact. The transaction was rolled back;"
                    " nothing was changed.",
                    "A trigger may change that table too; check it.",
                )

    def verification(self, item: AnalysedStatement) -> None:
        with self.tx.savepoint():
            try:
                self._check_typed(item.statement)
                plan = capture(
                    item.statement.node,
                    {},
                    self.names,
                    self.catalog,
                    sample_rows=VERIFICATION_ROWS,
                )
                row = self.tx.run(plan.sql).fetchone()
            except psycopg.Error as error:
                raise SqlRunError(
                    f"The verification query failed: {_message(error)}. The transaction was"
                    " rolled back; nothing was changed.",
                    _hint(error),
                ) from None
            measures = dict(zip(plan.keys, row, strict=True))
            total = measures[plan.parts[-1].count_key]
            self.result.verification = _sample(measures["sample"], total)

    def verify_backups(self) -> None:
        for result in self.result.backups:
            if result.skipped:
                continue
            backup, expected = self.expected[result.name]
            verify(self.tx, backup, expected)
            result.verified = True
            if backup.kind == "dependents" and expected.rows == 0:
                # A foreign key that changed nothing leaves no empty table behind.
                self.tx.bot(f"DROP TABLE {backup.name.sql()}")
                result.skipped = "no rows changed: not kept"


def _sample(raw: str | None, total: int) -> Rows:
    """Sample rows from json_agg's text; pairs keep duplicate column names."""
    rows = json.loads(raw, object_pairs_hook=list) if raw else []
    columns = [name for name, _ in rows[0]] if rows else []
    return Rows(columns, [[_cell(v) for _, v in row] for row in rows], total)


def _cell(value) -> str:
    if value is None:
        text = "NULL"
    elif isinstance(value, str):
        text = value
    elif isinstance(value, bool):
        text = "true" if value else "false"
    elif isinstance(value, list):
        text = json.dumps(value if not value or not isinstance(value[0], tuple) else dict(value))
    else:
        text = str(value)
    return text if len(text) <= CELL_MAX else text[: CELL_MAX - 1] + "…"


# --- ending --------------------------------------------------------------------------------


def _commit(conn: psycopg.Connection) -> None:
    # A round trip first: if the server already ended the session (terminated, crashed,
    # idle timeout) this fails before COMMIT is sent, and PostgreSQL rolled the
    # transaction back when the session ended, so nothing was committed.
    try:
        conn.execute("SELECT 1")
    except psycopg.Error as error:
        raise SqlRunError(
            f"The connection to the database was lost before COMMIT ({_message(error)})."
            " PostgreSQL rolls back the transaction of a session that ends, so nothing was"
            " committed and the backups were not kept.",
            "Check the database, then start again.",
        ) from None
    try:
        conn.commit()
    except psycopg.OperationalError as error:
        raise SqlRunError(
            f"The connection was lost during COMMIT ({_message(error)}); whether it was"
            " committed is unknown.",
            "Run the verification query by hand to see which state the database is in.",
        ) from None


def _rollback_quietly(conn: psycopg.Connection) -> None:
    if conn.closed:
        return  # a closed session was rolled back by the server
    with contextlib.suppress(psycopg.OperationalError):  # gone, and so is its transaction
        conn.rollback()


# --- errors --------------------------------------------------------------------------------


def _statement_error(error: psycopg.Error, s: Statement, offset: int | None = None) -> SqlRunError:
    """``offset``: characters the bot put before the statement's text; None: the error is
    about the bot's rewrite of it, whose positions mean nothing to the requester."""
    where = f"Statement {s.index + 1} (line {s.line})"
    position = _position(error)
    if position is not None and offset is not None and 0 <= position - offset < len(s.text):
        position -= offset
        line = s.line + s.text.count("\n", 0, position)
        column = position - (s.text.rfind("\n", 0, position) + 1) + 1
        where += f", at line {line}, column {column}"
    return SqlRunError(
        f"{where} failed: {_message(error)}. The transaction was rolled back; nothing was changed.",
        _hint(error),
    )


def _over_budget(limits: Limits) -> SqlRunError:
    # Only the dry run has a budget (bot/runbooks/sql.py, [sql] dry_run_total_timeout).
    return SqlRunError(
        f"The dry run took longer than {limits.total_seconds:g} s in total"
        " ([sql] dry_run_total_timeout); it was stopped and rolled back: nothing was changed.",
        "Until it ends, a dry run holds the locks its statements take, before anyone"
        " approved. Split the SQL into smaller operations or make its statements cheaper"
        " (fewer rows read, an index); or ask whoever runs the bot for a larger budget.",
    )


def _database_error(error: psycopg.Error) -> SqlRunError:
    return SqlRunError(
        f"The database refused: {_message(error)}. The transaction was rolled back; nothing"
        " was changed.",
        _hint(error),
    )


def _hint(error: psycopg.Error) -> str:
    if error.sqlstate == "55P03":  # lock_not_available
        return (
            "Another session holds a lock on a table this needs (lock_timeout expired)."
            " Find it in pg_stat_activity / pg_locks, or retry when traffic is lower."
        )
    if error.sqlstate == "57014":  # query_canceled
        return "It ran longer than statement_timeout; make it cheaper or split it."
    if error.sqlstate == "40001":  # serialization_failure
        return (
            "Another session changed rows this SQL changes while it ran, so its backup"
            " could not be exact. Start again."
        )
    if error.sqlstate == "42P07":  # duplicate_table
        return "A table of that name exists; start again (backup names carry the time)."
    if error.sqlstate == "42601" and "multiple commands" in str(error):
        return "Each statement is sent on its own; this one holds more than one command."
    if isinstance(error, psycopg.OperationalError):
        return "The connection was lost; PostgreSQL rolled the transaction back."
    return "Fix the SQL and start again."


def _position(error: psycopg.Error) -> int | None:
    """PostgreSQL's statement_position, 1-based in characters, as a 0-based offset."""
    raw = getattr(error.diag, "statement_position", None)
    return int(raw) - 1 if raw else None


def _message(error: psycopg.Error) -> str:
    primary = getattr(error.diag, "message_primary", None)
    lines = str(error).strip().splitlines()
    text = primary or (lines[0] if lines else type(error).__name__)
    detail = getattr(error.diag, "message_detail", None)
    return f"{text} ({detail})" if detail else text
