"""What the catalog says about a table a typed statement changes: what it is, its primary key,
and the rows of other tables its foreign keys change with it (ON DELETE CASCADE / SET NULL /
SET DEFAULT, ON UPDATE ..., TRUNCATE ... CASCADE).

Read inside the bot's transaction, so tables and constraints the same script created earlier
are seen too.
"""

from __future__ import annotations

from dataclasses import dataclass

import psycopg

from bot.sql.names import QualifiedName

# pg_constraint.confdeltype / confupdtype (docs, pg_constraint).
ACTIONS = {"c": "CASCADE", "n": "SET NULL", "d": "SET DEFAULT", "a": "NO ACTION", "r": "RESTRICT"}
CHANGES_ROWS = ("c", "n", "d")


@dataclass(frozen=True)
class Table:
    name: QualifiedName  # schema-qualified, as the catalog resolved it
    relkind: str
    primary_key: tuple[str, ...]
    columns: tuple[str, ...]
    rules: tuple[str, ...]  # rewrite rules (a DO INSTEAD rule changes what a statement does)
    triggers: tuple[str, ...]  # user triggers: they run when rows change
    inheritance_children: bool  # children that are not partitions (they may have more columns)


@dataclass(frozen=True)
class ForeignKey:
    name: str
    child: QualifiedName
    child_columns: tuple[str, ...]
    parent: QualifiedName
    parent_columns: tuple[str, ...]
    on_delete: str  # a key of ACTIONS
    on_update: str

    def describe(self, event: str) -> str:
        action = ACTIONS[self.on_delete if event == "DELETE" else self.on_update]
        columns = ", ".join(self.child_columns)
        return f"{self.child.display()} ({columns}) ON {event} {action}"


_TABLE = """
SELECT n.nspname, c.relname, c.relkind,
  ARRAY(SELECT a.attname::text FROM pg_index i
        JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = ANY (i.indkey)
        WHERE i.indrelid = c.oid AND i.indisprimary ORDER BY array_position(i.indkey, a.attnum)),
  ARRAY(SELECT a.attname::text FROM pg_attribute a WHERE a.attrelid = c.oid AND a.attnum > 0
        AND NOT a.attisdropped ORDER BY a.attnum),
  ARRAY(SELECT r.rulename::text FROM pg_rewrite r WHERE r.ev_class = c.oid
        AND r.rulename <> '_RETURN' ORDER BY 1),
  ARRAY(SELECT t.tgname::text FROM pg_trigger t WHERE t.tgrelid = c.oid AND NOT t.tgisinternal
        ORDER BY 1),
  EXISTS (SELECT 1 FROM pg_inherits h JOIN pg_class k ON k.oid = h.inhrelid
          WHERE h.inhparent = c.oid AND NOT k.relispartition)
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE c.oid = to_regclass(%s)
"""

# Foreign keys that reference the table (the top constraint of a partitioned one only).
_REFERENCING = """
SELECT con.conname, cn.nspname, cc.relname,
  ARRAY(SELECT a.attname::text FROM unnest(con.conkey) WITH ORDINALITY k(n, o)
        JOIN pg_attribute a ON a.attrelid = con.conrelid AND a.attnum = k.n ORDER BY k.o),
  pn.nspname, pc.relname,
  ARRAY(SELECT a.attname::text FROM unnest(con.confkey) WITH ORDINALITY k(n, o)
        JOIN pg_attribute a ON a.attrelid = con.confrelid AND a.attnum = k.n ORDER BY k.o),
  con.confdeltype, con.confupdtype
FROM pg_constraint con
JOIN pg_class cc ON cc.oid = con.conrelid JOIN pg_namespace cn ON cn.oid = cc.relnamespace
JOIN pg_class pc ON pc.oid = con.confrelid JOIN pg_namespace pn ON pn.oid = pc.relnamespace
WHERE con.contype = 'f' AND con.conparentid = 0 AND con.confrelid = to_regclass(%s)
ORDER BY cn.nspname, cc.relname, con.conname
"""


def table(conn: psycopg.Connection, name: QualifiedName) -> Table | None:
    row = conn.execute(_TABLE, (name.sql(),)).fetchone()
    if row is None:
        return None
    schema, relname, relkind, key, columns, rules, triggers, children = row
    return Table(
        QualifiedName(schema, relname),
        relkind,
        tuple(key),
        tuple(columns),
        tuple(rules),
        tuple(triggers),
        children,
    )


def referencing(conn: psycopg.Connection, name: QualifiedName) -> tuple[ForeignKey, ...]:
    return tuple(
        ForeignKey(
            con,
            QualifiedName(cschema, ctable),
            tuple(ccols),
            QualifiedName(pschema, ptable),
            tuple(pcols),
            on_delete,
            on_update,
        )
        for con, cschema, ctable, ccols, pschema, ptable, pcols, on_delete, on_update in (
            conn.execute(_REFERENCING, (name.sql(),))
        )
    )


def truncate_closure(conn: psycopg.Connection, tables: list[QualifiedName]) -> list[QualifiedName]:
    """The tables TRUNCATE ... CASCADE also empties: every table with a foreign key to one
    of them, recursively (any ON DELETE action: TRUNCATE does not look at it)."""
    seen = {t.sql() for t in tables}
    found: list[QualifiedName] = []
    queue = list(tables)
    while queue:
        for key in referencing(conn, queue.pop(0)):
            if key.child.sql() not in seen:
                seen.add(key.child.sql())
                found.append(key.child)
                queue.append(key.child)
    return found
