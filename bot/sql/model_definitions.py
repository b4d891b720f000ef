"""Index, constraint and view definitions as the schema model keeps them.

A definition is the migration's own AST (never changed) plus the identities of the columns
and tables it names, so that it can be printed again under the names those objects have at
any later point (``CREATE INDEX ... ("email")`` after ``RENAME COLUMN "email" TO "mail"``
must name "mail"), and reduced to a signature that compares with what the live catalog
shows (``pg_get_indexdef``, ``pg_get_constraintdef``, parsed back by pglast), whatever the
spelling: quotes, casts, default options.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from pglast import ast
from pglast.enums import ConstrType, SortByDir, SortByNulls
from pglast.stream import RawStream
from pglast.visitors import Visitor

from bot.sql.expressions import normalized_expression
from bot.sql.names import QualifiedName, quote_identifier


class _QuotingStream(RawStream):
    """pglast's printer, but every name double-quoted, as the bot writes all SQL (pglast
    quotes only where PostgreSQL needs it). Types and operators are printed by their own
    printers (``integer``, ``varchar(10)``, ``=``) and stay as they are."""

    def _print_scalar(self, value, is_name, is_symbol):
        if is_name and not is_symbol and isinstance(value, str):
            self.write(quote_identifier(value))
            return
        super()._print_scalar(value, is_name, is_symbol)


def deparse_quoted(node: ast.Node) -> str:
    return _QuotingStream()(node)


@dataclass(frozen=True, slots=True)
class Definition:
    """``node``: an IndexStmt, a Constraint or a ViewStmt as written. ``columns`` maps each
    column name it uses to that column's identity in its table; ``ref_columns`` the same
    for the table a FOREIGN KEY references."""

    node: ast.Node
    columns: Mapping[str, int] = field(default_factory=dict)
    ref_columns: Mapping[str, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        # Read-only views: a model is shared by every state of a replay and by the model
        # cache (bot/sql/model_cache.py), so a caller must not be able to rewrite it.
        object.__setattr__(self, "columns", MappingProxyType(dict(self.columns)))
        object.__setattr__(self, "ref_columns", MappingProxyType(dict(self.ref_columns)))


class BuiltDefinition:
    """A Definition whose AST is made only when first needed: the index a PRIMARY KEY or
    UNIQUE constraint creates (building one per table of a long history cost more than
    everything else the replay does to a CREATE TABLE)."""

    __slots__ = ("_build", "_node", "columns", "ref_columns")

    def __init__(self, build: Callable[[], ast.Node | None], columns: Mapping[str, int]):
        self._build = build
        self._node: ast.Node | None = None
        self.columns: Mapping[str, int] = MappingProxyType(dict(columns))
        self.ref_columns: Mapping[str, int] = MappingProxyType({})

    def __setattr__(self, name: str, value) -> None:
        # As frozen as Definition (shared with the model cache), but for the AST it builds.
        if name != "_node" and hasattr(self, name):
            raise AttributeError(f"BuiltDefinition.{name} cannot be changed")
        object.__setattr__(self, name, value)

    @property
    def node(self) -> ast.Node | None:
        if self._node is None:
            self._node = self._build()
        return self._node


Names = Callable[[int], str | None]  # column identity -> its name now (None: gone)


class _Renamer(Visitor):
    """Replaces column names in a copied AST: ColumnRefs, IndexElems, constraint keys."""

    def __init__(self, own: Mapping[str, str], referenced: Mapping[str, str]):
        super().__init__()
        self.own, self.referenced = own, referenced

    def visit_ColumnRef(self, ancestors, node: ast.ColumnRef) -> None:
        fields = node.fields
        if len(fields) == 1 and isinstance(fields[0], ast.String):
            name = self.own.get(fields[0].sval)
            if name is not None:
                node.fields = (ast.String(sval=name),)

    def visit_IndexElem(self, ancestors, node: ast.IndexElem) -> None:
        if node.name is not None and node.name in self.own:
            node.name = self.own[node.name]

    def visit_Constraint(self, ancestors, node: ast.Constraint) -> None:
        for attribute, names in (
            ("keys", self.own),
            ("including", self.own),
            ("fk_attrs", self.own),
            ("pk_attrs", self.referenced),
        ):
            values = getattr(node, attribute, None)
            if values:
                setattr(node, attribute, tuple(_renamed(v, names) for v in values))


def _renamed(value: ast.String, names: Mapping[str, str]) -> ast.String:
    return ast.String(sval=names.get(value.sval, value.sval))


def renamed(definition: Definition, own: Names, referenced: Names | None = None) -> ast.Node | None:
    """A copy of the definition's AST under the columns' current names; None when one of
    its columns is gone (a definition that names a dropped column cannot be used)."""
    current, current_ref = {}, {}
    for written, ident in definition.columns.items():
        now = own(ident)
        if now is None:
            return None
        current[written] = now
    for written, ident in definition.ref_columns.items():
        now = referenced(ident) if referenced else None
        if now is None:
            return None
        current_ref[written] = now
    node = copy.deepcopy(definition.node)
    _Renamer(current, current_ref)(node)
    return node


def with_relation(node: ast.Node, relation: ast.RangeVar, name: QualifiedName) -> ast.Node:
    """Sets a RangeVar (already part of a copied AST) to ``name``."""
    relation.schemaname, relation.relname = name.schema, name.name
    return node


# ------------------------------------------------------------------------ signatures

Signature = tuple  # compared field by field; an UNKNOWN field matches anything


def index_signature(node: ast.IndexStmt) -> Signature:
    """What makes two indexes the same, whatever the spelling."""
    return (
        bool(node.unique),
        (node.accessMethod or "btree").lower(),
        tuple(_index_element(e) for e in node.indexParams or ()),
        tuple(e.name for e in node.indexIncludingParams or ()),
        _expression(node.whereClause),
        bool(node.nulls_not_distinct),
    )


def _index_element(element: ast.IndexElem) -> tuple:
    what = element.name if element.name is not None else _expression(element.expr)
    ordering = element.ordering or SortByDir.SORTBY_DEFAULT
    if ordering == SortByDir.SORTBY_ASC:
        ordering = SortByDir.SORTBY_DEFAULT
    nulls = element.nulls_ordering or SortByNulls.SORTBY_NULLS_DEFAULT
    # NULLS LAST is the default for ASC, NULLS FIRST for DESC (docs, CREATE INDEX).
    default_nulls = (
        SortByNulls.SORTBY_NULLS_FIRST
        if ordering == SortByDir.SORTBY_DESC
        else SortByNulls.SORTBY_NULLS_LAST
    )
    if nulls == default_nulls:
        nulls = SortByNulls.SORTBY_NULLS_DEFAULT
    opclass = element.opclass[-1].sval if element.opclass else None
    collation = element.collation[-1].sval if element.collation else None
    return (what, int(ordering), int(nulls), opclass, collation)


def _expression(node: ast.Node | None) -> str | None:
    if node is None:
        return None
    return normalized_expression(RawStream()(node))


def constraint_signature(
    node: ast.Constraint, referenced: QualifiedName | None, referenced_keys: tuple | None
) -> Signature:
    """``referenced``: the table a FOREIGN KEY points at; ``referenced_keys``: its columns
    when the constraint does not list them (they are its primary key's)."""
    contype = node.contype
    if contype in (ConstrType.CONSTR_PRIMARY, ConstrType.CONSTR_UNIQUE):
        return (
            int(contype),
            _names(node.keys),
            _names(node.including),
            bool(node.nulls_not_distinct),
            bool(node.deferrable),
            bool(node.initdeferred),
        )
    if contype == ConstrType.CONSTR_FOREIGN:
        return (
            int(contype),
            _names(node.fk_attrs),
            referenced,
            _names(node.pk_attrs) if node.pk_attrs else referenced_keys,
            node.fk_matchtype or "s",
            node.fk_upd_action or "a",
            node.fk_del_action or "a",
            bool(node.deferrable),
            bool(node.initdeferred),
        )
    if contype == ConstrType.CONSTR_CHECK:
        return (int(contype), _expression(node.raw_expr), bool(node.is_no_inherit))
    return (int(contype),)


def _names(values) -> tuple[str, ...]:
    return tuple(v.sval for v in values or ())
