"""Reverse SQL for schema changes that took effect, last change first.

Used to undo exactly the applied statements of a failed migration (runbook option 1, issue
4) and to write whole reverse migrations (option 2, issue 5). Every generated statement
quotes its identifiers, qualifies names with the schema the diagnosis resolved, uses
IF EXISTS where a repeated run should be harmless, and is parsed again by pglast before it
is returned.

Each step is classed:
- reversible: running it restores the schema and loses nothing;
- data_losing: it drops a column or table that holds data now (the live catalog says so);
  with a backup stamp the step first copies it into a backup table the plan names;
- irreversible: nothing the bot can run restores it (the original dropped data, added an
  enum value, changed rows); the note says why and where the data might still be.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace
from enum import StrEnum
from typing import Protocol

from pglast import ast, parse_sql

from bot.sql.changes import Change, ChangeKind, changes_of, resolved
from bot.sql.column_history import ColumnDefinition, ColumnHistory
from bot.sql.definitions import DefinitionHistory
from bot.sql.diagnosis import Diagnosis, Verdict
from bot.sql.names import QualifiedName, display_name, quote_identifier, quote_literal
from bot.sql.renames import Renames
from bot.sql.statements import split_statements

# PostgreSQL truncates identifiers to NAMEDATALEN - 1 = 63 bytes without an error (docs,
# "Identifiers and Key Words"): the bot shortens backup names itself so the plan names the
# table that really gets created.
IDENTIFIER_MAX_BYTES = 63


class StepClass(StrEnum):
    REVERSIBLE = "reversible"
    DATA_LOSING = "data_losing"
    IRREVERSIBLE = "irreversible"


@dataclass(frozen=True)
class Contents:
    """What an object a reverse step would drop holds now (from the live catalog)."""

    rows: int
    values: int | None = None  # non-null values of a column; None for a whole table
    key_columns: tuple[str, ...] = ()  # the table's primary key, to restore rows by
    columns: tuple[str, ...] = ()  # every column of the table, in order
    # Columns of a user-defined type (enum, domain, composite): a backup keeps them as text,
    # or its column would depend on the type and stop the reverse's DROP TYPE.
    text_columns: frozenset[str] = frozenset()

    @property
    def holds_data(self) -> bool:
        return (self.rows if self.values is None else self.values) > 0


class LiveData(Protocol):
    """The live catalog as the generator asks it (bot.sql.impact implements it)."""

    def contents(self, table: QualifiedName, column: str | None) -> Contents | None: ...

    def backup_of(self, table: QualifiedName, column: str | None) -> QualifiedName | None: ...


@dataclass(frozen=True)
class BackupTable:
    """``CREATE TABLE <name> AS SELECT <key columns>, <column> FROM <source>``: the runbook's
    "Create backup table" (option 4, Safe Column Removal) before a drop."""

    name: QualifiedName
    source: QualifiedName
    column: str | None  # None: the whole table
    contents: Contents | None = None  # the live table's columns and key, when known

    @property
    def selected(self) -> tuple[str, ...]:
        """The columns copied; () means all (``*``)."""
        known = self.contents or Contents(0)
        if self.column is not None and known.key_columns:
            keys = [k for k in known.key_columns if k != self.column]
            return (*keys, self.column)
        # A whole table, or a column of a table without a primary key: every column is
        # kept, so each value stays identifiable. Listed only when some must become text:
        # ``*`` does not depend on the live names (a later rename in the same migration is
        # undone before the copy runs).
        return known.columns if known.text_columns else ()

    @property
    def sql(self) -> str:
        text_columns = self.contents.text_columns if self.contents else frozenset()
        selected = ", ".join(
            f"{quote_identifier(c)}::text AS {quote_identifier(c)}"
            if c in text_columns
            else quote_identifier(c)
            for c in self.selected
        )
        return _checked(
            f"CREATE TABLE {self.name.sql()} AS SELECT {selected or '*'} FROM {self.source.sql()}"
        )


@dataclass(frozen=True)
class ReverseStep:
    """How to undo one change: ``sql`` to run (None when nothing needs to run), or, when
    ``reversible`` is False, the ``note`` says why it cannot be undone. ``backup``: a copy
    taken right before ``sql`` drops data; ``contents``: what is there now."""

    undoes: Change
    sql: str | None
    reversible: bool
    note: str = ""
    backup: BackupTable | None = None
    contents: Contents | None = None
    current: Change | None = None  # ``undoes`` under the names its objects have now

    @property
    def statements(self) -> tuple[str, ...]:
        if not self.reversible or not self.sql:
            return ()
        return (self.backup.sql, self.sql) if self.backup else (self.sql,)

    @property
    def drops_data(self) -> bool:
        """It drops a column or table the original created."""
        dropping = self.undoes.kind in (ChangeKind.ADD_COLUMN, ChangeKind.CREATE_TABLE)
        return dropping and self.reversible and self.sql is not None

    @property
    def classification(self) -> StepClass:
        if not self.reversible:
            return StepClass.IRREVERSIBLE
        if self.drops_data and (self.contents is None or self.contents.holds_data):
            return StepClass.DATA_LOSING  # unknown contents count as data: the safe side
        return StepClass.REVERSIBLE

    @property
    def effect(self) -> str:
        """One line for people: 'drops column users.bio (12,345 non-null values; copied
        first to users_bio_backup_20261126)'."""
        if not self.reversible:
            return f"cannot undo {self.undoes.description}: {self.note}"
        if not self.drops_data:
            text = f"undoes {self.undoes.description}"
            return f"{text} ({self.note})" if self.note else text
        change = self.undoes
        if change.kind == ChangeKind.ADD_COLUMN:
            what = f"column {change.target.display()}.{display_name(change.name)}"
        else:
            what = f"table {change.target.display()}"
        facts = [_counted(self.contents, change.kind == ChangeKind.ADD_COLUMN)]
        if self.backup:
            facts.append(f"copied first to {self.backup.name.display()}")
        return f"drops {what} ({'; '.join(facts)})"


def _counted(contents: Contents | None, column: bool) -> str:
    if contents is None:
        return "contents not checked"
    if column:
        return (
            f"{_number(contents.values or 0, 'non-null value')} in {_number(contents.rows, 'row')}"
        )
    return _number(contents.rows, "row")


def _number(count: int, noun: str) -> str:
    return f"{count:,} {noun}{'' if count == 1 else 's'}"


@dataclass(frozen=True)
class ReversePlan:
    steps: tuple[ReverseStep, ...]  # in the order to run them: last change first

    @property
    def statements(self) -> tuple[str, ...]:
        return tuple(s for step in self.steps for s in step.statements)

    @property
    def sql(self) -> str:
        return "".join(f"{statement};\n" for statement in self.statements)

    @property
    def irreversible(self) -> tuple[ReverseStep, ...]:
        return tuple(step for step in self.steps if not step.reversible)

    @property
    def data_losing(self) -> tuple[ReverseStep, ...]:
        return tuple(s for s in self.steps if s.classification == StepClass.DATA_LOSING)

    @property
    def backups(self) -> tuple[BackupTable, ...]:
        return tuple(step.backup for step in self.steps if step.backup and step.reversible)

    @property
    def complete(self) -> bool:
        """True when running ``sql`` undoes every change."""
        return not self.irreversible

    def script(self, *, lock_timeout: str, statement_timeout: str, title: str = "") -> str:
        """A migration.sql: the timeouts first (a reverse migration waits for ACCESS
        EXCLUSIVE locks on busy tables: fail fast rather than queue every query behind it),
        then each step under a comment saying what it does."""
        lines = [f"-- {_comment(title)}"] if title else []
        lines += [
            f"SET lock_timeout = {quote_literal(lock_timeout)};",
            f"SET statement_timeout = {quote_literal(statement_timeout)};",
        ]
        for step in self.steps:
            if not step.reversible:
                lines += ["", f"-- NOT REVERSED: {_comment(step.effect)}"]
            elif step.statements:
                lines += ["", f"-- {_comment(step.effect)}"]
                lines += [f"{statement};" for statement in step.statements]
        return _checked("\n".join(lines) + "\n")


def _comment(text: str) -> str:
    # A quoted identifier may hold a line break, which would end the -- comment early and
    # turn the rest of the line into SQL.
    return " ".join(text.split())


# ---------------------------------------------------------------------- generation

Taken = tuple[Change, bool]  # a change, and whether it ran (False: nobody can tell)


@dataclass
class _Context:
    columns: ColumnHistory
    definitions: DefinitionHistory
    live: LiveData | None
    backup_names: _BackupNames | None


def reverse_plan(
    diagnosis: Diagnosis,
    *,
    earlier_sql: Sequence[str] = (),
    live: LiveData | None = None,
    backup_stamp: str | None = None,
) -> ReversePlan:
    """Undo the statements the diagnosis found applied; a statement whose effect is unknown
    becomes an irreversible step, since nobody can say whether it ran.

    ``earlier_sql``: the scripts of the migrations applied before, in order; they tell the
    previous type, nullability and default of a column an ALTER COLUMN changed, and the
    definition of an index or constraint a DROP removed. ``live`` and ``backup_stamp``: see
    ``reverse_script``.
    """
    groups: list[tuple[ast.Node, list[Taken]]] = []
    for statement in diagnosis.statements:
        if statement.verdict == Verdict.NOT_APPLIED:
            continue
        ran = statement.verdict == Verdict.APPLIED
        groups.append((statement.statement.node, [(v.change, ran) for v in statement.changes]))
    context = _context(diagnosis.default_schema, earlier_sql, live, backup_stamp)
    return _plan(groups, context)


def reverse_script(
    sql: str,
    *,
    default_schema: str = "public",
    earlier_sql: Sequence[str] = (),
    live: LiveData | None = None,
    backup_stamp: str | None = None,
) -> ReversePlan:
    """Undo a whole script that ran to completion (a migration that succeeded).

    ``live``: the live catalog, asked what each dropped column or table holds now (which
    makes a step data_losing) and whether a backup table exists for what the original
    dropped. ``backup_stamp`` (UTC yyyymmdd): every drop of a column or table is preceded by
    a copy into ``<table>_<column>_backup_<stamp>`` / ``<table>_backup_<stamp>``.
    """
    groups = [
        (statement.node, [(resolved(change, default_schema), True) for change in changes])
        for statement in split_statements(sql)
        if (changes := changes_of(statement.node))
    ]
    return _plan(groups, _context(default_schema, earlier_sql, live, backup_stamp))


def _context(
    default_schema: str,
    earlier_sql: Iterable[str],
    live: LiveData | None,
    backup_stamp: str | None,
) -> _Context:
    columns, definitions = ColumnHistory(default_schema), DefinitionHistory(default_schema)
    for script in earlier_sql:
        columns.replay(script)
        definitions.replay(script)
    names = _BackupNames(backup_stamp) if backup_stamp else None
    return _Context(columns, definitions, live, names)


def _plan(groups: list[tuple[ast.Node, list[Taken]]], context: _Context) -> ReversePlan:
    flat = [taken for _, group in groups for taken in group]
    now = iter(_current_names(flat))
    steps = []
    for node, group in groups:
        for change, ran in group:
            steps.append(_reverse(change, ran, next(now), context))
            if ran:
                context.columns.apply(change)
        if all(ran for _, ran in group):
            context.definitions.apply(node)
    return ReversePlan(tuple(reversed(steps)))


def _current_names(flat: list[Taken]) -> list[Change]:
    """Each change with the names its objects have now: later renames in the script moved
    them (CREATE TABLE "Post" ... RENAME TO "Article": the rows are in "Article")."""
    renames, names = Renames(), []
    for change, ran in reversed(flat):
        now = renames.current(change)
        if ran:
            renames.record(change, now)
        names.append(now)
    return names[::-1]


def _reverse(change: Change, ran: bool, now: Change, context: _Context) -> ReverseStep:
    if not ran:
        return _irreversible(change, "nobody can tell whether it ran")
    if change.kind == ChangeKind.DROP_INDEX:
        return _recreate_index(change, context.definitions)
    if change.kind == ChangeKind.DROP_CONSTRAINT:
        return _recreate_constraint(change, context.definitions)
    before = context.columns.get(change.target, change.name) if change.name else None
    step = reverse_step(change, before)
    if not step.reversible:
        return _pointing_to_backup(step, context.live)
    if step.drops_data:
        return _with_backup(step, now, context)
    return step


def reverse_step(change: Change, before: ColumnDefinition | None = None) -> ReverseStep:
    """The undo of one applied change; ``before`` is the column's previous definition."""
    reverser = _REVERSERS.get(change.kind)
    if reverser is None:
        return _irreversible(change, _IRREVERSIBLE.get(change.kind, _UNSUPPORTED))
    return reverser(change, before)


def _with_backup(step: ReverseStep, now: Change, context: _Context) -> ReverseStep:
    change = step.undoes
    column = change.name if change.kind == ChangeKind.ADD_COLUMN else None
    now_column = now.name if column else None
    contents = context.live.contents(now.target, now_column) if context.live else None
    backup = None
    if context.backup_names is not None:
        name = context.backup_names(change.target, column)
        backup = BackupTable(name, change.target, column, contents)
    return replace(step, backup=backup, contents=contents, current=now)


def _pointing_to_backup(step: ReverseStep, live: LiveData | None) -> ReverseStep:
    change = step.undoes
    if live is None or change.kind not in _DATA_GONE:
        return step
    column = change.name if change.kind == ChangeKind.DROP_COLUMN else None
    backup = live.backup_of(change.target, column)
    if backup is None:
        return step
    reason = _IRREVERSIBLE[change.kind].removesuffix(_BACKUP)
    return replace(
        step,
        note=f"{reason}; backup table {backup.display()} holds a copy: restore from it with"
        " `/rollback sql` (option 4), or use point-in-time recovery (option 3)",
    )


class _BackupNames:
    """``<table>_<column>_backup_<stamp>`` / ``<table>_backup_<stamp>``, at most 63 bytes,
    unique within one plan."""

    def __init__(self, stamp: str):
        self.stamp = stamp
        self.taken: set[QualifiedName] = set()

    def __call__(self, table: QualifiedName, column: str | None) -> QualifiedName:
        base = f"{table.name}_{column}" if column else table.name
        n = 1
        while True:
            suffix = f"_backup_{self.stamp}" + (f"_{n}" if n > 1 else "")
            room = IDENTIFIER_MAX_BYTES - len(suffix.encode())
            name = QualifiedName(table.schema, _truncate_bytes(base, room) + suffix)
            if name not in self.taken:
                self.taken.add(name)
                return name
            n += 1


def backup_name(table: QualifiedName, column: str | None, stamp: str) -> QualifiedName:
    """The backup table a revert creates before dropping ``table`` (or its ``column``)."""
    return _BackupNames(stamp)(table, column)


def _truncate_bytes(text: str, limit: int) -> str:
    # Cut on a character boundary: a multi-byte UTF-8 character is dropped whole.
    return text.encode()[:limit].decode(errors="ignore")


# ------------------------------------------------------------------- building blocks


def _checked(sql: str) -> str:
    parse_sql(sql)  # raises ParseError: the generator must never emit SQL that does not parse
    return sql


def _step(change: Change, sql: str, note: str = "") -> ReverseStep:
    return ReverseStep(change, _checked(sql), True, note)


def _irreversible(change: Change, reason: str) -> ReverseStep:
    return ReverseStep(change, None, False, reason)


def _renamed_to(change: Change) -> QualifiedName:
    return QualifiedName(change.target.schema, change.new_name)


def _alter_column(change: Change, action: str) -> str:
    return (
        f"ALTER TABLE {change.target.sql()} ALTER COLUMN {quote_identifier(change.name)} {action}"
    )


_UNSUPPORTED = "the bot does not know how to undo this statement"
_BACKUP = "; restore it from a backup (runbook option 3)"
_IRREVERSIBLE = {
    ChangeKind.DROP_TABLE: "dropping a table destroyed its rows" + _BACKUP,
    ChangeKind.DROP_COLUMN: "dropping a column destroyed its values" + _BACKUP,
    ChangeKind.DROP_INDEX: "the index definition is gone and no earlier migration defines it;"
    " recreate it by hand",
    ChangeKind.DROP_CONSTRAINT: "the constraint definition is gone and no earlier migration"
    " defines it; recreate it by hand",
    ChangeKind.DROP_TYPE: "the type definition and any column of that type are gone" + _BACKUP,
    ChangeKind.ADD_ENUM_VALUE: "PostgreSQL cannot remove a value from an enum "
    "(ALTER TYPE has no DROP VALUE); leave the value unused, or restore from a backup"
    " (runbook option 3)",
    ChangeKind.DROP_SCHEMA: "the schema and what it held are gone" + _BACKUP,
    ChangeKind.DROP_EXTENSION: "dropping an extension drops the objects that used it" + _BACKUP,
    ChangeKind.DATA_CHANGE: "a data change cannot be undone from its SQL" + _BACKUP,
}
# Originals whose lost data a backup table may still hold.
_DATA_GONE = frozenset({ChangeKind.DROP_TABLE, ChangeKind.DROP_COLUMN, ChangeKind.DATA_CHANGE})


# ---------------------------------------------------------------------- reversers


def _recreate_index(change: Change, definitions: DefinitionHistory) -> ReverseStep:
    definition = definitions.index(change.target)
    if definition is None:
        return _irreversible(change, _IRREVERSIBLE[ChangeKind.DROP_INDEX])
    return _step(change, definition, "as the migration that created it defined it")


def _recreate_constraint(change: Change, definitions: DefinitionHistory) -> ReverseStep:
    clause = definitions.constraint(change.target, change.name)
    if clause is None:
        return _irreversible(change, _IRREVERSIBLE[ChangeKind.DROP_CONSTRAINT])
    return _step(
        change,
        f"ALTER TABLE {change.target.sql()} ADD {clause}",
        "as the migration that created it defined it",
    )


def _drop_created(keyword: str) -> Callable[[Change, ColumnDefinition | None], ReverseStep]:
    # No CASCADE: if something created since depends on the object, PostgreSQL refuses
    # instead of silently dropping it too (the runbook's DROP TABLE ... CASCADE is riskier).
    def reverse(change: Change, before: ColumnDefinition | None) -> ReverseStep:
        return _step(change, f"DROP {keyword} IF EXISTS {change.target.sql()}")

    return reverse


def _rename_back(keyword: str) -> Callable[[Change, ColumnDefinition | None], ReverseStep]:
    def reverse(change: Change, before: ColumnDefinition | None) -> ReverseStep:
        new = _renamed_to(change).sql()
        return _step(
            change, f"ALTER {keyword} {new} RENAME TO {quote_identifier(change.target.name)}"
        )

    return reverse


def _rename_member_back(keyword: str) -> Callable[[Change, ColumnDefinition | None], ReverseStep]:
    def reverse(change: Change, before: ColumnDefinition | None) -> ReverseStep:
        new, old = quote_identifier(change.new_name), quote_identifier(change.name)
        return _step(change, f"ALTER TABLE {change.target.sql()} RENAME {keyword} {new} TO {old}")

    return reverse


def _drop_added_column(change: Change, before: ColumnDefinition | None) -> ReverseStep:
    column = quote_identifier(change.name)
    return _step(change, f"ALTER TABLE {change.target.sql()} DROP COLUMN IF EXISTS {column}")


def _drop_added_constraint(change: Change, before: ColumnDefinition | None) -> ReverseStep:
    if change.name is None:
        return _irreversible(change, "the constraint has no name: PostgreSQL chose one")
    constraint = quote_identifier(change.name)
    return _step(
        change, f"ALTER TABLE {change.target.sql()} DROP CONSTRAINT IF EXISTS {constraint}"
    )


def _unknown_before(change: Change, what: str) -> ReverseStep:
    return _irreversible(
        change,
        f"the previous {what} of {change.target.display()}.{change.name} is not known "
        "(no earlier migration defines it)",
    )


def _restore_type(change: Change, before: ColumnDefinition | None) -> ReverseStep:
    if before is None or before.type_sql is None:
        return _unknown_before(change, "type")
    column = quote_identifier(change.name)
    action = f"SET DATA TYPE {before.type_sql} USING {column}::{before.type_sql}"
    return _step(change, _alter_column(change, action), "fails if a value does not convert back")


def _restore_nullability(change: Change, before: ColumnDefinition | None) -> ReverseStep:
    if before is None or before.not_null is None:
        return _unknown_before(change, "nullability")
    if before.not_null == (change.kind == ChangeKind.SET_NOT_NULL):
        return ReverseStep(change, None, True, "the column already was like this before")
    if before.not_null:
        return _step(
            change, _alter_column(change, "SET NOT NULL"), "fails if NULLs were written since"
        )
    return _step(change, _alter_column(change, "DROP NOT NULL"))


def _restore_default(change: Change, before: ColumnDefinition | None) -> ReverseStep:
    if before is None or not before.default_known:
        return _unknown_before(change, "default")
    if before.default_sql is None:
        return _step(change, _alter_column(change, "DROP DEFAULT"))
    return _step(change, _alter_column(change, f"SET DEFAULT {before.default_sql}"))


def _drop_unqualified(keyword: str) -> Callable[[Change, ColumnDefinition | None], ReverseStep]:
    def reverse(change: Change, before: ColumnDefinition | None) -> ReverseStep:
        return _step(change, f"DROP {keyword} IF EXISTS {quote_identifier(change.target.name)}")

    return reverse


_REVERSERS: dict[ChangeKind, Callable[[Change, ColumnDefinition | None], ReverseStep]] = {
    ChangeKind.CREATE_TABLE: _drop_created("TABLE"),
    ChangeKind.CREATE_INDEX: _drop_created("INDEX"),
    ChangeKind.CREATE_TYPE: _drop_created("TYPE"),
    ChangeKind.RENAME_TABLE: _rename_back("TABLE"),
    ChangeKind.RENAME_INDEX: _rename_back("INDEX"),
    ChangeKind.RENAME_TYPE: _rename_back("TYPE"),
    ChangeKind.RENAME_COLUMN: _rename_member_back("COLUMN"),
    ChangeKind.RENAME_CONSTRAINT: _rename_member_back("CONSTRAINT"),
    ChangeKind.ADD_COLUMN: _drop_added_column,
    ChangeKind.ADD_CONSTRAINT: _drop_added_constraint,
    ChangeKind.ALTER_COLUMN_TYPE: _restore_type,
    ChangeKind.SET_NOT_NULL: _restore_nullability,
    ChangeKind.DROP_NOT_NULL: _restore_nullability,
    ChangeKind.SET_DEFAULT: _restore_default,
    ChangeKind.DROP_DEFAULT: _restore_default,
    ChangeKind.CREATE_SCHEMA: _drop_unqualified("SCHEMA"),
    ChangeKind.CREATE_EXTENSION: _drop_unqualified("EXTENSION"),
}
