"""Replaying constraints on the schema model, and the indexes they own, with what
PostgreSQL does implicitly (docs, CREATE TABLE and ALTER TABLE):
- a PRIMARY KEY makes its columns NOT NULL and creates an index of the constraint's name;
- ``ADD CONSTRAINT ... USING INDEX i`` absorbs ``i``, renaming it to the constraint's name;
- an unnamed constraint gets ChooseConstraintName's name, unless that name is taken;
- DROP CONSTRAINT drops the constraint's index (with CASCADE also the foreign keys that
  depend on it).

Tables and columns are bot.sql.model_tables' (CREATE TABLE and ALTER TABLE hand each
constraint here); the lookups and ``violated`` are its too, so both modes (lenient, strict)
behave alike.
"""

from __future__ import annotations

import copy
from functools import partial
from typing import TYPE_CHECKING

from pglast import ast
from pglast.enums import ConstrType, SortByDir, SortByNulls
from pglast.visitors import Visitor

from bot.sql.model_definitions import BuiltDefinition, Definition
from bot.sql.names import QualifiedName
from bot.sql.object_names import column_names_part, make_object_name
from bot.sql.schema_model import Constraint, Index, SchemaModel, Table, changed, new_identity

if TYPE_CHECKING:
    from bot.sql.model_tables import TableReplay

CONTYPES = {
    ConstrType.CONSTR_PRIMARY: "p",
    ConstrType.CONSTR_UNIQUE: "u",
    ConstrType.CONSTR_FOREIGN: "f",
    ConstrType.CONSTR_CHECK: "c",
    ConstrType.CONSTR_EXCLUSION: "x",
}
_LABELS = {"p": "pkey", "u": "key", "f": "fkey", "c": "check", "x": "excl"}


class ConstraintReplay:
    """Adds and drops the constraints of ``tables``' model (and the indexes and NOT NULLs
    they bring), looking tables and columns up as ``tables`` does."""

    def __init__(self, tables: TableReplay):
        self.tables = tables
        self.model: SchemaModel = tables.model

    def add_constraint(self, table: Table, node: ast.Constraint, column: str | None) -> None:
        contype = CONTYPES.get(node.contype)
        if contype is None:
            return
        if node.indexname:
            self._constraint_using_index(table, node, contype)
            return
        keys = _key_names(node, column)
        name = node.conname or self._chosen_name(table, contype, keys, node)
        if name is None:
            self.model.update_table(table, complete=False)
            return
        if table.constraint(name) is not None:
            self.tables.violated(f"constraint {name} already exists")
            table = self.drop_constraint_named(table, name, cascade=True)
        columns: dict[str, int] = {}
        for key in keys + _check_columns(node):
            table, found = self.tables.column_of(table, key)
            columns[key] = found.ident
        if contype == "p":
            table = self._not_null_columns(table, set(columns.values()))
        ref_table, ref_columns, node = self._referenced(node, contype, column)
        if column is not None and contype in ("f", "p", "u"):
            node = _with_keys(node, contype, column)
        ident = new_identity()
        index = self._constraint_index(table, name, contype, node, columns, ident)
        constraint = Constraint(
            ident,
            name,
            contype,
            Definition(node, columns, ref_columns),
            frozenset(columns.values()),
            ref_table,
            frozenset(ref_columns.values()),
            index,
        )
        self.model.update_table(
            self.tables.current(table), constraints=(*table.constraints, constraint)
        )

    def _chosen_name(
        self, table: Table, contype: str, keys: list[str], node: ast.Constraint
    ) -> str | None:
        if contype == "p":
            middle = None
        elif contype == "c":
            referenced = _check_columns(node)
            middle = referenced[0] if len(set(referenced)) == 1 else None
        else:
            middle = column_names_part(keys) if keys else None
        name = make_object_name(table.name.name, middle, _LABELS[contype])
        taken = any(c.name == name for t in self.model.tables() for c in t.constraints)
        if taken or self.model.relation(QualifiedName(table.name.schema, name)) is not None:
            return None  # PostgreSQL would add a number; the model does not guess it
        return name

    def _not_null_columns(self, table: Table, idents: set[int]) -> Table:
        columns = tuple(
            changed(c, not_null=True) if c.ident in idents else c for c in table.columns
        )
        return self.model.update_table(table, columns=columns)

    def _referenced(
        self, node: ast.Constraint, contype: str, column: str | None
    ) -> tuple[int | None, dict[str, int], ast.Constraint]:
        if contype != "f":
            return None, {}, node
        referenced = self.tables.table_named(node.pktable)
        if referenced is None:
            return None, {}, node
        names = [n.sval for n in node.pk_attrs or ()]
        if not names:
            key = referenced.primary_key()
            if key is None or key.definition is None:
                return referenced.ident, {}, node
            names = [n.sval for n in key.definition.node.keys or ()]
            node = _with_pk_attrs(node, names)
        ref_columns = {}
        for name in names:
            referenced, found = self.tables.column_of(referenced, name)
            ref_columns[name] = found.ident
        return referenced.ident, ref_columns, node

    def _constraint_index(
        self,
        table: Table,
        name: str,
        contype: str,
        node: ast.Constraint,
        columns: dict[str, int],
        constraint: int,
    ) -> int | None:
        if contype not in ("p", "u", "x"):
            return None
        index_name = QualifiedName(table.name.schema, name)
        if self.model.relation(index_name) is not None:
            self.tables.violated(f"relation {index_name.display()} already exists")
        definition = None
        if contype != "x" and node.keys:
            definition = BuiltDefinition(
                partial(_index_of_constraint, node, table.name, name), columns
            )
        index = Index(
            new_identity(),
            index_name,
            table.ident,
            definition,
            frozenset(columns.values()),
            constraint,
        )
        self.model.put_relation(index)
        return index.ident

    def _constraint_using_index(self, table: Table, node: ast.Constraint, contype: str) -> None:
        index_name = QualifiedName(table.name.schema, node.indexname)
        index = self.model.relation(index_name)
        if not isinstance(index, Index):
            if self.model.relation_exists(index_name) is False:
                self.tables.violated(f"index {index_name.display()} does not exist")
            self.model.doubts.relations.add(index_name)
            self.model.update_table(table, complete=False)
            return
        name = node.conname or node.indexname
        ident = new_identity()
        keys = _index_keys(index)
        columns = {c.name: c.ident for c in table.columns if c.ident in index.columns}
        definition = None
        if keys is not None:
            synthetic = ast.Constraint(contype=node.contype, conname=name, keys=keys)
            definition = Definition(synthetic, columns)
        renamed = changed(index, name=QualifiedName(index.name.schema, name), constraint=ident)
        self.model.put_relation(renamed, old_name=index.name)
        if contype == "p":
            table = self._not_null_columns(self.tables.current(table), set(index.columns))
        constraint = Constraint(ident, name, contype, definition, index.columns, index=index.ident)
        table = self.tables.current(table)
        self.model.update_table(table, constraints=(*table.constraints, constraint))

    def drop_constraint_named(self, table: Table, name: str, *, cascade: bool) -> Table:
        constraint = table.constraint(name)
        if constraint is None:
            return table
        table = self.model.update_table(
            table, constraints=tuple(c for c in table.constraints if c.ident != constraint.ident)
        )
        if constraint.index is not None:
            index = self.model.relation_by_ident(constraint.index)
            if index is not None:
                self.model.drop_relation(index)
        if cascade and constraint.contype in ("p", "u"):
            self.drop_foreign_keys(table.ident, lambda fk: fk.ref_columns == constraint.columns)
        return self.tables.current(table)

    def drop_foreign_keys(self, table: int, matches) -> None:
        for owner, fk in self.model.foreign_keys_into(table):
            if matches(fk):
                owner = self.model.table_by_ident(owner.ident) or owner
                kept = tuple(c for c in owner.constraints if c.ident != fk.ident)
                self.model.update_table(owner, constraints=kept)


# ------------------------------------------------------------------ AST helpers


def _key_names(node: ast.Constraint, column: str | None) -> list[str]:
    if column is not None and node.contype in (
        ConstrType.CONSTR_PRIMARY,
        ConstrType.CONSTR_UNIQUE,
        ConstrType.CONSTR_FOREIGN,
    ):
        return [column]
    keys = node.fk_attrs if node.contype == ConstrType.CONSTR_FOREIGN else node.keys
    names = [k.sval for k in keys or ()]
    return names + [k.sval for k in node.including or ()]


class _ColumnRefs(Visitor):
    def __init__(self):
        super().__init__()
        self.names: list[str] = []

    def visit_ColumnRef(self, ancestors, node: ast.ColumnRef) -> None:
        last = node.fields[-1]
        if isinstance(last, ast.String):
            self.names.append(last.sval)


def column_refs(node: ast.Node | None) -> list[str]:
    if node is None:
        return []
    visitor = _ColumnRefs()
    visitor(node)
    return visitor.names


def _check_columns(node: ast.Constraint) -> list[str]:
    if node.contype != ConstrType.CONSTR_CHECK:
        return []
    return column_refs(node.raw_expr)


def _with_keys(node: ast.Constraint, contype: str, column: str) -> ast.Constraint:
    """An inline column constraint, written as the table constraint it is."""
    node = copy.deepcopy(node)
    if contype == "f":
        node.fk_attrs = (ast.String(sval=column),)
    else:
        node.keys = (ast.String(sval=column),)
    return node


def _with_pk_attrs(node: ast.Constraint, names: list[str]) -> ast.Constraint:
    node = copy.deepcopy(node)
    node.pk_attrs = tuple(ast.String(sval=n) for n in names)
    return node


def _index_of_constraint(
    node: ast.Constraint, table: QualifiedName, name: str
) -> ast.IndexStmt | None:
    keys = node.keys or ()
    if not keys:
        return None
    return ast.IndexStmt(
        idxname=name,
        relation=ast.RangeVar(schemaname=table.schema, relname=table.name, inh=True),
        accessMethod="btree",
        indexParams=tuple(_element(k.sval) for k in keys),
        indexIncludingParams=tuple(_element(k.sval) for k in node.including or ()),
        unique=True,
        nulls_not_distinct=bool(node.nulls_not_distinct),
        isconstraint=True,  # made by the constraint, not by a CREATE INDEX of the migration
    )


def _element(name: str) -> ast.IndexElem:
    return ast.IndexElem(
        name=name,
        ordering=SortByDir.SORTBY_DEFAULT,
        nulls_ordering=SortByNulls.SORTBY_NULLS_DEFAULT,
    )


def _index_keys(index: Index) -> tuple[ast.String, ...] | None:
    """The columns of a plain index on columns (what a PRIMARY KEY USING INDEX takes)."""
    if index.definition is None:
        return None
    params = index.definition.node.indexParams or ()
    if any(p.name is None for p in params):
        return None
    return tuple(ast.String(sval=p.name) for p in params)
