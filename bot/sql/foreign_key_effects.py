"""The rows a DELETE changes in other tables through their foreign keys, read in the same
statement so they can be backed up exactly.

PostgreSQL runs a DELETE's referential actions (ON DELETE CASCADE / SET NULL / SET DEFAULT)
at the end of the statement, as triggers on each removed row (docs 5.4.5); a row removed by
a cascade cascades in turn. Every table this can reach is read from the statement's own
snapshot, in an order where each table comes after every table whose removed rows it
refers to:

- removed rows of X: rows referring, through an ON DELETE CASCADE key, to removed rows of
  one of X's parents;
- changed rows of X: rows referring, through ON DELETE SET NULL / SET DEFAULT, to removed
  rows, and not removed themselves (a removed row stays removed whichever trigger fires
  first).

A cycle (a table that refers to itself, or back up the chain), a table the statement also
changes another way, and a SET NULL whose new values other tables follow ON UPDATE cannot
be read this way: those are refused, with their row counts, when they would change any row.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from bot.sql.backups import AfterCheck, Backup, count_sql
from bot.sql.dependents import CHANGES_ROWS, ForeignKey, Table
from bot.sql.names import quote_identifier

if TYPE_CHECKING:
    from bot.sql.capture import _Builder


def matches(key: ForeignKey, source: str) -> str:
    """Rows of the child (alias rollback_bot_c) that refer to a row of ``source``."""
    child = ", ".join(f"rollback_bot_c.{quote_identifier(c)}" for c in key.child_columns)
    parent = ", ".join(f"rollback_bot_p.{quote_identifier(c)}" for c in key.parent_columns)
    return f"({child}) IN (SELECT {parent} FROM {source} AS rollback_bot_p)"


class ForeignKeyEffects:
    """Adds to a statement being built the WITH queries that read and save what its DELETE
    part's foreign keys change."""

    def __init__(self, builder: _Builder, root: Table, source: str, saved: Backup):
        self.b = builder
        self.root = root.name.sql()
        self.tables: dict[str, Table | None] = {self.root: root}
        self.edges: dict[str, list[ForeignKey]] = {}
        self.removed: dict[str, str] = {self.root: source}  # table -> WITH query of its rows
        self.saved: dict[str, Backup] = {self.root: saved}
        self.done: set[str] = {self.root}

    def add(self) -> None:
        self._discover()
        while ready := self._ready():
            self._table(ready)
        self._refuse_the_rest()

    def _discover(self) -> None:
        """Every table a cascade can reach (its keys) and every table a SET NULL/DEFAULT
        reaches (not expanded: it loses no rows)."""
        queue = [self.root]
        expanded = set()
        while queue:
            name = queue.pop(0)
            if name in expanded:
                continue
            expanded.add(name)
            table = self.tables[name]
            keys = [
                k for k in self.b.catalog.referencing(table.name) if k.on_delete in CHANGES_ROWS
            ]
            self.edges[table.name.sql()] = keys
            for key in keys:
                child = key.child.sql()
                if child not in self.tables:
                    self.tables[child] = self.b.catalog.table(key.child)
                if key.on_delete == "c" and self.tables[child] is not None:
                    queue.append(child)

    def _into(self, child: str) -> list[tuple[str, ForeignKey]]:
        return [(p, k) for p, keys in self.edges.items() for k in keys if k.child.sql() == child]

    def _ready(self) -> str | None:
        waiting = sorted(t for t in self.tables if t not in self.done)
        for table in waiting:
            parents = {p for p, _ in self._into(table)}
            if self.tables[table] is not None and parents <= self.done and table not in parents:
                return table
        return None

    def _table(self, name: str) -> None:
        self.done.add(name)
        table = self.tables[name]
        into = self._into(name)
        cascades = [(p, k) for p, k in into if k.on_delete == "c"]
        clears = [(p, k) for p, k in into if k.on_delete != "c"]
        if name in self.b.changed or self._followed(table, clears):
            why = (
                "the statement changes that table another way too"
                if name in self.b.changed
                else "other tables follow, ON UPDATE, the columns it would change"
            )
            self._refuse(into, why)
            return
        removed = " OR ".join(matches(k, self.removed[p]) for p, k in cascades)
        before = self.b.measure(f"before:{name}", count_sql(name))
        gone = None
        if cascades:
            gone = self._save(table, cascades, removed)
            self.removed[name] = gone.rows_source
        if clears:
            cleared = " OR ".join(matches(k, self.removed[p]) for p, k in clears)
            where = f"({cleared}) AND ({removed}) IS NOT TRUE" if removed else cleared
            self._save(table, clears, where)
        self._after(table, into, before, gone.count_key if gone else None)

    def _followed(self, table: Table, clears) -> bool:
        cleared = {c for _, k in clears for c in k.child_columns}
        return bool(cleared) and any(
            k.on_update in CHANGES_ROWS and cleared & set(k.parent_columns)
            for k in self.b.catalog.referencing(table.name)
        )

    def _save(self, table: Table, keys, where: str) -> _Saved:
        number = len(self.b.out.backups)
        cte = f"rollback_bot_dep_{number}"
        self.b.later.append(
            f"{cte} AS MATERIALIZED (SELECT rollback_bot_c.* FROM {table.name.sql()}"
            f" AS rollback_bot_c WHERE {where})"
        )
        why = " and ".join(k.describe("DELETE") for _, k in keys)
        backup = Backup("dependents", table.name, self.b.names(table.name), why=why)
        self.b.save(backup, cte, table, f"save_dep_{number}")
        if keys[0][1].on_delete == "c":
            self.saved[table.name.sql()] = backup
        return _Saved(cte, self.b.out.backups[-1].count_key)

    def _after(self, table: Table, into, before: str, removed: str | None) -> None:
        shown = table.name.display()
        self.b.out.after.append(
            AfterCheck(
                f"SELECT count(*) FROM {table.name.sql()}",
                before,
                removed,
                f"rows of {shown} after the foreign keys' ON DELETE actions",
            )
        )
        for parent, key in into:
            self.b.out.after.append(
                AfterCheck(
                    f"SELECT count(*) FROM {table.name.sql()} AS rollback_bot_c"
                    f" WHERE {matches(key, self.saved[parent].name.sql())}",
                    None,
                    None,
                    f"rows of {shown} still referring to removed rows",
                )
            )

    def _refuse(self, into, why: str) -> None:
        for parent, key in into:
            if parent in self.removed:
                count = self.b.measure(
                    f"refused:{len(self.b.out.refused)}",
                    f"(SELECT count(*) FROM {key.child.sql()} AS rollback_bot_c"
                    f" WHERE {matches(key, self.removed[parent])})",
                )
                self.b.out.refused.append((f"{key.describe('DELETE')} ({why})", count))

    def _refuse_the_rest(self) -> None:
        """Edges into a table never reached in order: a cycle (or the DELETE's own table)."""
        for name in sorted(self.tables):
            if name == self.root:
                into = [(p, k) for p, k in self._into(name) if p in self.removed]
                self._refuse(into, "it refers back to the table this DELETE removes rows from")
            elif name not in self.done:
                into = [(p, k) for p, k in self._into(name) if p in self.removed]
                why = "the table is part of a cycle of foreign keys"
                if self.tables[name] is None:
                    why = "the bot cannot see that table"
                self._refuse(into, why)


@dataclass(frozen=True)
class _Saved:
    rows_source: str  # the WITH query holding the rows
    count_key: str
