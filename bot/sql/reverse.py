"""Reverse SQL for schema changes that took effect, last change first.

Used to undo exactly the applied statements of a failed migration (runbook option 1, issue
4), and later for whole reverse migrations (option 2, issue 5). Every generated statement
quotes its identifiers, qualifies names with the schema the diagnosis resolved, uses
IF EXISTS where a repeated run should be harmless, and is parsed again by pglast before it
is returned. What cannot be undone from the SQL alone is flagged with the reason.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

from pglast import parse_sql

from bot.sql.changes import Change, ChangeKind, changes_of, resolved
from bot.sql.column_history import ColumnDefinition, ColumnHistory
from bot.sql.diagnosis import Diagnosis, Verdict
from bot.sql.names import QualifiedName, quote_identifier
from bot.sql.statements import split_statements


@dataclass(frozen=True)
class ReverseStep:
    """How to undo one change: ``sql`` to run (None when nothing needs to run), or, when
    ``reversible`` is False, the ``note`` says why it cannot be undone."""

    undoes: Change
    sql: str | None
    reversible: bool
    note: str = ""


@dataclass(frozen=True)
class ReversePlan:
    steps: tuple[ReverseStep, ...]  # in the order to run them: last change first

    @property
    def statements(self) -> tuple[str, ...]:
        return tuple(step.sql for step in self.steps if step.reversible and step.sql)

    @property
    def sql(self) -> str:
        return "".join(f"{statement};\n" for statement in self.statements)

    @property
    def irreversible(self) -> tuple[ReverseStep, ...]:
        return tuple(step for step in self.steps if not step.reversible)

    @property
    def complete(self) -> bool:
        """True when running ``sql`` undoes every change."""
        return not self.irreversible


def reverse_plan(diagnosis: Diagnosis, *, earlier_sql: Sequence[str] = ()) -> ReversePlan:
    """Undo the statements the diagnosis found applied; a statement whose effect is unknown
    becomes an irreversible step, since nobody can say whether it ran.

    ``earlier_sql``: the scripts of the migrations applied before, in order; they tell the
    previous type, nullability and default of a column an ALTER COLUMN changed.
    """
    taken: list[tuple[Change, bool]] = []
    for statement in diagnosis.statements:
        if statement.verdict == Verdict.NOT_APPLIED:
            continue
        ran = statement.verdict == Verdict.APPLIED
        taken.extend((verdict.change, ran) for verdict in statement.changes)
    return _plan(taken, _history(diagnosis.default_schema, earlier_sql))


def reverse_script(
    sql: str, *, default_schema: str = "public", earlier_sql: Sequence[str] = ()
) -> ReversePlan:
    """Undo a whole script that ran to completion (a migration that succeeded)."""
    changes = [
        resolved(change, default_schema)
        for statement in split_statements(sql)
        for change in changes_of(statement.node)
    ]
    return _plan([(change, True) for change in changes], _history(default_schema, earlier_sql))


def _history(default_schema: str, earlier_sql: Iterable[str]) -> ColumnHistory:
    history = ColumnHistory(default_schema)
    for script in earlier_sql:
        history.replay(script)
    return history


def _plan(taken: list[tuple[Change, bool]], history: ColumnHistory) -> ReversePlan:
    steps = []
    for change, ran in taken:
        if not ran:
            steps.append(_irreversible(change, "nobody can tell whether it ran"))
            continue
        before = history.get(change.target, change.name) if change.name else None
        steps.append(reverse_step(change, before))
        history.apply(change)
    return ReversePlan(tuple(reversed(steps)))


def reverse_step(change: Change, before: ColumnDefinition | None = None) -> ReverseStep:
    """The undo of one applied change; ``before`` is the column's previous definition."""
    reverser = _REVERSERS.get(change.kind)
    if reverser is None:
        return _irreversible(change, _IRREVERSIBLE.get(change.kind, _UNSUPPORTED))
    return reverser(change, before)


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
    ChangeKind.DROP_INDEX: "the index definition is gone; recreate it from the migration "
    "that created it",
    ChangeKind.DROP_CONSTRAINT: "the constraint definition is gone; recreate it from the "
    "migration that created it",
    ChangeKind.DROP_TYPE: "the type definition and any column of that type are gone" + _BACKUP,
    ChangeKind.ADD_ENUM_VALUE: "PostgreSQL cannot remove a value from an enum "
    "(ALTER TYPE has no DROP VALUE)",
    ChangeKind.DROP_SCHEMA: "the schema and what it held are gone" + _BACKUP,
    ChangeKind.DROP_EXTENSION: "dropping an extension drops the objects that used it" + _BACKUP,
    ChangeKind.DATA_CHANGE: "a data change cannot be undone from its SQL" + _BACKUP,
}


# ---------------------------------------------------------------------- reversers


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
