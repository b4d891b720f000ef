"""Option 4's allow-list: the statements the bot understands well enough to dry-run, back up
and show to an approver, and a clear refusal (what, why, what to do instead) for the rest.

A deny-list misses what its author did not think of (COPY ... TO PROGRAM, DO, lo_export, a
COMMIT smuggled past the parser); here anything not listed is refused. This module reads the
AST only; the function calls it collects are checked against the live catalog in
bot/sql/volatility.py.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

from pglast import ast, enums

from bot.sql.names import QualifiedName, from_range_var

# The bot's own names inside a statement it rewrites (bot/sql/capture.py).
RESERVED_PREFIX = "rollback_bot"

REVERSE_MIGRATION = "use a reverse migration (option 2, `/rollback revert`)"
BY_HAND = "run it by hand under your own credentials; the bot will not"
WHAT_RUNS = (
    "Option 4 runs SELECT, INSERT, UPDATE, DELETE, TRUNCATE and the schema changes a"
    " rollback needs (ALTER TABLE, CREATE/DROP TABLE, INDEX, VIEW, TYPE, RENAME)."
)


@dataclass(frozen=True)
class Refusal:
    """Why the bot will not run something, and what to do instead."""

    why: str
    instead: str

    def text(self) -> str:
        return f"{self.why}. Instead: {self.instead}."


def walk(node) -> Iterator[ast.Node]:
    """Every node of a tree, the root first."""
    if isinstance(node, tuple | list):
        for item in node:
            yield from walk(item)
        return
    if not isinstance(node, ast.Node):
        return
    yield node
    for name in node:
        yield from walk(getattr(node, name))


# --- statement kinds ---------------------------------------------------------------------

_SETTINGS = Refusal(
    "SET/RESET is refused: settings that change how the server reads text or how the session"
    " behaves (standard_conforming_strings, search_path, role, timeouts, ...) stay as the bot"
    " sets them",
    "remove it; write schema-qualified names instead of setting search_path",
)
_CODE = Refusal(
    "it creates code that runs later (functions, procedures, triggers, rules), outside what"
    " the approver reviews",
    "ship it in a reviewed migration: " + REVERSE_MIGRATION,
)
_PRIVILEGES = Refusal(
    "roles, grants and ownership change who may do what in production",
    BY_HAND,
)
_MAINTENANCE = Refusal(
    "maintenance commands are not part of a rollback and hold heavy locks",
    BY_HAND,
)

_REFUSED: dict[type, Refusal] = {
    ast.CopyStmt: Refusal(
        "COPY reads or writes files and programs on the database server (or needs a client stream)",
        "use INSERT ... SELECT or a SELECT; for files, " + BY_HAND,
    ),
    ast.DoStmt: Refusal(
        "DO runs a procedural block the bot cannot analyse",
        "write its statements out as plain SQL, or " + REVERSE_MIGRATION,
    ),
    ast.CallStmt: Refusal(
        "CALL runs a procedure the bot cannot analyse, and a procedure may commit",
        "write its statements out as plain SQL, or " + REVERSE_MIGRATION,
    ),
    ast.CreateFunctionStmt: _CODE,
    ast.CreateTrigStmt: _CODE,
    ast.RuleStmt: _CODE,
    ast.CreateEventTrigStmt: _CODE,
    ast.VariableSetStmt: _SETTINGS,
    ast.VariableShowStmt: Refusal(
        "SHOW is not part of a rollback", "use SELECT current_setting('name')"
    ),
    ast.LockStmt: Refusal(
        "LOCK holds locks the bot does not time; each statement takes the locks it needs,"
        " under the bot's lock_timeout",
        "remove it",
    ),
    ast.ListenStmt: Refusal("LISTEN reaches other sessions", "remove it"),
    ast.UnlistenStmt: Refusal("UNLISTEN reaches other sessions", "remove it"),
    ast.NotifyStmt: Refusal("NOTIFY reaches other sessions", "remove it"),
    ast.CreateExtensionStmt: Refusal(
        "extensions install code into the database server", REVERSE_MIGRATION
    ),
    ast.AlterExtensionStmt: Refusal(
        "extensions install code into the database server", REVERSE_MIGRATION
    ),
    ast.AlterExtensionContentsStmt: Refusal(
        "extensions install code into the database server", REVERSE_MIGRATION
    ),
    ast.ExplainStmt: Refusal(
        "EXPLAIN ANALYZE runs the statement outside what the bot backs up; the dry run"
        " already shows what each statement does",
        "remove it",
    ),
    ast.PrepareStmt: Refusal(
        "PREPARE/EXECUTE run a statement the bot cannot see", "write the statement itself"
    ),
    ast.ExecuteStmt: Refusal(
        "PREPARE/EXECUTE run a statement the bot cannot see", "write the statement itself"
    ),
    ast.DeallocateStmt: Refusal("DEALLOCATE is not part of a rollback", "remove it"),
    ast.DeclareCursorStmt: Refusal("cursors are not part of a rollback", "use a SELECT"),
    ast.FetchStmt: Refusal("cursors are not part of a rollback", "use a SELECT"),
    ast.ClosePortalStmt: Refusal("cursors are not part of a rollback", "use a SELECT"),
    ast.LoadStmt: Refusal("LOAD loads a shared library into the database server", BY_HAND),
    ast.MergeStmt: Refusal(
        "MERGE may insert, update and delete in one statement, which the bot cannot back up"
        " and count one by one",
        "write it as separate INSERT, UPDATE and DELETE statements",
    ),
    ast.CheckPointStmt: _MAINTENANCE,
    ast.ClusterStmt: _MAINTENANCE,
    ast.ReindexStmt: _MAINTENANCE,
    ast.VacuumStmt: _MAINTENANCE,
    ast.RefreshMatViewStmt: _MAINTENANCE,
    ast.DiscardStmt: Refusal("DISCARD resets the session the bot set up", "remove it"),
    ast.CreateRoleStmt: _PRIVILEGES,
    ast.AlterRoleStmt: _PRIVILEGES,
    ast.AlterRoleSetStmt: _PRIVILEGES,
    ast.DropRoleStmt: _PRIVILEGES,
    ast.GrantStmt: _PRIVILEGES,
    ast.GrantRoleStmt: _PRIVILEGES,
    ast.AlterDefaultPrivilegesStmt: _PRIVILEGES,
    ast.ReassignOwnedStmt: _PRIVILEGES,
    ast.DropOwnedStmt: _PRIVILEGES,
    ast.AlterOwnerStmt: _PRIVILEGES,
    ast.CreatePolicyStmt: _PRIVILEGES,
    ast.AlterPolicyStmt: _PRIVILEGES,
    ast.AlterDatabaseSetStmt: _PRIVILEGES,
}

_ALTER_TABLE_ALLOWED = {
    enums.AlterTableType.AT_AddColumn,
    enums.AlterTableType.AT_ColumnDefault,
    enums.AlterTableType.AT_DropNotNull,
    enums.AlterTableType.AT_SetNotNull,
    enums.AlterTableType.AT_DropColumn,
    enums.AlterTableType.AT_AlterColumnType,
    enums.AlterTableType.AT_AddConstraint,
    enums.AlterTableType.AT_AlterConstraint,
    enums.AlterTableType.AT_ValidateConstraint,
    enums.AlterTableType.AT_DropConstraint,
    enums.AlterTableType.AT_AddIdentity,
    enums.AlterTableType.AT_SetIdentity,
    enums.AlterTableType.AT_DropIdentity,
}
_DROP_ALLOWED = {
    enums.ObjectType.OBJECT_TABLE,
    enums.ObjectType.OBJECT_INDEX,
    enums.ObjectType.OBJECT_VIEW,
    enums.ObjectType.OBJECT_MATVIEW,
    enums.ObjectType.OBJECT_TYPE,
}
# CASCADE on these drops views and foreign keys, never another table's rows or columns.
_DROP_CASCADE_ALLOWED = {
    enums.ObjectType.OBJECT_TABLE,
    enums.ObjectType.OBJECT_VIEW,
    enums.ObjectType.OBJECT_MATVIEW,
}
_RENAME_ALLOWED = {
    enums.ObjectType.OBJECT_TABLE,
    enums.ObjectType.OBJECT_COLUMN,
    enums.ObjectType.OBJECT_INDEX,
    enums.ObjectType.OBJECT_TABCONSTRAINT,
    enums.ObjectType.OBJECT_TYPE,
    enums.ObjectType.OBJECT_VIEW,
    enums.ObjectType.OBJECT_MATVIEW,
    enums.ObjectType.OBJECT_ATTRIBUTE,
}
_ACCEPTED = (
    ast.SelectStmt,
    ast.InsertStmt,
    ast.UpdateStmt,
    ast.DeleteStmt,
    ast.CreateStmt,
    ast.ViewStmt,
    ast.TruncateStmt,
    ast.CreateEnumStmt,
    ast.CompositeTypeStmt,
    ast.AlterEnumStmt,
)


def statement_refusal(node: ast.Node, text: str = "") -> Refusal | None:
    """Why the bot will not run this top-level statement, or None if its kind is accepted
    (what is inside it is checked by nested_refusals)."""
    if isinstance(node, ast.TransactionStmt):
        return Refusal(
            "BEGIN/COMMIT/ROLLBACK/SAVEPOINT are not allowed: the bot runs all statements in"
            " one transaction and commits only when you click Commit",
            "remove them",
        )
    outside = _needs_own_transaction(node)
    if outside:
        return Refusal(
            f"{outside} cannot run inside a transaction block (PostgreSQL refuses it), so it"
            " cannot be dry-run or rolled back",
            BY_HAND,
        )
    if type(node) in _REFUSED:
        return _REFUSED[type(node)]
    if isinstance(node, _ACCEPTED):
        return None
    checks = {
        ast.CreateTableAsStmt: _create_table_as,
        ast.IndexStmt: lambda n: None,  # CONCURRENTLY was refused above
        ast.DropStmt: _drop,
        ast.AlterTableStmt: _alter_table,
        ast.RenameStmt: _rename,
    }
    check = checks.get(type(node))
    if check is not None:
        return check(node)
    return _not_listed(_label(text))


def _not_listed(label: str) -> Refusal:
    return Refusal(
        f"{label} is not among the statements the bot runs. {WHAT_RUNS}",
        f"{REVERSE_MIGRATION}, or {BY_HAND}",
    )


def _label(text: str) -> str:
    words = text.split()[:2]
    return " ".join(words).upper() if words else "This statement"


def _create_table_as(node: ast.CreateTableAsStmt) -> Refusal | None:
    if not isinstance(node.query, ast.SelectStmt):
        return _REFUSED[ast.ExecuteStmt]
    return None


def _drop(node: ast.DropStmt) -> Refusal | None:
    kind = node.removeType
    what = kind.name.removeprefix("OBJECT_").replace("_", " ")
    if kind not in _DROP_ALLOWED:
        return _not_listed(f"DROP {what}")
    if node.behavior == enums.DropBehavior.DROP_CASCADE and kind not in _DROP_CASCADE_ALLOWED:
        return Refusal(
            f"DROP {what} ... CASCADE would also drop the columns and constraints that use it,"
            " which the bot cannot back up",
            "drop or change those first, then drop it without CASCADE",
        )
    return None


def _alter_table(node: ast.AlterTableStmt) -> Refusal | None:
    if node.objtype != enums.ObjectType.OBJECT_TABLE:
        what = node.objtype.name.removeprefix("OBJECT_").replace("_", " ")
        return _not_listed(f"ALTER {what}")
    for cmd in node.cmds or ():
        if cmd.subtype not in _ALTER_TABLE_ALLOWED:
            action = cmd.subtype.name.removeprefix("AT_")
            return _not_listed(f"ALTER TABLE ... ({action})")
    return None


def _rename(node: ast.RenameStmt) -> Refusal | None:
    if node.renameType not in _RENAME_ALLOWED:
        what = node.renameType.name.removeprefix("OBJECT_").replace("_", " ")
        return _not_listed(f"RENAME of a {what.lower()}")
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
    if isinstance(node, ast.VacuumStmt) and node.is_vacuumcmd:
        return "VACUUM"
    simple = {
        ast.CreatedbStmt: "CREATE DATABASE",
        ast.DropdbStmt: "DROP DATABASE",
        ast.AlterSystemStmt: "ALTER SYSTEM",
        ast.CreateTableSpaceStmt: "CREATE TABLESPACE",
        ast.DropTableSpaceStmt: "DROP TABLESPACE",
        ast.CreateSubscriptionStmt: "CREATE SUBSCRIPTION",
        ast.DropSubscriptionStmt: "DROP SUBSCRIPTION",
    }
    return next((label for kind, label in simple.items() if isinstance(node, kind)), None)


# --- inside an accepted statement ----------------------------------------------------------


@dataclass(frozen=True)
class DataChange:
    """One data-modifying part of a statement: the statement itself (``cte`` None) or one of
    its WITH queries. PostgreSQL runs every part to completion, read or not (docs 7.8.4)."""

    node: ast.InsertStmt | ast.UpdateStmt | ast.DeleteStmt
    cte: str | None

    @property
    def verb(self) -> str:
        return {ast.InsertStmt: "INSERT", ast.UpdateStmt: "UPDATE", ast.DeleteStmt: "DELETE"}[
            type(self.node)
        ]

    @property
    def table(self) -> QualifiedName:
        return from_range_var(self.node.relation)

    def label(self) -> str:
        where = f"WITH {self.cte}: " if self.cte else ""
        return f"{where}{self.verb} {self.table.display()}"


_DML = (ast.InsertStmt, ast.UpdateStmt, ast.DeleteStmt)


def data_changes(node: ast.Node) -> tuple[DataChange, ...]:
    """The statement's data-modifying WITH queries in order, then the statement itself."""
    parts = [
        DataChange(cte.ctequery, cte.ctename)
        for cte in _ctes(node)
        if isinstance(cte.ctequery, _DML)
    ]
    if isinstance(node, _DML):
        parts.append(DataChange(node, None))
    return tuple(parts)


def _ctes(node: ast.Node) -> tuple[ast.CommonTableExpr, ...]:
    with_clause = getattr(node, "withClause", None)
    return tuple(with_clause.ctes) if with_clause is not None and with_clause.ctes else ()


def nested_refusals(node: ast.Node) -> list[Refusal]:
    """What is refused inside an accepted statement: clauses that lock, write elsewhere or
    pick rows at random, the bot's reserved names, a table changed twice."""
    found: list[Refusal] = []
    for inner in walk(node):
        refusal = _inner_refusal(inner)
        if refusal is not None and refusal not in found:
            found.append(refusal)
    found += _same_table_twice(node)
    for part in data_changes(node):
        refusal = nondeterministic(part, node)
        if refusal is not None and refusal not in found:
            found.append(refusal)
    return found


def _inner_refusal(node: ast.Node) -> Refusal | None:
    if isinstance(node, ast.SelectStmt) and node.intoClause is not None:
        return Refusal("SELECT INTO creates a table", "write CREATE TABLE ... AS SELECT ...")
    if isinstance(node, ast.SelectStmt) and node.lockingClause:
        return Refusal(
            "SELECT ... FOR UPDATE/SHARE locks rows until the transaction ends, which a"
            " rollback does not need",
            "remove FOR UPDATE/SHARE",
        )
    if (
        isinstance(node, ast.InsertStmt)
        and node.onConflictClause is not None
        and node.onConflictClause.action == enums.OnConflictAction.ONCONFLICT_UPDATE
    ):
        return Refusal(
            "INSERT ... ON CONFLICT DO UPDATE changes existing rows the bot cannot back up",
            "write the UPDATE and an INSERT ... ON CONFLICT DO NOTHING as two statements",
        )
    if isinstance(node, ast.UpdateStmt | ast.DeleteStmt) and isinstance(
        node.whereClause, ast.CurrentOfExpr
    ):
        return Refusal("WHERE CURRENT OF needs a cursor", "select the rows by their key")
    if isinstance(node, ast.MergeStmt):
        return _REFUSED[ast.MergeStmt]
    if isinstance(node, ast.ParamRef):
        return Refusal("parameters ($1, $2, ...) have no value here", "write the values out")
    if _reserved_name(node):
        return Refusal(f"names starting with {RESERVED_PREFIX} are the bot's own", "rename it")
    return None


def _reserved_name(node: ast.Node) -> bool:
    names = []
    if isinstance(node, ast.CommonTableExpr):
        names.append(node.ctename)
    elif isinstance(node, ast.Alias):
        names.append(node.aliasname)
    elif isinstance(node, ast.RangeVar):
        names.append(node.relname)
    elif isinstance(node, ast.ColumnRef):
        names += [f.sval for f in node.fields if isinstance(f, ast.String)]
    elif isinstance(node, ast.ResTarget):
        names.append(node.name)
    return any((n or "").lower().startswith(RESERVED_PREFIX) for n in names)


def _same_table_twice(node: ast.Node) -> list[Refusal]:
    seen: set[QualifiedName] = set()
    for part in data_changes(node):
        if part.verb != "INSERT" and part.table in seen:
            return [
                Refusal(
                    f"{part.table.display()} is changed by two parts of one statement:"
                    " PostgreSQL then applies only one of the changes to a row, and which one"
                    " is not predictable",
                    "split it into separate statements",
                )
            ]
        if part.verb != "INSERT":
            seen.add(part.table)
    return []


def predicate_nodes(part: DataChange, statement: ast.Node) -> tuple:
    """What decides which rows an UPDATE or DELETE changes: its WHERE, its FROM/USING, and
    the statement's read-only WITH queries they may read."""
    node = part.node
    if isinstance(node, ast.InsertStmt):
        return ()
    others = node.usingClause if isinstance(node, ast.DeleteStmt) else node.fromClause
    reads = tuple(c.ctequery for c in _ctes(statement) if not isinstance(c.ctequery, _DML))
    return (node.whereClause, others, reads, node.withClause)


def nondeterministic(part: DataChange, statement: ast.Node) -> Refusal | None:
    """LIMIT/OFFSET/FETCH and TABLESAMPLE pick rows that can differ between the dry run the
    approver sees, the backup and the real run. (Volatile functions are the other way to
    pick rows at random; bot/sql/volatility.py refuses them in the same places.)"""
    for inner in walk(predicate_nodes(part, statement)):
        if isinstance(inner, ast.RangeTableSample):
            return nondeterministic_refusal(part, "TABLESAMPLE")
        if isinstance(inner, ast.SelectStmt) and (
            inner.limitCount is not None or inner.limitOffset is not None
        ):
            return nondeterministic_refusal(part, "LIMIT/OFFSET")
    return None


def nondeterministic_refusal(part: DataChange, what: str) -> Refusal:
    return Refusal(
        f"{part.verb} on {part.table.display()} picks its rows with {what}, which can pick"
        " other rows in the real run than in the dry run the approver saw (and than the"
        " backup holds)",
        "select the rows by their values, e.g. WHERE id IN (1, 2, 3) or WHERE created_at <"
        " '2025-12-08 12:00'",
    )


# --- what a statement calls ---------------------------------------------------------------

Name = tuple[str | None, str]  # (schema or None, name), as PostgreSQL resolves them


@dataclass
class Calls:
    """Every function, operator and cast target type named anywhere in a statement; the
    functions named where they decide which rows an UPDATE/DELETE changes, separately."""

    functions: set[Name] = field(default_factory=set)
    operators: set[Name] = field(default_factory=set)
    types: set[Name] = field(default_factory=set)
    in_predicates: set[Name] = field(default_factory=set)

    def update(self, other: Calls) -> None:
        self.functions |= other.functions
        self.operators |= other.operators
        self.types |= other.types
        self.in_predicates |= other.in_predicates


_NOT_OPERATORS = {
    enums.A_Expr_Kind.AEXPR_BETWEEN,
    enums.A_Expr_Kind.AEXPR_NOT_BETWEEN,
    enums.A_Expr_Kind.AEXPR_BETWEEN_SYM,
    enums.A_Expr_Kind.AEXPR_NOT_BETWEEN_SYM,
}


def calls(node) -> Calls:
    found = Calls()
    for inner in walk(node):
        if isinstance(inner, ast.FuncCall):
            found.functions.add(_name(inner.funcname))
        elif isinstance(inner, ast.A_Expr):
            names = [inner.name] if inner.kind not in _NOT_OPERATORS else [("<=",), (">=",)]
            found.operators |= {_name(n) for n in names}
        elif isinstance(inner, ast.SubLink) and inner.subLinkType in (
            enums.SubLinkType.ANY_SUBLINK,
            enums.SubLinkType.ALL_SUBLINK,
        ):
            found.operators.add(_name(inner.operName or ("=",)))
        elif isinstance(inner, ast.TypeCast) and not inner.typeName.pct_type:
            found.types.add(_name(inner.typeName.names))
    return found


def statement_calls(node: ast.Node) -> Calls:
    found = calls(node)
    for part in data_changes(node):
        found.in_predicates |= calls(predicate_nodes(part, node)).functions
    return found


def _name(parts) -> Name:
    values = [p.sval if isinstance(p, ast.String) else str(p) for p in parts]
    return (values[-2] if len(values) > 1 else None, values[-1])
