"""Index and constraint definitions as earlier migrations wrote them, replayed from their SQL.

``DROP INDEX "User_email_key"`` leaves no trace of the index in the live catalog, but the
migration that created it still says how: replaying the migrations applied before (and the
statements before the drop in the same script) gives the CREATE INDEX and the ADD
CONSTRAINT text to recreate it. The text is the migration's own AST printed back by pglast,
with the table's schema filled in so it cannot land elsewhere under another search_path.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial

from pglast import ast
from pglast.enums import AlterTableType, ConstrType, ObjectType
from pglast.stream import RawStream

from bot.sql.names import QualifiedName, from_name_list, from_range_var, quote_identifier
from bot.sql.statements import split_statements

ConstraintKey = tuple[QualifiedName, str]  # (resolved table, constraint name)


class _QuotingStream(RawStream):
    """pglast's printer, but every name double-quoted, as the bot writes all SQL (pglast
    quotes only where PostgreSQL needs it). Types and operators are printed by their own
    printers (``integer``, ``varchar(10)``, ``=``) and stay as they are."""

    def _print_scalar(self, value, is_name, is_symbol):
        if is_name and not is_symbol and isinstance(value, str):
            self.write(quote_identifier(value))
            return
        super()._print_scalar(value, is_name, is_symbol)


def deparse(node: ast.Node) -> str:
    return _QuotingStream()(node)


def _deparse_qualified(node: ast.Node, relation: ast.RangeVar, schema: str) -> str:
    """deparse(node) with ``relation`` named in ``schema``; the AST is left as it was."""
    saved = relation.schemaname
    relation.schemaname = schema
    try:
        return deparse(node)
    finally:
        relation.schemaname = saved


class DefinitionHistory:
    """Last known CREATE INDEX / ADD CONSTRAINT of every named index and constraint."""

    def __init__(self, default_schema: str):
        self.default_schema = default_schema
        # Deparsed only when asked for: most definitions are never needed, and copying and
        # deparsing every one made a 5,000-statement migration slow (bench/: reverse).
        self._indexes: dict[QualifiedName, Callable[[], str]] = {}
        self._constraints: dict[ConstraintKey, Callable[[], str]] = {}

    def index(self, name: QualifiedName) -> str | None:
        """The CREATE INDEX statement of ``name`` (resolved), or None when unknown."""
        sql = self._indexes.get(name.resolved(self.default_schema))
        return sql() if sql else None

    def constraint(self, table: QualifiedName, name: str) -> str | None:
        """The constraint clause (``CONSTRAINT "x" FOREIGN KEY ...``), or None."""
        sql = self._constraints.get((table.resolved(self.default_schema), name))
        return sql() if sql else None

    def replay(self, sql: str) -> None:
        for statement in split_statements(sql):
            self.apply(statement.node)

    def apply(self, node: ast.Node) -> None:
        """Record what one statement that took effect defines or drops."""
        if isinstance(node, ast.IndexStmt):
            self._create_index(node)
        elif isinstance(node, ast.CreateStmt):
            table = self._table(node.relation)
            for element in node.tableElts or ():
                if isinstance(element, ast.Constraint) and element.conname:
                    self._constraints[(table, element.conname)] = self._clause(element)
        elif isinstance(node, ast.AlterTableStmt) and node.objtype == ObjectType.OBJECT_TABLE:
            self._alter_table(node)
        elif isinstance(node, ast.DropStmt):
            self._drop(node)

    def _table(self, relation: ast.RangeVar) -> QualifiedName:
        return from_range_var(relation).resolved(self.default_schema)

    def _create_index(self, node: ast.IndexStmt) -> None:
        if node.idxname is None:
            return
        table = self._table(node.relation)
        self._indexes[QualifiedName(table.schema, node.idxname)] = partial(
            _deparse_qualified, node, node.relation, table.schema
        )

    def _clause(self, constraint: ast.Constraint) -> Callable[[], str]:
        if constraint.contype == ConstrType.CONSTR_FOREIGN and constraint.pktable is not None:
            referenced = constraint.pktable
            schema = referenced.schemaname or self.default_schema
            return partial(_deparse_qualified, constraint, referenced, schema)
        return partial(deparse, constraint)

    def _alter_table(self, node: ast.AlterTableStmt) -> None:
        table = self._table(node.relation)
        for cmd in node.cmds:
            if cmd.subtype == AlterTableType.AT_AddConstraint and cmd.def_.conname:
                self._constraints[(table, cmd.def_.conname)] = self._clause(cmd.def_)
            elif cmd.subtype == AlterTableType.AT_DropConstraint:
                self._constraints.pop((table, cmd.name), None)

    def _drop(self, node: ast.DropStmt) -> None:
        if node.removeType == ObjectType.OBJECT_INDEX:
            for obj in node.objects:
                self._indexes.pop(from_name_list(obj).resolved(self.default_schema), None)
        elif node.removeType == ObjectType.OBJECT_TABLE:
            for obj in node.objects:
                table = from_name_list(obj).resolved(self.default_schema)
                for key in [k for k in self._constraints if k[0] == table]:
                    del self._constraints[key]
