"""A typed SELECT/INSERT/UPDATE/DELETE rewritten so that, in the very same statement, it
copies what it destroys into its backup table and measures what it did.

    WITH <its own WITH queries>,
         rollback_bot_main AS (DELETE FROM t AS a WHERE ... RETURNING a.*),
         rollback_bot_save_0 AS (INSERT INTO t_backup_... SELECT * FROM rollback_bot_main)
    SELECT <counts, checksums, a sample>

- DELETE: the rows it returns are the rows it removed (the issue's "captured by the
  statement itself"), whatever another session does meanwhile.
- UPDATE (PostgreSQL before 18 cannot return old values): a MATERIALIZED WITH query reads
  the rows its WHERE/FROM select, as they were; every part of one statement sees the same
  snapshot (docs 7.8.4), and in the bot's REPEATABLE READ transaction a row another
  session changes makes the UPDATE fail instead of re-checking a newer version, so with a
  deterministic predicate (bot/sql/allowlist.py and volatility.py refuse the others) both
  select the same rows. The counts, and the primary keys where the UPDATE keeps them, are
  compared after it runs.
- A DELETE's foreign-key actions (ON DELETE CASCADE / SET NULL / SET DEFAULT) change rows of
  other tables at the end of the statement: those rows are read the same way, from the
  same snapshot, and backed up; a cycle, a table reached twice, or an UPDATE of a key other
  tables follow ON UPDATE is refused when it would change any row.
- INSERT and SELECT: counted and sampled.

The statement is printed back from its AST (pglast), checked to parse to the same tree.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from pglast import ast
from pglast.stream import RawStream

from bot.sql.allowlist import RESERVED_PREFIX, DataChange, Refusal, data_changes
from bot.sql.backups import (
    AfterCheck,
    Backup,
    BackupNames,
    checksum_sql,
    count_sql,
    key_row,
)
from bot.sql.dependents import CHANGES_ROWS, ForeignKey, Table
from bot.sql.foreign_key_effects import ForeignKeyEffects, matches
from bot.sql.names import QualifiedName, quote_identifier
from bot.sql.parse import parse_sql

MAIN = "rollback_bot_main"


@dataclass(frozen=True)
class Catalog:
    """What capture needs to know about tables, read in the bot's transaction."""

    table: Callable[[QualifiedName], Table | None]
    referencing: Callable[[QualifiedName], tuple[ForeignKey, ...]]


@dataclass(frozen=True)
class PartPlan:
    """One data-modifying part of the statement (or the SELECT itself) and its count."""

    label: str
    verb: str
    count_key: str
    backup: Backup | None
    triggers: tuple[str, ...] = ()


@dataclass(frozen=True)
class BackupPlan:
    backup: Backup
    count_key: str
    checksum_key: str


@dataclass
class Capture:
    sql: str = ""
    keys: list[str] = field(default_factory=list)
    create: list[str] = field(default_factory=list)
    parts: list[PartPlan] = field(default_factory=list)
    backups: list[BackupPlan] = field(default_factory=list)
    same: list[tuple[str, str, str]] = field(default_factory=list)  # keys that must be equal
    after: list[AfterCheck] = field(default_factory=list)
    # Foreign-key effects the bot cannot back up exactly: refused if their count is not 0.
    refused: list[tuple[str, str]] = field(default_factory=list)
    refusals: list[Refusal] = field(default_factory=list)  # refused whatever the data


def deparse(node: ast.Node) -> str:
    return RawStream()(node)


def round_trips(node: ast.Node) -> bool:
    """The printed statement parses back to the same tree, so what runs is what was
    analysed."""
    try:
        again = parse_sql(deparse(node))
    except Exception:  # noqa: BLE001 - pglast raises several types; any means "no"
        return False
    return len(again) == 1 and again[0].stmt == node


def capture(
    node: ast.Node,
    rows_backups: dict[int, Backup],
    names: BackupNames,
    catalog: Catalog,
    *,
    sample_rows: int,
) -> Capture:
    """The rewritten statement; ``rows_backups`` maps each UPDATE/DELETE part (by its index
    in data_changes) to its backup, ``names`` names the dependents' backups."""
    return _Builder(node, rows_backups, names, catalog).build(sample_rows)


class _Builder:
    def __init__(self, node, rows_backups, names, catalog):
        # A private copy: the parts are changed (RETURNING) while printing.
        self.stmt = parse_sql(deparse(node))[0].stmt
        self.rows_backups = rows_backups
        self.names = names
        self.catalog = catalog
        self.out = Capture()
        self.pieces: list[str] = []
        self.later: list[str] = []
        self.measures: list[tuple[str, str]] = []
        self.facts: dict[int, Table | None] = {}
        self.changed: set[str] = set()
        self.reached: set[str] = set()

    def build(self, sample_rows: int) -> Capture:
        parts = data_changes(self.stmt)
        self.facts = {i: self.catalog.table(p.table) for i, p in enumerate(parts)}
        self.changed = {
            f.name.sql() for i, f in self.facts.items() if f and parts[i].verb != "INSERT"
        }
        with_clause = self.stmt.withClause
        self.stmt.withClause = None
        for cte in with_clause.ctes if with_clause else ():
            index = next((i for i, p in enumerate(parts) if p.node is cte.ctequery), None)
            if index is not None:
                self._part(parts[index], index, cte.ctename)
            self.pieces.append(deparse(cte))
            self._flush()
        self._main(len(parts) - 1)
        self.measure("sample", _sample_sql(sample_rows))
        self.out.keys = [key for key, _ in self.measures]
        recursive = bool(with_clause and with_clause.recursive)
        self.out.sql = (
            ("WITH RECURSIVE " if recursive else "WITH ")
            + ",\n".join(self.pieces)
            + "\nSELECT "
            + ",\n  ".join(f"{sql} AS {quote_identifier(key)}" for key, sql in self.measures)
        )
        return self.out

    def _flush(self) -> None:
        """The WITH queries that read a part's rows go after it (a WITH query may only
        read the ones before it)."""
        self.pieces += self.later
        self.later = []

    def measure(self, key: str, sql: str) -> str:
        self.measures.append((key, sql))
        return key

    def _main(self, index: int) -> None:
        node = self.stmt
        if isinstance(node, ast.InsertStmt | ast.UpdateStmt | ast.DeleteStmt):
            self._part(DataChange(node, None), index, MAIN)
            self.pieces.append(f"{MAIN} AS ({deparse(node)})")
            self._flush()
            return
        self.pieces.append(f"{MAIN} AS MATERIALIZED ({deparse(node)})")
        key = self.measure("count:main", count_sql(MAIN))
        self.out.parts.append(PartPlan("SELECT", "SELECT", key, None))

    def _part(self, part: DataChange, index: int, cte: str) -> None:
        node = part.node
        facts = self.facts[index]
        if facts is not None:
            self._check_table(part, facts)
        alias = _alias(node.relation)
        returned = node.returningClause is not None and cte != MAIN
        if not returned:
            node.returningClause = _returning_all(alias)
        count = self.measure(f"count:{index}", count_sql(quote_identifier(cte)))
        backup = self.rows_backups.get(index)
        triggers = facts.triggers if facts else ()
        self.out.parts.append(PartPlan(part.label(), part.verb, count, backup, triggers))
        if isinstance(node, ast.InsertStmt) or backup is None:
            return
        source = quote_identifier(cte)
        if isinstance(node, ast.UpdateStmt) or returned:
            source = self._before_image(part, index, count, facts, keep_keys=not returned)
        self.save(backup, source, facts, f"save_{index}")
        if isinstance(node, ast.DeleteStmt) and facts is not None:
            ForeignKeyEffects(self, facts, source, backup).add()
        if isinstance(node, ast.UpdateStmt) and facts is not None:
            self._updated_keys(node, facts, source)

    def _check_table(self, part: DataChange, facts: Table) -> None:
        shown = facts.name.display()
        if facts.relkind not in ("r", "p"):
            self.out.refusals.append(
                Refusal(
                    f"{shown} is not a table (relkind {facts.relkind}); option 4 changes"
                    " tables only",
                    "change the table behind it",
                )
            )
        if facts.rules:
            self.out.refusals.append(
                Refusal(
                    f"{shown} has rewrite rules ({', '.join(facts.rules)}) that change what"
                    f" {part.verb} does",
                    "use a reverse migration (option 2)",
                )
            )
        if facts.inheritance_children and part.node.relation.inh:
            self.out.refusals.append(
                Refusal(
                    f"{shown} has inheritance children whose own columns the backup could not hold",
                    f"write {part.verb} ... ONLY {shown}, and change each child separately",
                )
            )
        if any(c.lower().startswith(RESERVED_PREFIX) for c in facts.columns):
            self.out.refusals.append(
                Refusal(f"{shown} has a column named {RESERVED_PREFIX}...", "rename it")
            )

    def _before_image(self, part, index, count, facts, *, keep_keys) -> str:
        """The rows an UPDATE (or a DELETE whose RETURNING the statement reads) will change,
        as they are now, read in the same statement; placed before the part so it may read
        the same WITH queries."""
        name = f"rollback_bot_old_{index}"
        self.pieces.append(f"{name} AS MATERIALIZED ({_rows_select(part.node)})")
        before = self.measure(f"count:old_{index}", count_sql(name))
        self.out.same.append((count, before, f"{part.label()}: rows changed vs rows backed up"))
        key = facts.primary_key if facts else ()
        node = part.node
        targets = {t.name for t in node.targetList} if isinstance(node, ast.UpdateStmt) else set()
        if keep_keys and key and not targets & set(key):
            cte = part.cte or MAIN
            changed = self.measure(
                f"keys:{index}", checksum_sql(quote_identifier(cte), key_row(key))
            )
            kept = self.measure(f"keys:old_{index}", checksum_sql(name, key_row(key)))
            self.out.same.append((changed, kept, f"{part.label()}: primary keys changed"))
        return name

    def save(self, backup: Backup, source: str, facts: Table | None, tag: str) -> None:
        table = facts.name.sql() if facts else backup.source.sql()
        self.out.create.append(
            f"CREATE TABLE {backup.name.sql()} AS SELECT * FROM {table} WITH NO DATA"
        )
        self.later.append(
            f"rollback_bot_{tag} AS (INSERT INTO {backup.name.sql()} SELECT * FROM {source})"
        )
        rows = self.measure(f"rows:{backup.name.sql()}", count_sql(source))
        checksum = self.measure(f"checksum:{backup.name.sql()}", checksum_sql(source))
        self.out.backups.append(BackupPlan(backup, rows, checksum))

    def _updated_keys(self, node: ast.UpdateStmt, facts: Table, source: str) -> None:
        targets = {t.name for t in node.targetList}
        for key in self.catalog.referencing(facts.name):
            if key.on_update in CHANGES_ROWS and targets & set(key.parent_columns):
                count = self.measure(
                    f"refused:{len(self.out.refused)}",
                    f"(SELECT count(*) FROM {key.child.sql()} AS rollback_bot_c"
                    f" WHERE {matches(key, source)})",
                )
                why = "the bot does not back up rows an UPDATE changes through a foreign key"
                self.out.refused.append((f"{key.describe('UPDATE')} ({why})", count))


def _alias(relation: ast.RangeVar) -> str:
    return relation.alias.aliasname if relation.alias else relation.relname


def _returning_all(alias: str) -> ast.ReturningClause:
    star = ast.ColumnRef(fields=(ast.String(sval=alias), ast.A_Star()))
    return ast.ReturningClause(exprs=(ast.ResTarget(val=star),))


def _sample_sql(rows: int) -> str:
    return (
        "(SELECT json_agg(rollback_bot_s)::text FROM"
        f" (SELECT * FROM {MAIN} LIMIT {int(rows)}) AS rollback_bot_s)"
    )


def _rows_select(node: ast.UpdateStmt | ast.DeleteStmt) -> str:
    """SELECT of the rows the statement changes, as they are before it runs."""
    relation = node.relation
    alias = _alias(relation)
    others = node.usingClause if isinstance(node, ast.DeleteStmt) else node.fromClause
    if not others:
        select = ast.SelectStmt(
            targetList=(ast.ResTarget(val=_star(alias)),),
            fromClause=(relation,),
            whereClause=node.whereClause,
            withClause=node.withClause,
        )
        return deparse(select)
    # With USING/FROM a row can match several times: pick the rows by their physical
    # address (tableoid, ctid), which is unique across an inheritance tree.
    inner = ast.SelectStmt(
        targetList=(_column(alias, "tableoid"), _column(alias, "ctid")),
        fromClause=(relation, *others),
        whereClause=node.whereClause,
    )
    outer = parse_sql(
        "SELECT rollback_bot_t.* FROM t AS rollback_bot_t"
        " WHERE (rollback_bot_t.tableoid, rollback_bot_t.ctid) IN (SELECT 1, 2)"
    )[0].stmt
    outer.fromClause = (
        ast.RangeVar(
            schemaname=relation.schemaname,
            relname=relation.relname,
            inh=relation.inh,
            relpersistence="p",
            alias=ast.Alias(aliasname="rollback_bot_t"),
        ),
    )
    outer.whereClause.subselect = inner
    outer.withClause = node.withClause
    return deparse(outer)


def _star(alias: str) -> ast.ColumnRef:
    return ast.ColumnRef(fields=(ast.String(sval=alias), ast.A_Star()))


def _column(alias: str, column: str) -> ast.ResTarget:
    return ast.ResTarget(
        val=ast.ColumnRef(fields=(ast.String(sval=alias), ast.String(sval=column)))
    )
