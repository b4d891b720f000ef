"""Backup tables: their names, how whole-table and column copies are taken, and the check
that each one holds exactly what was destroyed.

A backup is ``<table>_backup_<UTC stamp>`` (the runbook's "Safe Column Removal"), created in
the bot's transaction, so it exists only if the change is committed. What a backup must
hold is measured where it is destroyed (a count and a checksum of the rows, in the same
statement or, for a whole table, under a lock taken before the snapshot); after the whole
script has run, each backup table is measured again and must match before Commit is
offered.
"""

from __future__ import annotations

from dataclasses import dataclass

from bot.errors import UserError
from bot.sql.names import QualifiedName, quote_identifier
from bot.text import plural

# PostgreSQL truncates identifiers to NAMEDATALEN - 1 = 63 bytes (it would silently shorten
# a longer backup name, so the bot shortens it itself and shows the real name).
IDENTIFIER_MAX_BYTES = 63
ROW_ALIAS = "rollback_bot_r"


@dataclass(frozen=True)
class Backup:
    """A copy of what a statement destroys."""

    # "rows": the rows an UPDATE/DELETE changes, captured by the statement itself;
    # "dependents": rows a foreign key's ON DELETE action changes in another table;
    # "table": every row (DROP TABLE, TRUNCATE); "columns": primary key + the columns.
    kind: str
    source: QualifiedName
    name: QualifiedName
    columns: tuple[str, ...] = ()
    # IF EXISTS in the statement: a missing table or column is skipped, not an error.
    missing_ok: bool = False
    why: str = ""  # for "dependents": the foreign key and its action

    def describe(self) -> str:
        what = {
            "table": "every row",
            "rows": "the rows it changes, as they were",
            "columns": "primary key + " + ", ".join(self.columns),
            "dependents": f"the rows {self.why} changes",
        }[self.kind]
        return f"{self.name.display()} ({what} of {self.source.display()})"


class BackupNames:
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


def count_sql(source: str) -> str:
    return f"(SELECT count(*) FROM {source} AS rollback_bot_n)"


def checksum_sql(source: str, row: str = ROW_ALIAS) -> str:
    """An md5 of the rows of ``source`` that does not depend on their order: each row's
    text form hashed, the hashes sorted and hashed. ``row`` is the whole row (default) or
    a ROW(...) of some of its columns, over the alias rollback_bot_r."""
    return (
        "(SELECT md5(coalesce(string_agg(rollback_bot_h, '' ORDER BY rollback_bot_h), ''))"
        f" FROM (SELECT md5(({row})::text) AS rollback_bot_h FROM {source} AS {ROW_ALIAS})"
        " AS rollback_bot_x)"
    )


def key_row(columns: tuple[str, ...]) -> str:
    return "ROW(" + ", ".join(f"{ROW_ALIAS}.{quote_identifier(c)}" for c in columns) + ")"


@dataclass(frozen=True)
class AfterCheck:
    """A count read after the statement, which must equal measure[base] - measure[minus]
    (base None: zero)."""

    sql: str
    base: str | None
    minus: str | None
    what: str


@dataclass(frozen=True)
class Measured:
    """What a backup must hold: as many rows, with the same checksum."""

    rows: int
    checksum: str


class BackupMismatch(UserError):
    """A backup does not hold exactly what was destroyed: nothing is committed."""


def measure(tx, source: str) -> Measured:
    rows, checksum = tx.bot(f"SELECT {count_sql(source)}, {checksum_sql(source)}").fetchone()
    return Measured(rows, checksum)


def verify(tx, backup: Backup, expected: Measured) -> Measured:
    """The backup table measured again; a difference aborts the run."""
    found = measure(tx, backup.name.sql())
    if found != expected:
        raise BackupMismatch(
            f"The backup {backup.name.display()} does not hold exactly what was destroyed in"
            f" {backup.source.display()}: {plural(found.rows, 'row')} with checksum"
            f" {found.checksum[:12]}, expected {plural(expected.rows, 'row')} with checksum"
            f" {expected.checksum[:12]}. The transaction was rolled back; nothing was"
            " committed.",
            "Something else changed the backup or the table while the SQL ran (a later"
            " statement, a trigger). Check the SQL, then start again.",
        )
    return found


def copy_select(backup: Backup, primary_key: tuple[str, ...]) -> str:
    """The SELECT a whole-table or column backup copies (the columns with the primary key,
    the runbook's "Safe Column Removal"; a table without one is copied whole, since the
    column alone could not be matched back)."""
    if backup.kind == "columns" and primary_key:
        wanted = list(dict.fromkeys([*primary_key, *backup.columns]))
        listed = ", ".join(quote_identifier(c) for c in wanted)
        return f"SELECT {listed} FROM {backup.source.sql()}"
    return f"SELECT * FROM {backup.source.sql()}"
