"""Runbook option 4, manual SQL: what the submitted SQL does, a dry run, backups, and one
transaction that commits only on the requester's word.

The runbook's psql session (BEGIN; statements; a verification SELECT; COMMIT or ROLLBACK)
is what this module does, with the bot owning the transaction: the SQL is read with
PostgreSQL's own parser (pglast), statements that end or cannot run inside a transaction
are refused, and everything a destructive statement destroys is first copied into a
``<table>_backup_<UTC timestamp>`` table in the same transaction (the runbook's "Safe
Column Removal"). No Slack in here.
"""

from __future__ import annotations

import contextlib
import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field

import psycopg
from pglast import ast, enums, parse_sql
from pglast.parser import ParseError
from pglast.stream import RawStream

from bot.errors import UserError
from bot.sql.names import QualifiedName, from_name_list, from_range_var, quote_identifier
from bot.sql.statements import Statement, split_statements

# Slack's plain_text_input max_length (docs/reference/slack-platform.md).
SQL_MAX_CHARS = 3000
SAMPLE_ROWS = 5
VERIFICATION_ROWS = 10
CELL_MAX = 80
# PostgreSQL truncates identifiers to NAMEDATALEN - 1 = 63 bytes (it would silently shorten
# a longer backup name, so the bot shortens it itself and shows the real name).
IDENTIFIER_MAX_BYTES = 63
# The bot's own names inside the user's transaction; unlikely to clash with theirs.
_AFFECTED = "rollback_bot_affected"
_SAVEPOINT = "rollback_bot_verification"

# Settings the bot sets with SET LOCAL; the SQL may not change them under it.
_BOT_SETTINGS = {
    "lock_timeout",
    "statement_timeout",
    "idle_in_transaction_session_timeout",
    "transaction_timeout",
    "default_transaction_read_only",
    "transaction_read_only",
}


class ManualSqlError(UserError):
    """Submitted SQL the bot will not run; ``field`` is "sql" or "verification"."""

    def __init__(self, field_name: str, message: str, hint: str | None = None):
        super().__init__(message, hint, code="manual_sql")
        self.field = field_name


class SqlRunError(UserError):
    """PostgreSQL refused something; the transaction was rolled back."""


# --- analysis -------------------------------------------------------------------------


@dataclass(frozen=True)
class Backup:
    """A copy, made in the same transaction just before the statement, of what it destroys."""

    kind: str  # "table" (the whole table), "rows" (the rows the WHERE matches), "columns"
    source: QualifiedName
    name: QualifiedName  # the backup table
    select: str = ""  # the SELECT copied, for "table" and "rows"
    columns: tuple[str, ...] = ()  # for "columns": copied with the primary key
    # IF EXISTS in the statement: a missing table or column is skipped, not an error.
    missing_ok: bool = False

    def describe(self) -> str:
        what = {
            "table": "every row",
            "rows": "the rows it changes",
            "columns": "primary key + " + ", ".join(self.columns),
        }[self.kind]
        return f"{self.name.display()} ({what} of {self.source.display()})"


@dataclass(frozen=True)
class AnalysedStatement:
    statement: Statement
    effect: str  # "destructive", "changes data", "changes schema", "reads"
    why: str
    backups: tuple[Backup, ...] = ()
    # The statement with RETURNING (and a capped sample) for the dry run; None: no rows.
    sample_sql: str | None = None
    sample_offset: int = 0  # characters the dry run put before the statement's text

    @property
    def destructive(self) -> bool:
        return self.effect == "destructive"

    @property
    def writes_data(self) -> bool:
        return self.effect in ("destructive", "changes data")


@dataclass(frozen=True)
class ManualSql:
    sql: str
    statements: tuple[AnalysedStatement, ...]
    verification: str | None

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.sql.encode("utf-8")).hexdigest()

    @property
    def backups(self) -> tuple[Backup, ...]:
        return tuple(b for s in self.statements for b in s.backups)

    @property
    def destructive(self) -> bool:
        return any(s.writes_data for s in self.statements)


def analyse(sql: str, verification: str | None = None, *, stamp: str) -> ManualSql:
    """The statements of ``sql`` with their effect and backups; ``stamp`` (UTC, e.g.
    20251208_120000) names the backup tables. Anything the bot will not run raises a
    ManualSqlError that names the statement and says why."""
    sql = sql or ""
    if len(sql) > SQL_MAX_CHARS:
        raise ManualSqlError(
            "sql",
            f"The SQL is {len(sql)} characters; Slack's limit is {SQL_MAX_CHARS}.",
            "Split it into several operations, or use a reverse migration (option 2).",
        )
    statements = _parse("sql", sql)
    if not statements:
        raise ManualSqlError("sql", "There is no SQL statement (only blanks or comments).")
    refusals = [f"{_where(s)}: {why}" for s in statements if (why := refusal(s.node))]
    if refusals:
        raise ManualSqlError(
            "sql",
            "Not run:\n" + "\n".join(refusals),
            "The bot opens the transaction, commits or rolls it back itself.",
        )
    names = _BackupNames(stamp)
    analysed = tuple(_analyse(s, names) for s in statements)
    return ManualSql(sql, analysed, _verification(verification))


def _parse(field_name: str, sql: str) -> tuple[Statement, ...]:
    try:
        parse_sql(sql)
    except ParseError as error:
        message = error.args[0] if error.args else str(error)
        position = error.args[1] if len(error.args) > 1 else None
        what = "SQL" if field_name == "sql" else "verification query"
        raise ManualSqlError(
            field_name, f"The {what} does not parse: {message}{_at(sql, position)}."
        ) from None
    return split_statements(sql)


def _at(sql: str, offset: int | None) -> str:
    """' at line L, column C' for a 0-based character offset into sql."""
    if not isinstance(offset, int) or offset < 0:
        return ""
    line = sql.count("\n", 0, offset) + 1
    column = offset - (sql.rfind("\n", 0, offset) + 1) + 1
    return f" at line {line}, column {column}"


def _where(s: Statement) -> str:
    first = " ".join(s.text.split())[:40]
    return f"statement {s.index + 1} (line {s.line}, `{first}`)"


def _verification(text: str | None) -> str | None:
    text = (text or "").strip()
    if not text:
        return None
    statements = _parse("verification", text)
    if len(statements) != 1:
        raise ManualSqlError(
            "verification",
            f"The verification query must be one SELECT; it has {len(statements)} statements.",
        )
    node = statements[0].node
    if not isinstance(node, ast.SelectStmt) or node.intoClause is not None or _writes_in_with(node):
        raise ManualSqlError(
            "verification",
            "The verification query must be a read-only SELECT (no INSERT, UPDATE, DELETE,"
            " DDL or SELECT INTO).",
            "For example: SELECT * FROM affected_table LIMIT 10",
        )
    return statements[0].text


def _writes_in_with(node: ast.Node) -> bool:
    ctes = node.withClause.ctes if getattr(node, "withClause", None) else ()
    return any(not isinstance(c.ctequery, ast.SelectStmt) for c in ctes or ())


def refusal(node: ast.Node) -> str | None:
    """Why the bot will not run this statement inside its transaction, or None."""
    if isinstance(node, ast.TransactionStmt):
        return (
            "BEGIN/COMMIT/ROLLBACK/SAVEPOINT are not allowed: the bot runs all statements in"
            " one transaction and commits only when you click Commit."
        )
    outside = _needs_own_transaction(node)
    if outside:
        return (
            f"{outside} cannot run inside a transaction block (PostgreSQL refuses it), so it"
            " cannot be dry-run or rolled back. Run it on its own, outside the bot."
        )
    if isinstance(node, ast.VariableSetStmt) and (
        node.name in _BOT_SETTINGS or node.kind == enums.VariableSetKind.VAR_RESET_ALL
    ):
        return (
            f"SET/RESET {node.name or 'ALL'} is not allowed: the bot sets lock_timeout and"
            " statement_timeout for the transaction itself."
        )
    if isinstance(node, ast.CopyStmt) and node.filename is None and not node.is_program:
        return "COPY FROM STDIN / TO STDOUT needs a client stream; use INSERT or SELECT."
    if isinstance(node, ast.DeleteStmt | ast.UpdateStmt) and isinstance(
        node.whereClause, ast.CurrentOfExpr
    ):
        return "WHERE CURRENT OF needs a cursor, which the bot does not open."
    return None


def _needs_own_transaction(node: ast.Node) -> str | None:
    """Statements PostgreSQL runs only outside a transaction block (PreventInTransactionBlock
    in its source)."""
    if isinstance(node, ast.IndexStmt) and node.concurrent:
        return "CREATE INDEX CONCURRENTLY"
    if isinstance(node, ast.DropStmt) and node.concurrent:
        return "DROP INDEX CONCURRENTLY"
    if isinstance(node, ast.ReindexStmt) and any(
        p.defname == "concurrently" for p in node.params or ()
    ):
        return "REINDEX CONCURRENTLY"
    if isinstance(node, ast.ReindexStmt) and node.kind in (
        enums.ReindexObjectType.REINDEX_OBJECT_SYSTEM,
        enums.ReindexObjectType.REINDEX_OBJECT_DATABASE,
    ):
        return "REINDEX SYSTEM/DATABASE"
    if isinstance(node, ast.VacuumStmt) and node.is_vacuumcmd:
        return "VACUUM"
    if isinstance(node, ast.AlterTableStmt) and any(
        isinstance(c.def_, ast.PartitionCmd) and c.def_.concurrent for c in node.cmds or ()
    ):
        return "DETACH PARTITION CONCURRENTLY"
    if isinstance(node, ast.ClusterStmt) and node.relation is None:
        return "CLUSTER without a table"
    simple = {
        ast.CreatedbStmt: "CREATE DATABASE",
        ast.DropdbStmt: "DROP DATABASE",
        ast.AlterSystemStmt: "ALTER SYSTEM",
        ast.CreateTableSpaceStmt: "CREATE TABLESPACE",
        ast.DropTableSpaceStmt: "DROP TABLESPACE",
        ast.DiscardStmt: "DISCARD",
        ast.CreateSubscriptionStmt: "CREATE SUBSCRIPTION",
        ast.DropSubscriptionStmt: "DROP SUBSCRIPTION",
    }
    return next((label for kind, label in simple.items() if isinstance(node, kind)), None)


class _BackupNames:
    """``<table>_backup_<stamp>``, unique within one script, at most 63 bytes."""

    def __init__(self, stamp: str):
        self.stamp = stamp
        self.taken: set[tuple[str | None, str]] = set()

    def __call__(self, source: QualifiedName) -> QualifiedName:
        n = 1
        while True:
            suffix = f"_backup_{self.stamp}" + (f"_{n}" if n > 1 else "")
            base = _truncate_bytes(source.name, IDENTIFIER_MAX_BYTES - len(suffix.encode()))
            name = QualifiedName(source.schema, base + suffix)
            if (name.schema, name.name) not in self.taken:
                self.taken.add((name.schema, name.name))
                return name
            n += 1


def _truncate_bytes(text: str, limit: int) -> str:
    return text.encode("utf-8")[: max(limit, 0)].decode("utf-8", "ignore")


def _analyse(s: Statement, names: _BackupNames) -> AnalysedStatement:
    node = s.node
    if isinstance(node, ast.DeleteStmt | ast.UpdateStmt):
        return _data_change(s, node, names)
    if isinstance(node, ast.DropStmt):
        return _drop(s, node, names)
    if isinstance(node, ast.TruncateStmt):
        tables = [from_range_var(r) for r in node.relations]
        backups = tuple(_whole_table(t, names, f"SELECT * FROM {t.sql()}") for t in tables)
        why = "TRUNCATE removes every row"
        if node.behavior == enums.DropBehavior.DROP_CASCADE:
            why += "; CASCADE also empties tables that reference these, which are not backed up"
        return AnalysedStatement(s, "destructive", why, backups)
    if isinstance(node, ast.AlterTableStmt):
        return _alter_table(s, node, names)
    if isinstance(node, ast.InsertStmt):
        return AnalysedStatement(s, "changes data", "INSERT adds rows", (), *_sampled(s))
    if isinstance(node, ast.MergeStmt):
        return AnalysedStatement(
            s, "destructive", "MERGE may update or delete rows; they are not backed up"
        )
    if isinstance(node, ast.SelectStmt) and node.intoClause is None:
        return AnalysedStatement(s, "reads", "SELECT reads", (), s.text, 0)
    return AnalysedStatement(s, "changes schema", "changes the schema or settings")


def _data_change(
    s: Statement, node: ast.DeleteStmt | ast.UpdateStmt, names: _BackupNames
) -> AnalysedStatement:
    verb = "DELETE" if isinstance(node, ast.DeleteStmt) else "UPDATE"
    table = from_range_var(node.relation)
    others = node.usingClause if isinstance(node, ast.DeleteStmt) else node.fromClause
    backup_sql = _rows_select(node, others)
    if node.whereClause is None and not others:
        backup = Backup("table", table, names(table), backup_sql)
        return AnalysedStatement(
            s, "destructive", f"{verb} without WHERE changes every row", (backup,), *_sampled(s)
        )
    backup = Backup("rows", table, names(table), backup_sql)
    return AnalysedStatement(
        s, "changes data", f"{verb} with WHERE changes the matching rows", (backup,), *_sampled(s)
    )


def _rows_select(node: ast.DeleteStmt | ast.UpdateStmt, others) -> str:
    """SELECT of the rows the statement changes, as they are before it runs."""
    relation = node.relation
    alias = relation.alias.aliasname if relation.alias else relation.relname
    bare = ast.RangeVar(
        schemaname=relation.schemaname,
        relname=relation.relname,
        inh=relation.inh,
        relpersistence="p",
    )
    if not others:
        select = ast.SelectStmt(
            targetList=(_target(alias, ast.A_Star()),),
            fromClause=(relation,),
            whereClause=node.whereClause,
            withClause=node.withClause,
            op=enums.SetOperation.SETOP_NONE,
        )
        return RawStream()(select)
    # With USING/FROM a row can match several times: pick the rows by their physical
    # address (tableoid, ctid), which is unique across an inheritance tree.
    inner = ast.SelectStmt(
        targetList=(_target(alias, ast.String(sval="tableoid")), _target(alias, "ctid")),
        fromClause=(relation, *others),
        whereClause=node.whereClause,
        op=enums.SetOperation.SETOP_NONE,
    )
    outer = parse_sql("SELECT * FROM t WHERE (tableoid, ctid) IN (SELECT 1, 2)")[0].stmt
    outer.fromClause = (bare,)
    outer.whereClause.subselect = inner
    outer.withClause = node.withClause
    return RawStream()(outer)


def _target(alias: str, column) -> ast.ResTarget:
    last = ast.String(sval=column) if isinstance(column, str) else column
    return ast.ResTarget(val=ast.ColumnRef(fields=(ast.String(sval=alias), last)))


def _whole_table(table: QualifiedName, names: _BackupNames, select: str, missing_ok=False):
    return Backup("table", table, names(table), select, missing_ok=missing_ok)


def _drop(s: Statement, node: ast.DropStmt, names: _BackupNames) -> AnalysedStatement:
    kind = node.removeType
    what = kind.name.removeprefix("OBJECT_").replace("_", " ")
    if kind not in (enums.ObjectType.OBJECT_TABLE, enums.ObjectType.OBJECT_MATVIEW):
        return AnalysedStatement(
            s, "destructive", f"DROP {what} removes it; only tables are backed up by the bot"
        )
    tables = [from_name_list(o) for o in node.objects]
    backups = tuple(
        _whole_table(t, names, f"SELECT * FROM {t.sql()}", node.missing_ok) for t in tables
    )
    return AnalysedStatement(s, "destructive", f"DROP {what} removes it with its rows", backups)


def _alter_table(s: Statement, node: ast.AlterTableStmt, names: _BackupNames) -> AnalysedStatement:
    table = from_range_var(node.relation)
    dropped = [c for c in node.cmds if c.subtype == enums.AlterTableType.AT_DropColumn]
    retyped = [c for c in node.cmds if c.subtype == enums.AlterTableType.AT_AlterColumnType]
    constraints = [c for c in node.cmds if c.subtype == enums.AlterTableType.AT_DropConstraint]
    columns = tuple(dict.fromkeys(c.name for c in (*dropped, *retyped)))
    backups = ()
    if columns:
        missing_ok = node.missing_ok or any(c.missing_ok for c in dropped)
        backups = (Backup("columns", table, names(table), "", columns, missing_ok),)
    if dropped or constraints:
        parts = [f"DROP COLUMN {c.name}" for c in dropped]
        parts += [f"DROP CONSTRAINT {c.name}" for c in constraints]
        return AnalysedStatement(s, "destructive", "ALTER TABLE " + ", ".join(parts), backups)
    if retyped:
        return AnalysedStatement(
            s, "changes data", "ALTER COLUMN TYPE converts the stored values", backups
        )
    return AnalysedStatement(s, "changes schema", "ALTER TABLE changes the schema")


def _sampled(s: Statement) -> tuple[str | None, int]:
    """The statement with RETURNING * (when it has none) for the dry run's sample, wrapped
    so the server counts every row but sends only SAMPLE_ROWS. A data-modifying statement
    in WITH runs to completion whatever the outer LIMIT (PostgreSQL docs, 7.8.4)."""
    text = s.text
    if s.node.returningClause is None:
        # A newline first: the statement may end in a -- comment.
        text = f"{text}\nRETURNING *"
        parsed = parse_sql(text)
        if len(parsed) != 1 or getattr(parsed[0].stmt, "returningClause", None) is None:
            return None, 0
    if s.node.withClause is not None:
        return text, 0  # its own WITH may hold data-modifying CTEs, which cannot nest
    prefix = f"WITH {_AFFECTED} AS (\n"
    wrapped = f"{prefix}{text}\n) SELECT *, count(*) OVER () FROM {_AFFECTED} LIMIT {SAMPLE_ROWS}"
    return wrapped, len(prefix)


# --- running ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Timeouts:
    lock_timeout: str
    statement_timeout: str
    # While the transaction waits for the requester: past this PostgreSQL ends the session
    # (and so rolls back) even if the bot itself is stuck.
    idle_seconds: float | None = None


@dataclass
class Rows:
    columns: list[str]
    rows: list[list[str]]
    total: int

    def to_dict(self) -> dict:
        return {"columns": self.columns, "rows": self.rows, "total": self.total}


@dataclass
class StatementResult:
    index: int
    line: int
    sql: str
    effect: str
    rowcount: int | None
    sample: Rows | None = None

    def to_dict(self) -> dict:
        return {
            "index": self.index,
            "line": self.line,
            "sql": self.sql,
            "effect": self.effect,
            "rowcount": self.rowcount,
            "sample": self.sample.to_dict() if self.sample else None,
        }


@dataclass
class BackupResult:
    name: str
    source: str
    rows: int | None
    skipped: str | None = None

    def to_dict(self) -> dict:
        return {
            "name": self.name,
            "source": self.source,
            "rows": self.rows,
            "skipped": self.skipped,
        }


@dataclass
class RunResult:
    statements: list[StatementResult] = field(default_factory=list)
    backups: list[BackupResult] = field(default_factory=list)
    verification: Rows | None = None
    committed: bool = False

    def to_dict(self) -> dict:
        return {
            "statements": [s.to_dict() for s in self.statements],
            "backups": [b.to_dict() for b in self.backups],
            "verification": self.verification.to_dict() if self.verification else None,
            "committed": self.committed,
        }


def dry_run(conn: psycopg.Connection, manual: ManualSql, timeouts: Timeouts) -> RunResult:
    """Backups, statements (with a sample of their rows) and the verification query in one
    transaction, then ROLLBACK: the database is left as it was."""
    try:
        return _in_transaction(conn, manual, timeouts, sample=True)
    finally:
        _rollback_quietly(conn)


Decide = Callable[[RunResult], str]


def apply(
    conn: psycopg.Connection, manual: ManualSql, timeouts: Timeouts, decide: Decide
) -> RunResult:
    """The real run: backups, the exact statements and the verification query in one
    transaction, held open while ``decide(result)`` returns "commit" or anything else (roll
    back). Any error rolls back; a lost connection commits nothing."""
    try:
        result = _in_transaction(conn, manual, timeouts, sample=False)
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


def _in_transaction(
    conn: psycopg.Connection, manual: ManualSql, timeouts: Timeouts, *, sample: bool
) -> RunResult:
    if conn.autocommit:
        raise ValueError("manual SQL needs a connection with autocommit off")
    result = RunResult()
    with conn.cursor() as cur:
        _set_timeouts(cur, timeouts)
        for item in manual.statements:
            for backup in item.backups:
                result.backups.append(_take_backup(cur, backup))
            result.statements.append(_run_statement(cur, item, sample))
        if manual.verification:
            result.verification = _run_verification(cur, manual.verification)
    return result


def _set_timeouts(cur: psycopg.Cursor, timeouts: Timeouts) -> None:
    # set_config(..., true) is SET LOCAL: it ends with the transaction, and takes parameters
    # (SET itself cannot be parameterised).
    settings = [("lock_timeout", timeouts.lock_timeout)]
    settings.append(("statement_timeout", timeouts.statement_timeout))
    if timeouts.idle_seconds:
        idle = f"{int(timeouts.idle_seconds * 1000)}ms"
        settings.append(("idle_in_transaction_session_timeout", idle))
    for name, value in settings:
        cur.execute("SELECT set_config(%s, %s, true)", (name, value))


def _run_statement(cur: psycopg.Cursor, item: AnalysedStatement, sample: bool) -> StatementResult:
    s = item.statement
    result = StatementResult(s.index, s.line, s.text, item.effect, None)
    if sample and item.sample_sql:
        try:
            cur.execute(item.sample_sql.encode())
        except psycopg.Error as error:
            raise _statement_error(error, s, item.sample_offset) from None
        result.sample, result.rowcount = _sample_of(cur, item.sample_offset > 0)
        return result
    try:
        # Sent as bytes: psycopg then sends the text as is, without looking for %s.
        cur.execute(s.text.encode())
    except psycopg.Error as error:
        raise _statement_error(error, s, 0) from None
    result.rowcount = cur.rowcount if cur.rowcount >= 0 else None
    return result


def _sample_of(cur: psycopg.Cursor, counted: bool) -> tuple[Rows, int]:
    columns = [c.name for c in cur.description or ()]
    rows = cur.fetchmany(SAMPLE_ROWS)
    if counted:  # the last column is count(*) OVER (), every row's total
        total = rows[0][-1] if rows else 0
        columns, rows = columns[:-1], [r[:-1] for r in rows]
    else:
        total = cur.rowcount
    return Rows(columns, [_cells(r) for r in rows], total), total


def _cells(row) -> list[str]:
    out = []
    for value in row:
        text = "NULL" if value is None else str(value)
        out.append(text if len(text) <= CELL_MAX else text[: CELL_MAX - 1] + "…")
    return out


def _take_backup(cur: psycopg.Cursor, backup: Backup) -> BackupResult:
    result = BackupResult(backup.name.display(), backup.source.display(), None)
    select = backup.select
    exists = cur.execute("SELECT to_regclass(%s)", (backup.source.sql(),)).fetchone()[0]
    if exists is None:
        # Nothing to copy: with IF EXISTS the statement does nothing, without it the
        # statement itself fails next, with PostgreSQL's message and position.
        result.skipped = f"{backup.source.display()} does not exist"
        return result
    if backup.kind == "columns":
        select, result.skipped = _columns_select(cur, backup)
        if select is None:
            return result
    create = f"CREATE TABLE {backup.name.sql()} AS {select}"
    try:
        cur.execute(create.encode())
    except psycopg.Error as error:
        raise SqlRunError(
            f"The backup {backup.name.display()} of {backup.source.display()} failed:"
            f" {_message(error)}. The transaction was rolled back; nothing was changed.",
            _hint(error),
        ) from None
    result.rows = cur.rowcount
    return result


def _columns_select(cur: psycopg.Cursor, backup: Backup) -> tuple[str | None, str | None]:
    """SELECT <primary key>, <columns> (the runbook's "Safe Column Removal"); a table without
    a primary key is copied whole, since the column alone could not be matched back."""
    existing = {
        row[0]
        for row in cur.execute(
            "SELECT attname FROM pg_attribute WHERE attrelid = to_regclass(%s)"
            " AND attnum > 0 AND NOT attisdropped",
            (backup.source.sql(),),
        )
    }
    columns = [c for c in backup.columns if c in existing]
    if not columns:
        if backup.missing_ok:
            return None, "the column does not exist"
        columns = list(backup.columns)  # let PostgreSQL say what is missing
    key = [
        row[0]
        for row in cur.execute(
            "SELECT a.attname FROM pg_index i JOIN pg_attribute a ON a.attrelid = i.indrelid"
            " AND a.attnum = ANY (i.indkey) WHERE i.indrelid = to_regclass(%s)"
            " AND i.indisprimary ORDER BY array_position(i.indkey, a.attnum)",
            (backup.source.sql(),),
        )
    ]
    if not key:
        return f"SELECT * FROM {backup.source.sql()}", None
    wanted = list(dict.fromkeys([*key, *columns]))
    listed = ", ".join(quote_identifier(c) for c in wanted)
    return f"SELECT {listed} FROM {backup.source.sql()}", None


def _run_verification(cur: psycopg.Cursor, query: str) -> Rows:
    # In a savepoint rolled back at once: a SELECT calling a function that writes cannot
    # change what the requester is about to commit.
    cur.execute(f"SAVEPOINT {_SAVEPOINT}")
    try:
        cur.execute(query.encode())
    except psycopg.Error as error:
        raise SqlRunError(
            f"The verification query failed: {_message(error)}"
            f"{_at(query, _position(error))}. The transaction was rolled back; nothing was"
            " changed.",
        ) from None
    columns = [c.name for c in cur.description or ()]
    rows = cur.fetchmany(VERIFICATION_ROWS)
    total = cur.rowcount
    cur.execute(f"ROLLBACK TO SAVEPOINT {_SAVEPOINT}")
    return Rows(columns, [_cells(r) for r in rows], total)


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


def _statement_error(error: psycopg.Error, s: Statement, offset: int) -> SqlRunError:
    where = f"Statement {s.index + 1} (line {s.line})"
    position = _position(error)
    if position is not None:
        position -= offset
        if 0 <= position < len(s.text):
            line = s.line + s.text.count("\n", 0, position)
            column = position - (s.text.rfind("\n", 0, position) + 1) + 1
            where += f", at line {line}, column {column}"
    return SqlRunError(
        f"{where} failed: {_message(error)}. The transaction was rolled back; nothing was changed.",
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
    if error.sqlstate == "42P07":  # duplicate_table
        return "A table of that name exists; start again (backup names carry the time)."
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
