"""The table locks a statement takes, and the work it does while holding them.

Lock levels from the PostgreSQL documentation ("Explicit Locking", table 13.2, and each
command's page: ALTER TABLE's "Notes", CREATE INDEX's "Building Indexes Concurrently");
rewrites and scans from ALTER TABLE's notes (a volatile default or a type change rewrites
the table, SET NOT NULL and a validated constraint scan it). A lock waits for every
transaction holding a conflicting one, and every later query waits behind it: the size of
the table says how long that is.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from pglast import ast
from pglast.enums import AlterTableType, ConstrType, ObjectType

from bot.sql.names import QualifiedName, from_name_list, from_range_var


class LockMode(StrEnum):
    ACCESS_EXCLUSIVE = "ACCESS EXCLUSIVE"
    SHARE_ROW_EXCLUSIVE = "SHARE ROW EXCLUSIVE"
    SHARE = "SHARE"
    SHARE_UPDATE_EXCLUSIVE = "SHARE UPDATE EXCLUSIVE"
    ROW_EXCLUSIVE = "ROW EXCLUSIVE"

    @property
    def blocks(self) -> str:
        return _BLOCKS[self]

    @property
    def strength(self) -> int:
        return _ORDER.index(self)


_ORDER = (
    LockMode.ROW_EXCLUSIVE,
    LockMode.SHARE_UPDATE_EXCLUSIVE,
    LockMode.SHARE,
    LockMode.SHARE_ROW_EXCLUSIVE,
    LockMode.ACCESS_EXCLUSIVE,
)
_BLOCKS = {
    LockMode.ACCESS_EXCLUSIVE: "blocks every read and write of the table",
    LockMode.SHARE_ROW_EXCLUSIVE: "blocks writes (reads go on)",
    LockMode.SHARE: "blocks writes (reads go on)",
    LockMode.SHARE_UPDATE_EXCLUSIVE: "blocks other schema changes and VACUUM only",
    LockMode.ROW_EXCLUSIVE: "blocks no reads or writes (only schema changes)",
}

REWRITE = "rewrites the whole table and its indexes"
SCAN = "scans the whole table"
BUILD = "builds the index over the whole table"
CONCURRENT_IN_TRANSACTION = (
    "CONCURRENTLY cannot run inside a transaction block: Prisma sends the file as one"
    " script, so it must be the only statement of its migration"
)


@dataclass(frozen=True)
class Lock:
    table: QualifiedName  # as written; review.py resolves the schema
    mode: LockMode
    work: str = ""  # REWRITE, SCAN, BUILD, or "" (brief)
    note: str = ""

    def to_dict(self) -> dict:
        return {
            "table": self.table.display(),
            "mode": str(self.mode),
            "blocks": self.mode.blocks,
            "work": self.work,
            "note": self.note,
        }


def locks_of(node: ast.Node) -> tuple[Lock, ...]:
    """The locks ``node`` takes on existing tables, strongest per table, in order."""
    reader = _READERS.get(type(node))
    found = reader(node) if reader else []
    strongest: dict[QualifiedName, Lock] = {}
    for lock in found:
        held = strongest.get(lock.table)
        if held is None:
            strongest[lock.table] = lock
            continue
        mode = max(held.mode, lock.mode, key=lambda m: m.strength)
        work = _heavier(held.work, lock.work)
        note = "; ".join(n for n in dict.fromkeys((held.note, lock.note)) if n)
        strongest[lock.table] = Lock(lock.table, mode, work, note)
    return tuple(strongest.values())


def _heavier(a: str, b: str) -> str:
    order = ("", SCAN, BUILD, REWRITE)
    return max(a, b, key=order.index)


def _alter_table(node: ast.AlterTableStmt) -> list[Lock]:
    if node.objtype != ObjectType.OBJECT_TABLE:
        return []
    table = from_range_var(node.relation)
    locks = []
    for item in node.cmds or ():
        cmd = item if isinstance(item, ast.AlterTableCmd) else None
        if cmd is not None:
            locks += _alter_table_cmd(table, cmd)
    return locks


def _alter_table_cmd(table: QualifiedName, cmd: ast.AlterTableCmd) -> list[Lock]:
    subtype = cmd.subtype
    if subtype == AlterTableType.AT_AddColumn:
        return [Lock(table, LockMode.ACCESS_EXCLUSIVE, _add_column_work(cmd.def_))]
    if subtype == AlterTableType.AT_AlterColumnType:
        return [
            Lock(
                table,
                LockMode.ACCESS_EXCLUSIVE,
                REWRITE,
                "no rewrite only when the new type is binary-compatible (e.g. VARCHAR widened"
                " or made TEXT)",
            )
        ]
    if subtype == AlterTableType.AT_SetNotNull:
        return [Lock(table, LockMode.ACCESS_EXCLUSIVE, SCAN)]
    if subtype == AlterTableType.AT_AddConstraint and isinstance(cmd.def_, ast.Constraint):
        return _add_constraint(table, cmd.def_)
    if subtype == AlterTableType.AT_ValidateConstraint:
        return [Lock(table, LockMode.SHARE_UPDATE_EXCLUSIVE, SCAN)]
    return [Lock(table, LockMode.ACCESS_EXCLUSIVE)]


def _add_column_work(column: ast.Node) -> str:
    """PostgreSQL 11+ stores a non-volatile default without touching the rows; a volatile
    one (a function call such as gen_random_uuid(), a serial's nextval) rewrites."""
    if not isinstance(column, ast.ColumnDef):
        return ""
    names = [n.sval.lower() for n in (column.typeName.names if column.typeName else ())]
    if names and names[-1] in ("serial", "bigserial", "smallserial", "serial2", "serial4"):
        return REWRITE
    for constraint in column.constraints or ():
        if constraint.contype == ConstrType.CONSTR_IDENTITY:
            return REWRITE
        if constraint.contype == ConstrType.CONSTR_DEFAULT and _calls_function(constraint.raw_expr):
            return REWRITE
    return ""


def _calls_function(expr: ast.Node | None) -> bool:
    if expr is None:
        return False
    if isinstance(expr, ast.FuncCall):
        return True
    if isinstance(expr, ast.TypeCast):
        return _calls_function(expr.arg)
    return False


def _add_constraint(table: QualifiedName, constraint: ast.Constraint) -> list[Lock]:
    validated = not constraint.skip_validation
    if constraint.contype == ConstrType.CONSTR_FOREIGN:
        work = SCAN if validated else ""
        locks = [Lock(table, LockMode.SHARE_ROW_EXCLUSIVE, work)]
        if constraint.pktable is not None:
            locks.append(Lock(from_range_var(constraint.pktable), LockMode.SHARE_ROW_EXCLUSIVE))
        return locks
    if constraint.contype in (ConstrType.CONSTR_PRIMARY, ConstrType.CONSTR_UNIQUE):
        work = "" if constraint.indexname else BUILD
        return [Lock(table, LockMode.ACCESS_EXCLUSIVE, work)]
    return [Lock(table, LockMode.ACCESS_EXCLUSIVE, SCAN if validated else "")]


def _create_index(node: ast.IndexStmt) -> list[Lock]:
    table = from_range_var(node.relation)
    if node.concurrent:
        return [Lock(table, LockMode.SHARE_UPDATE_EXCLUSIVE, BUILD, CONCURRENT_IN_TRANSACTION)]
    return [Lock(table, LockMode.SHARE, BUILD)]


def _drop(node: ast.DropStmt) -> list[Lock]:
    if node.removeType == ObjectType.OBJECT_TABLE:
        return [Lock(from_name_list(n), LockMode.ACCESS_EXCLUSIVE) for n in node.objects]
    if node.removeType == ObjectType.OBJECT_INDEX:
        # Locks the index's table; which table that is, the catalog says (review.py).
        mode = LockMode.SHARE_UPDATE_EXCLUSIVE if node.concurrent else LockMode.ACCESS_EXCLUSIVE
        note = CONCURRENT_IN_TRANSACTION if node.concurrent else ""
        return [Lock(_index_marker(from_name_list(n)), mode, "", note) for n in node.objects]
    return []


INDEX_PREFIX = "index:"


def _index_marker(index: QualifiedName) -> QualifiedName:
    """A DROP INDEX lock names the index until review.py finds its table."""
    return QualifiedName(index.schema, INDEX_PREFIX + index.name)


def _rename(node: ast.RenameStmt) -> list[Lock]:
    if node.relation is None:
        return []
    relation = from_range_var(node.relation)
    if node.renameType == ObjectType.OBJECT_INDEX:
        return [Lock(_index_marker(relation), LockMode.SHARE_UPDATE_EXCLUSIVE)]
    if node.renameType in (ObjectType.OBJECT_TABLE, ObjectType.OBJECT_COLUMN):
        return [Lock(relation, LockMode.ACCESS_EXCLUSIVE)]
    if node.renameType == ObjectType.OBJECT_TABCONSTRAINT:
        return [Lock(relation, LockMode.ACCESS_EXCLUSIVE)]
    return []


def _create_table(node: ast.CreateStmt) -> list[Lock]:
    # The new table is nobody's yet; a foreign key locks the table it references.
    locks = []
    for element in node.tableElts or ():
        constraints = (
            element.constraints or () if isinstance(element, ast.ColumnDef) else (element,)
        )
        for constraint in constraints:
            if (
                isinstance(constraint, ast.Constraint)
                and constraint.contype == ConstrType.CONSTR_FOREIGN
                and constraint.pktable is not None
            ):
                locks.append(Lock(from_range_var(constraint.pktable), LockMode.SHARE_ROW_EXCLUSIVE))
    return locks


def _data(node: ast.Node) -> list[Lock]:
    relation = getattr(node, "relation", None)
    if not isinstance(relation, ast.RangeVar):
        return []
    note = "" if isinstance(node, ast.InsertStmt) else "locks every row it changes"
    return [Lock(from_range_var(relation), LockMode.ROW_EXCLUSIVE, "", note)]


def _truncate(node: ast.TruncateStmt) -> list[Lock]:
    return [Lock(from_range_var(r), LockMode.ACCESS_EXCLUSIVE) for r in node.relations]


def _create_trigger(node: ast.CreateTrigStmt) -> list[Lock]:
    return [Lock(from_range_var(node.relation), LockMode.SHARE_ROW_EXCLUSIVE)]


_READERS = {
    ast.AlterTableStmt: _alter_table,
    ast.IndexStmt: _create_index,
    ast.DropStmt: _drop,
    ast.RenameStmt: _rename,
    ast.CreateStmt: _create_table,
    ast.InsertStmt: _data,
    ast.UpdateStmt: _data,
    ast.DeleteStmt: _data,
    ast.TruncateStmt: _truncate,
    ast.CreateTrigStmt: _create_trigger,
}
