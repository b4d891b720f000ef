"""Runbook option 4, manual SQL: what the submitted SQL does, statement by statement.

The runbook's psql session (BEGIN; statements; a verification SELECT; COMMIT or ROLLBACK)
is what the bot does, with the bot owning the transaction. This module reads the SQL with
PostgreSQL's own parser (pglast): only the statement kinds in bot/sql/allowlist.py are
accepted, each is classed (destructive, changes data, changes schema, reads), and each thing
it destroys gets a ``<table>_backup_<UTC timestamp>`` table (the runbook's "Safe Column
Removal"). Running it is bot/sql/manual_run.py. No database and no Slack in here.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from enum import StrEnum

from pglast import ast, enums
from pglast.parser import ParseError

from bot.errors import UserError
from bot.sql.allowlist import (
    WHAT_RUNS,
    Calls,
    DataChange,
    Refusal,
    data_changes,
    nested_refusals,
    statement_calls,
    statement_refusal,
)
from bot.sql.backups import Backup, BackupNames
from bot.sql.capture import round_trips
from bot.sql.names import QualifiedName, from_name_list, from_range_var
from bot.sql.parse import parse_sql
from bot.sql.statements import Statement, split_statements
from bot.sql.volatility import builtin_refusals

# Slack's plain_text_input max_length (docs/reference/slack-platform.md).
SQL_MAX_CHARS = 3000


class Effect(StrEnum):
    DESTRUCTIVE = "destructive"
    CHANGES_DATA = "changes data"
    CHANGES_SCHEMA = "changes schema"
    READS = "reads"


class ManualSqlError(UserError):
    """Submitted SQL the bot will not run; ``field`` is "sql" or "verification"."""

    def __init__(self, field_name: str, message: str, hint: str | None = None):
        super().__init__(message, hint, code="manual_sql")
        self.field = field_name


@dataclass(frozen=True)
class AnalysedStatement:
    statement: Statement
    effect: Effect
    why: str
    # Whole-table and column backups, taken just before the statement.
    backups: tuple[Backup, ...] = ()
    # The statement's data-modifying parts (itself and its WITH queries) and the backup of
    # each UPDATE/DELETE part, by the part's index; taken by the statement itself.
    parts: tuple[DataChange, ...] = ()
    rows_backups: tuple[tuple[int, Backup], ...] = ()
    # Run rewritten so it captures what it destroys (SELECT/INSERT/UPDATE/DELETE); other
    # statements run as typed.
    captured: bool = False
    # Tables whose whole content it destroys: locked before the snapshot is taken, so the
    # backup holds rows other sessions commit meanwhile too.
    lock: tuple[QualifiedName, ...] = ()
    truncate_cascade: bool = False

    @property
    def all_backups(self) -> tuple[Backup, ...]:
        return self.backups + tuple(b for _, b in self.rows_backups)

    @property
    def destructive(self) -> bool:
        return self.effect == Effect.DESTRUCTIVE

    @property
    def writes_data(self) -> bool:
        return self.effect in (Effect.DESTRUCTIVE, Effect.CHANGES_DATA)

    @property
    def calls(self) -> Calls:
        return statement_calls(self.statement.node)


@dataclass(frozen=True)
class ManualSql:
    sql: str
    statements: tuple[AnalysedStatement, ...]
    verification: str | None
    stamp: str
    verification_statement: AnalysedStatement | None = None

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.sql.encode("utf-8")).hexdigest()

    @property
    def backups(self) -> tuple[Backup, ...]:
        """The backups known before running (foreign-key dependents are found when the
        statement runs, against the live catalog)."""
        return tuple(b for s in self.statements for b in s.all_backups)

    @property
    def destructive(self) -> bool:
        return any(s.writes_data for s in self.statements)

    def backup_names(self) -> BackupNames:
        """The namer for backups found while running, with the planned names taken."""
        names = BackupNames(self.stamp)
        names.taken |= {(b.name.schema, b.name.name) for b in self.backups}
        return names


def analyse(sql: str, verification: str | None = None, *, stamp: str) -> ManualSql:
    """The statements of ``sql`` with their effect and backups; ``stamp`` (UTC, e.g.
    20251208_120000) names the backup tables. Anything the bot will not run raises a
    ManualSqlError that names each statement at fault and says why and what to do."""
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
    refusals = [f"{_where(s)}: {r.text()}" for s in statements for r in refusals_of(s)]
    if refusals:
        raise ManualSqlError(
            "sql", "Not run:\n" + "\n".join(refusals), WHAT_RUNS + " Nothing was run."
        )
    names = BackupNames(stamp)
    analysed = tuple(_analyse(s, names) for s in statements)
    checked = _verification(verification)
    return ManualSql(
        sql,
        analysed,
        checked.statement.text if checked else None,
        stamp,
        checked,
    )


def refusals_of(s: Statement) -> list[Refusal]:
    """Why the bot will not run this statement, read from the text alone."""
    first = statement_refusal(s.node, s.text)
    if first is not None:
        return [first]
    found = nested_refusals(s.node) + builtin_refusals(statement_calls(s.node))
    if _captured(s.node) and not round_trips(s.node):
        found.append(
            Refusal(
                "the bot cannot print this statement back exactly, so it cannot run it the"
                " way it analysed it",
                "write it more simply, or use a reverse migration (option 2)",
            )
        )
    return found


def _parse(field_name: str, sql: str) -> tuple[Statement, ...]:
    try:
        parse_sql(sql)
    except ParseError as error:
        message = error.args[0] if error.args else str(error)
        position = error.args[1] if len(error.args) > 1 else None
        what = "SQL" if field_name == "sql" else "verification query"
        raise ManualSqlError(
            field_name, f"The {what} does not parse: {message}{at(sql, position)}."
        ) from None
    return split_statements(sql)


def at(sql: str, offset: int | None) -> str:
    """' at line L, column C' for a 0-based character offset into sql."""
    if not isinstance(offset, int) or offset < 0:
        return ""
    line = sql.count("\n", 0, offset) + 1
    column = offset - (sql.rfind("\n", 0, offset) + 1) + 1
    return f" at line {line}, column {column}"


def _where(s: Statement) -> str:
    first = " ".join(s.text.split())[:40]
    return f"statement {s.index + 1} (line {s.line}, `{first}`)"


def _verification(text: str | None) -> AnalysedStatement | None:
    text = (text or "").strip()
    if not text:
        return None
    statements = _parse("verification", text)
    if len(statements) != 1:
        raise ManualSqlError(
            "verification",
            f"The verification query must be one SELECT; it has {len(statements)} statements.",
        )
    (statement,) = statements
    node = statement.node
    if not isinstance(node, ast.SelectStmt) or data_changes(node):
        raise ManualSqlError(
            "verification",
            "The verification query must be a read-only SELECT (no INSERT, UPDATE, DELETE,"
            " DDL or SELECT INTO).",
            "For example: SELECT * FROM affected_table LIMIT 10",
        )
    refusals = refusals_of(statement)
    if refusals:
        raise ManualSqlError(
            "verification",
            "The verification query is not run: " + " ".join(r.text() for r in refusals),
        )
    return AnalysedStatement(statement, Effect.READS, "SELECT reads", captured=True)


def _captured(node: ast.Node) -> bool:
    return isinstance(node, ast.SelectStmt | ast.InsertStmt | ast.UpdateStmt | ast.DeleteStmt)


# --- classing ------------------------------------------------------------------------------


def _analyse(s: Statement, names: BackupNames) -> AnalysedStatement:
    node = s.node
    if _captured(node):
        return _data(s, names)
    if isinstance(node, ast.DropStmt):
        return _drop(s, node, names)
    if isinstance(node, ast.TruncateStmt):
        tables = tuple(from_range_var(r) for r in node.relations)
        backups = tuple(Backup("table", t, names(t)) for t in tables)
        cascade = node.behavior == enums.DropBehavior.DROP_CASCADE
        why = "TRUNCATE removes every row"
        if cascade:
            why += "; CASCADE also empties the tables that refer to these (backed up too)"
        return AnalysedStatement(
            s, Effect.DESTRUCTIVE, why, backups, lock=tables, truncate_cascade=cascade
        )
    if isinstance(node, ast.AlterTableStmt):
        return _alter_table(s, node, names)
    return AnalysedStatement(s, Effect.CHANGES_SCHEMA, "changes the schema")


def _data(s: Statement, names: BackupNames) -> AnalysedStatement:
    parts = data_changes(s.node)
    if not parts:
        return AnalysedStatement(s, Effect.READS, "SELECT reads", captured=True)
    rows = tuple(
        (i, Backup("rows", p.table, names(p.table)))
        for i, p in enumerate(parts)
        if p.verb != "INSERT"
    )
    every = [p for p in parts if p.verb != "INSERT" and _every_row(p.node)]
    effect = Effect.DESTRUCTIVE if every else Effect.CHANGES_DATA
    why = "; ".join(_part_why(p, p in every) for p in parts)
    return AnalysedStatement(s, effect, why, parts=parts, rows_backups=rows, captured=True)


def _every_row(node: ast.UpdateStmt | ast.DeleteStmt) -> bool:
    others = node.usingClause if isinstance(node, ast.DeleteStmt) else node.fromClause
    return node.whereClause is None and not others


def _part_why(part: DataChange, every: bool) -> str:
    if part.verb == "INSERT":
        return f"{part.label()} adds rows"
    if every:
        return f"{part.label()} without WHERE changes every row"
    return f"{part.label()} changes the rows its WHERE selects"


def _drop(s: Statement, node: ast.DropStmt, names: BackupNames) -> AnalysedStatement:
    kind = node.removeType
    what = kind.name.removeprefix("OBJECT_").replace("_", " ")
    if kind not in (enums.ObjectType.OBJECT_TABLE, enums.ObjectType.OBJECT_MATVIEW):
        return AnalysedStatement(s, Effect.DESTRUCTIVE, f"DROP {what} removes it (no rows)")
    tables = tuple(from_name_list(o) for o in node.objects)
    backups = tuple(Backup("table", t, names(t), missing_ok=node.missing_ok) for t in tables)
    why = f"DROP {what} removes it with its rows"
    if node.behavior == enums.DropBehavior.DROP_CASCADE:
        why += "; CASCADE also drops the views and foreign keys that depend on it"
    return AnalysedStatement(s, Effect.DESTRUCTIVE, why, backups, lock=tables)


def _alter_table(s: Statement, node: ast.AlterTableStmt, names: BackupNames) -> AnalysedStatement:
    table = from_range_var(node.relation)
    dropped = [c for c in node.cmds if c.subtype == enums.AlterTableType.AT_DropColumn]
    retyped = [c for c in node.cmds if c.subtype == enums.AlterTableType.AT_AlterColumnType]
    constraints = [c for c in node.cmds if c.subtype == enums.AlterTableType.AT_DropConstraint]
    columns = tuple(dict.fromkeys(c.name for c in (*dropped, *retyped)))
    backups: tuple[Backup, ...] = ()
    if columns:
        missing_ok = node.missing_ok or any(c.missing_ok for c in dropped)
        backups = (Backup("columns", table, names(table), columns, missing_ok),)
    lock = (table,) if columns else ()
    if dropped or constraints:
        parts = [f"DROP COLUMN {c.name}" for c in dropped]
        parts += [f"DROP CONSTRAINT {c.name}" for c in constraints]
        why = "ALTER TABLE " + ", ".join(parts)
        return AnalysedStatement(s, Effect.DESTRUCTIVE, why, backups, lock=lock)
    if retyped:
        why = "ALTER COLUMN TYPE converts the stored values"
        return AnalysedStatement(s, Effect.CHANGES_DATA, why, backups, lock=lock)
    return AnalysedStatement(s, Effect.CHANGES_SCHEMA, "ALTER TABLE changes the schema")
