"""Reverse SQL for schema changes that took effect, last change first.

Used to undo exactly the applied statements of a failed migration (runbook option 1) and
to write whole reverse migrations (option 2). The migration is replayed on the schema model
(bot.sql.timeline); each change is undone from the states around it (bot.sql.reversers);
every generated statement quotes its identifiers, qualifies names, uses IF EXISTS where a
repeated run should be harmless, is parsed again by pglast and replayed on the model of the
schema as the revert leaves it, so that a reverse that would fail is never offered; and the
schema the whole plan leaves is compared, by definition, with the schema before the
migration: what would differ is named, and the plan is refused.

A revert file runs as Prisma runs a migration: the whole script as one simple query, one
implicit transaction. So nothing non-transactional is generated: a dropped index is built
again without CONCURRENTLY, with the lock that takes said in its step.

Each step is classed:
- reversible: running it restores the schema and loses nothing (an enum value PostgreSQL
  cannot drop is left in place, and the step says so);
- data_losing: it drops a column or table that holds data now (the live catalog says so);
  with a backup stamp the step first copies it into a backup table the plan names;
- irreversible: nothing the bot can run restores it (the original dropped data, changed
  rows, ran procedural code); the note says why and where the data might still be.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from enum import StrEnum
from functools import cached_property
from typing import Protocol

from bot.sql.changes import Change, ChangeKind
from bot.sql.diagnosis import Diagnosis, Verdict, judge
from bot.sql.gc_pause import gc_paused
from bot.sql.model_replay import ReplayError, apply_statement
from bot.sql.names import QualifiedName, display_name, quote_identifier, quote_literal
from bot.sql.observations import compatible, describe, facts_touched, model_value
from bot.sql.parse import parse_sql
from bot.sql.reversers import BACKUP_HINT, IRREVERSIBLE, NEEDS_DROPPED, Moment, undo
from bot.sql.schema_model import UNKNOWN, Table
from bot.sql.timeline import Timeline, migration_timeline
from bot.sql.type_names import TypeRef

# PostgreSQL truncates identifiers to NAMEDATALEN - 1 = 63 bytes without an error (docs,
# "Identifiers and Key Words"): the bot shortens backup names itself so the plan names the
# table that really gets created.
IDENTIFIER_MAX_BYTES = 63
# A statement the diagnosis could not place before or after the failure.
UNKNOWN_WHETHER_IT_RAN = "nobody can tell whether it ran"
# A step that cannot be undone only because an earlier one (run before it) cannot.
FOLLOWS = "which an undo above that cannot run would have restored"


class StepClass(StrEnum):
    REVERSIBLE = "reversible"
    DATA_LOSING = "data_losing"
    IRREVERSIBLE = "irreversible"


@dataclass(frozen=True)
class Contents:
    """What an object a reverse step would drop holds now (from the live catalog), with the
    table's columns as they are when the step runs."""

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
    contents: Contents | None = None  # the table's columns and key when the step runs

    @property
    def selected(self) -> tuple[str, ...]:
        """The columns copied; () means all (``*``)."""
        known = self.contents or Contents(0)
        if self.column is not None and known.key_columns:
            keys = [k for k in known.key_columns if k != self.column]
            return (*keys, self.column)
        # A whole table, or a column of a table without a primary key: every column is
        # kept, so each value stays identifiable. Listed only when some must become text.
        return known.columns if known.text_columns else ()

    @cached_property  # checked by parsing it: once, not at every read of the plan
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
    taken right before ``sql`` drops data; ``contents``: what is there now; ``extra``: more
    statements the undo needs (an index a key had absorbed, NOT NULL a key had implied);
    ``residue``: what stays behind on purpose (an enum value)."""

    undoes: Change
    sql: str | None
    reversible: bool
    note: str = ""
    backup: BackupTable | None = None
    contents: Contents | None = None
    current: Change | None = None  # ``undoes`` under the names its objects have now
    extra: tuple[str, ...] = ()
    residue: str | None = None

    @property
    def statements(self) -> tuple[str, ...]:
        if not self.reversible or not self.sql:
            return ()
        main = (self.backup.sql, self.sql) if self.backup else (self.sql,)
        return (*main, *self.extra)

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
        if self.residue:
            return f"leaves {self.residue} in place: {self.note}"
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
    def residues(self) -> tuple[ReverseStep, ...]:
        return tuple(step for step in self.steps if step.residue and step.reversible)

    @property
    def complete(self) -> bool:
        """True when running ``sql`` undoes every change (residues aside)."""
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
            elif step.residue:
                lines += ["", f"-- LEFT IN PLACE: {_comment(step.effect)}"]
            elif step.statements:
                lines += ["", f"-- {_comment(step.effect)}"]
                lines += [f"{statement};" for statement in step.statements]
        return _checked("\n".join(lines) + "\n")


def _comment(text: str) -> str:
    # A quoted identifier may hold a line break, which would end the -- comment early and
    # turn the rest of the line into SQL.
    return " ".join(text.split())


# ---------------------------------------------------------------------- generation


@gc_paused
def reverse_plan(
    diagnosis: Diagnosis,
    *,
    earlier_sql: Sequence[str] | None = None,
    live: LiveData | None = None,
    backup_stamp: str | None = None,
) -> ReversePlan:
    """Undo the statements the diagnosis found applied; a statement whose effect is unknown
    becomes an irreversible step, since nobody can say whether it ran.

    The diagnosis carries the model of the schema it judged against. ``earlier_sql``: only
    for a diagnosis made without the history; the scripts of the migrations applied before,
    which tell the previous definitions (the diagnosis is judged again with them).
    """
    timeline = diagnosis.timeline
    if timeline is None:
        return ReversePlan(())
    if earlier_sql is not None and not timeline.states[0].absent_known:
        script = "".join(f"{s.statement.text};\n" for s in timeline.statements)
        timeline = migration_timeline(
            script, default_schema=timeline.default_schema, earlier_sql=earlier_sql
        )
        diagnosis = judge(timeline, diagnosis.live)
    if diagnosis.statements and not diagnosis.points:
        reason = "the catalog matches no point of the migration: something changed it since"
        return ReversePlan(
            tuple(
                _irreversible(c.change, reason)
                for s in reversed(diagnosis.statements)
                for c in reversed(s.changes)
            )
        )
    ran = [_ran(s.verdict) for s in diagnosis.statements]
    return _Planner(timeline, ran, live, backup_stamp).plan()


def _ran(verdict: Verdict) -> bool | None:
    return {Verdict.APPLIED: True, Verdict.NOT_APPLIED: False}.get(verdict)


@gc_paused
def reverse_script(
    sql: str,
    *,
    default_schema: str = "public",
    earlier_sql: Sequence[str] | None = (),
    live: LiveData | None = None,
    backup_stamp: str | None = None,
) -> ReversePlan:
    """Undo a whole script that ran to completion (a migration that succeeded).

    ``earlier_sql``: the scripts applied before it, in order (() : none, the schema was
    empty; None: not known). ``live``: the live catalog, asked what each dropped column or
    table holds now (which makes a step data_losing) and whether a backup table exists for
    what the original dropped. ``backup_stamp`` (UTC yyyymmdd): every drop of a column or
    table is preceded by a copy into ``<table>_<column>_backup_<stamp>`` /
    ``<table>_backup_<stamp>``.
    """
    timeline = migration_timeline(
        sql,
        default_schema=default_schema,
        earlier_sql=list(earlier_sql) if earlier_sql is not None else None,
    )
    ran = [True] * len(timeline.statements)
    return _Planner(timeline, ran, live, backup_stamp).plan()


class _Planner:
    def __init__(
        self,
        timeline: Timeline,
        ran: list[bool | None],
        live: LiveData | None,
        backup_stamp: str | None,
    ):
        self.timeline = timeline
        self.ran = ran
        self.live = live
        self.backup_names = _BackupNames(backup_stamp) if backup_stamp else None
        reached = max((i + 1 for i, r in enumerate(ran) if r is not False), default=0)
        self.live_state = timeline.states[reached]  # where the database is now
        self.now = self.live_state.fork()  # where the revert has got to
        self.steps: list[ReverseStep] = []
        self.facts: set = set()
        self.markers: set = set()  # what the migration and its reverse touched in the model

    @gc_paused
    def plan(self) -> ReversePlan:
        for position in range(len(self.ran) - 1, -1, -1):
            if self.ran[position] is False:
                continue
            effect = self.timeline.statements[position]
            self.markers.update(*effect.markers)
            for change in reversed(effect.changes):
                step = self._step(position, change)
                if self.ran[position] is None:
                    step = _whether_or_not(step)
                self.steps.append(step)
        if self.steps and all(step.reversible for step in self.steps):
            self._check_exact()
        return ReversePlan(tuple(self.steps))

    def _step(self, position: int, change: Change) -> ReverseStep:
        states = self.timeline.states
        moment = Moment(
            change,
            self.timeline.statements[position].statement.node,
            states[position],
            states[position + 1],
            states[0],
            self.now,
        )
        result = undo(moment)
        if not result.reversible:
            note = result.note
            if note.startswith(NEEDS_DROPPED) and any(not s.reversible for s in self.steps):
                note += ", " + FOLLOWS
            return _pointing_to_backup(_irreversible(change, note), self.live)
        step = ReverseStep(
            change,
            result.sql[0] if result.sql else None,
            True,
            result.note,
            extra=tuple(result.sql[1:]),
            residue=result.residue,
        )
        if result.drops is not None:
            step = self._with_backup(step, moment, result.drops)
        failure = self._run_on_model(step)
        if failure is not None:
            if any(not s.reversible for s in self.steps):
                failure += ", " + FOLLOWS
            return _irreversible(change, f"its reverse would fail: {failure}")
        return step

    def _run_on_model(self, step: ReverseStep) -> str | None:
        """Parses each statement again (the generator never emits SQL that does not parse)
        and replays it on the model of the schema as the revert leaves it."""
        if not step.statements:
            return None
        for raw in parse_sql(";\n".join(step.statements)):
            try:
                touched = apply_statement(self.now, raw.stmt, strict=True)
            except ReplayError as exc:
                return str(exc)
            self.markers.update(*touched)
        return None

    def _with_backup(self, step: ReverseStep, moment: Moment, drops) -> ReverseStep:
        table_ident, column_ident = drops
        live_table = self.live_state.table_by_ident(table_ident)
        # The table as the revert has left it when this step runs: later statements, and
        # later subcommands of the same statement, are already undone.
        step_table = self.now.table_by_ident(table_ident) or moment.after.table_by_ident(
            table_ident
        )
        if live_table is None or step_table is None:
            return step
        live_column = live_table.column_by_ident(column_ident) if column_ident else None
        step_column = step_table.column_by_ident(column_ident) if column_ident else None
        current = replace(
            step.undoes,
            target=live_table.name,
            name=live_column.name if live_column else step.undoes.name,
        )
        contents = None
        if self.live is not None:
            found = self.live.contents(live_table.name, live_column.name if live_column else None)
            contents = _at_step(found, live_table, step_table) if found else None
        backup = None
        if self.backup_names is not None:
            column = step_column.name if step_column else None
            home = step.undoes.target
            if home.schema not in self.timeline.states[0].schemas:
                # The migration created that schema and its undo drops it: keep the copy
                # where it survives.
                home = QualifiedName(self.timeline.default_schema, home.name)
            name = self.backup_names(home, column)
            backup = BackupTable(name, step_table.name, column, contents)
        return replace(step, backup=backup, contents=contents, current=current)

    def _check_exact(self) -> None:
        """The schema the plan leaves, compared with the schema before the migration."""
        start = self.timeline.states[0]
        # The facts anything touched, forward or back, named as at the start or the end.
        self.facts = facts_touched(start, self.now, self.markers)
        kept = {backup.name for step in self.steps if (backup := step.backup)}
        differences: dict[int, list[str]] = {}
        for key in sorted(self.facts, key=repr):
            if key[1] in kept:
                continue  # a backup table the plan makes on purpose
            expected, left = model_value(start, key), model_value(self.now, key)
            # Both sides come from the model, spelled alike: a difference is a real one.
            if expected is UNKNOWN or left is UNKNOWN or compatible(key[0], expected, left):
                continue
            text = f"{describe(key, left)} (before the migration: {describe(key, expected)})"
            differences.setdefault(self._blame(key), []).append(text)
        for index, texts in differences.items():
            step = self.steps[index]
            if step.reversible:
                reason = "the reverse would not restore the schema exactly: " + "; ".join(texts)
                self.steps[index] = _irreversible(step.undoes, reason)

    def _blame(self, key) -> int:
        """The step of the earliest change that touched the fact (run last), else the last
        step."""
        order = [
            (position, change)
            for position in range(len(self.ran))
            if self.ran[position]
            for change, facts in zip(
                self.timeline.statements[position].changes,
                self.timeline.statements[position].facts,
                strict=True,
            )
            if key in facts
        ]
        if order:
            target = order[0][1]
            for index in range(len(self.steps) - 1, -1, -1):
                if self.steps[index].undoes is target:
                    return index
        return len(self.steps) - 1


def _whether_or_not(step: ReverseStep) -> ReverseStep:
    """A statement nobody can tell ran: fine when its undo would run nothing anyway (it
    changed nothing, its value stays, its rows go with a table the undo drops)."""
    if step.reversible and not step.statements:
        return replace(step, note=f"whether it ran or not, nothing to run: {step.note}")
    return _irreversible(step.undoes, UNKNOWN_WHETHER_IT_RAN)


def _at_step(found: Contents, live_table: Table, step_table: Table) -> Contents:
    """``found`` describes the table as it is now; the step runs after later statements
    were undone, so its columns are the model's at that point, not the live ones."""
    if not step_table.complete:
        names = {c.ident: c.name for c in step_table.columns}
        renamed = {c.name: names[c.ident] for c in live_table.columns if c.ident in names}
        dropped = {c.name for c in live_table.columns if c.ident not in names}
        columns = tuple(renamed.get(c, c) for c in found.columns if c not in dropped)
        text = frozenset(renamed.get(c, c) for c in found.text_columns if c not in dropped)
    else:
        columns = tuple(c.name for c in step_table.columns)
        text = frozenset(c.name for c in step_table.columns if _user_typed(c.type))
    keys = tuple(k for k in (_names_now(found.key_columns, live_table, step_table)) if k)
    return replace(found, columns=columns, text_columns=text, key_columns=keys)


def _names_now(names: tuple[str, ...], live_table: Table, step_table: Table) -> tuple:
    result = []
    for name in names:
        column = live_table.column(name)
        step = step_table.column_by_ident(column.ident) if column else step_table.column(name)
        result.append(step.name if step else None)
    return tuple(result)


def _user_typed(ref: object) -> bool:
    return isinstance(ref, TypeRef) and ref.builtin is None


def _pointing_to_backup(step: ReverseStep, live: LiveData | None) -> ReverseStep:
    change = step.undoes
    if live is None or change.kind not in _DATA_GONE or not change.target.schema:
        return step
    column = change.name if change.kind == ChangeKind.DROP_COLUMN else None
    backup = live.backup_of(change.target, column)
    if backup is None:
        return step
    reason = IRREVERSIBLE[change.kind].removesuffix(BACKUP_HINT)
    return replace(
        step,
        note=f"{reason}; backup table {backup.display()} holds a copy: restore from it with"
        " `/rollback sql` (option 4), or use point-in-time recovery (option 3)",
    )


_DATA_GONE = frozenset({ChangeKind.DROP_TABLE, ChangeKind.DROP_COLUMN, ChangeKind.DATA_CHANGE})


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


def _checked(sql: str) -> str:
    parse_sql(sql)  # raises ParseError: the generator must never emit SQL that does not parse
    return sql


def _irreversible(change: Change, reason: str) -> ReverseStep:
    return ReverseStep(change, None, False, reason)
