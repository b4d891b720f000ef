"""Which statements of a migration took effect, decided from the migration's own sequence.

Prisma records only that a migration "failed". Whether the database is "in a known state"
and which changes "were applied" (the runbook's conditions for option 1) is decided here.

A migration that failed left the database after its first ``k`` statements, for some ``k``
(bot.sql.timeline). The schema model gives, for every point ``k``, what the catalog shows
there; each fact the live catalog shows rules out the points where the model says
otherwise. A statement is "applied" when every point left is past it, "not applied" when
none is, and "unknown" when both remain: a drop followed by a create of the same name that
leaves the same definitions, a data change between two statements that both left a trace
or neither. Names alone never decide: a table dropped and created again under its name, a
foreign key re-added with ON DELETE CASCADE, a column dropped and added again at the end
all differ in what the catalog shows, and when they do not, the verdict says unknown.
When the catalog matches no point at all, something changed it since: every verdict is
unknown.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum

import psycopg

from bot.sql.catalog import current_schema
from bot.sql.changes import Change
from bot.sql.live_catalog import LiveFacts
from bot.sql.observations import (
    PRESENCE_ONLY,
    SPELLED_FACTS,
    Key,
    compatible,
    describe,
    model_value,
    reliably_read,
)
from bot.sql.schema_model import UNKNOWN
from bot.sql.statements import Statement
from bot.sql.timeline import Timeline, migration_timeline

__all__ = ["ChangeVerdict", "Diagnosis", "StatementDiagnosis", "Verdict", "diagnose", "judge"]

_EVIDENCE_FACTS = 2  # facts quoted per change


class Verdict(StrEnum):
    APPLIED = "applied"
    NOT_APPLIED = "not_applied"
    UNKNOWN = "unknown"


@dataclass(frozen=True)
class ChangeVerdict:
    change: Change  # as written, names resolved to a schema
    verdict: Verdict
    evidence: str  # what the catalog showed, e.g. "column public.users.bio exists"


@dataclass(frozen=True)
class StatementDiagnosis:
    statement: Statement
    verdict: Verdict
    changes: tuple[ChangeVerdict, ...]

    @property
    def description(self) -> str:
        """One line: "ADD COLUMN users.bio" or "ADD COLUMN t.a, ADD COLUMN t.b"."""
        return ", ".join(c.change.description for c in self.changes)


@dataclass(frozen=True)
class Diagnosis:
    """The statements that change the schema, each with its verdict.

    Statements with no schema effect (BEGIN, COMMIT, SET ...) are in ``skipped``.
    ``points``: how many statements may have taken effect, as the catalog allows (empty:
    none fits); ``mismatches``: facts no point of the migration explains.
    """

    statements: tuple[StatementDiagnosis, ...]
    skipped: tuple[Statement, ...]
    default_schema: str
    timeline: Timeline | None = None
    points: tuple[int, ...] = ()
    mismatches: tuple[str, ...] = ()
    live: Mapping[Key, object] = field(default_factory=dict, repr=False)

    def having(self, verdict: Verdict) -> tuple[StatementDiagnosis, ...]:
        return tuple(s for s in self.statements if s.verdict == verdict)

    @property
    def applied(self) -> tuple[StatementDiagnosis, ...]:
        return self.having(Verdict.APPLIED)

    @property
    def not_applied(self) -> tuple[StatementDiagnosis, ...]:
        return self.having(Verdict.NOT_APPLIED)

    @property
    def unknown(self) -> tuple[StatementDiagnosis, ...]:
        return self.having(Verdict.UNKNOWN)

    @property
    def applied_count(self) -> int | None:
        """How many statements took effect, when the catalog says exactly."""
        return self.points[0] if len(self.points) == 1 else None

    @property
    def summary(self) -> str:
        """'3 of 5 statements took effect: CREATE TABLE "Post"; ADD COLUMN users.bio; ...'"""
        total, applied = len(self.statements), self.applied
        noun = "statement" if total == 1 else "statements"
        text = f"{len(applied)} of {total} {noun} took effect"
        if applied:
            text += ": " + "; ".join(s.description for s in applied)
        if self.unknown:
            text += f". {len(self.unknown)} cannot be checked: "
            text += "; ".join(s.description for s in self.unknown)
        if self.statements and not self.points:
            text += (
                ". The catalog matches no point of the migration, so something changed it"
                " since: " + "; ".join(self.mismatches[:3])
            )
        return text + "."

    def differences_from_before(self) -> list[str]:
        """After an undo or a revert: the facts of the catalog that are not as they were
        before the migration, compared by definition (a constraint re-added under the same
        name with its old definition is restored; an enum label PostgreSQL cannot drop is
        not a difference); empty when the schema is as before."""
        if self.timeline is None:
            return []
        before = self.timeline.states[0]
        differences: dict[str, list[str]] = {}
        for key in sorted(self.timeline.facts, key=repr):
            value = self.live.get(key, UNKNOWN)
            expected = model_value(before, key)
            if value is UNKNOWN or compatible(key[0], expected, value):
                continue
            if (
                key[0] in SPELLED_FACTS
                and not reliably_read(key[0], value)
                and not _known_value_matches(self.timeline, key, value)
            ):
                continue
            before_words = describe(key, expected)
            fact = f"{describe(key, value)} (before the migration: {before_words})"
            differences.setdefault(self._statement_touching(key), []).append(fact)
        return [f"{statement}: {', '.join(facts)}" for statement, facts in differences.items()]

    def _statement_touching(self, key: Key) -> str:
        for statement in self.timeline.statements:
            if any(key in facts for facts in statement.facts):
                return ", ".join(c.description for c in statement.changes)
        return "the migration"


def diagnose(
    conn: psycopg.Connection,
    sql: str,
    *,
    default_schema: str | None = None,
    earlier_sql: Sequence[str] | None = None,
    stopped_by_error: bool = False,
) -> Diagnosis:
    """Judge every statement of ``sql`` against the database behind ``conn`` (read-only).

    ``default_schema`` is where unqualified names live; by default the connection's
    current_schema(), which is what Prisma's connection (``?schema=``, else public) uses.
    ``earlier_sql``: the scripts of the migrations applied before it, in order; without
    them the bot knows only what the migration itself creates, and says unknown more often.
    ``stopped_by_error``: Prisma recorded an error for it (the failed row's logs), so the
    statement that failed did not take effect: not all of them did.
    """
    schema = default_schema or current_schema(conn)
    timeline = migration_timeline(sql, default_schema=schema, earlier_sql=earlier_sql)
    live = LiveFacts(conn, timeline.facts)
    return judge(
        timeline,
        live.values,
        invalid_indexes=live.invalid_indexes(),
        stopped_by_error=stopped_by_error,
    )


def judge(
    timeline: Timeline,
    live: Mapping[Key, object],
    *,
    invalid_indexes=frozenset(),
    stopped_by_error: bool = False,
) -> Diagnosis:
    """The verdicts, from the model's timeline and the live values of its facts."""
    total = len(timeline.statements)
    possible = (1 << (total + 1)) - 1  # bit k: "the first k statements took effect"
    if stopped_by_error and total:
        possible &= ~(1 << total)  # the failing statement is one of them
    mismatches = []
    for key in sorted(timeline.facts, key=repr):
        allowed, trusted = _allowed_points(timeline, key, live.get(key, UNKNOWN))
        if not trusted:
            continue
        if allowed == 0:
            mismatches.append(describe(key, live.get(key)))
            continue
        possible &= allowed
    for position, effect in enumerate(timeline.statements):
        if effect.fails:
            # It would fail on the schema before it: the migration cannot have got past it.
            possible &= (1 << (position + 1)) - 1
    points = tuple(k for k in range(total + 1) if possible >> k & 1)
    statements = tuple(
        _statement(timeline, position, points, live, invalid_indexes) for position in range(total)
    )
    return Diagnosis(
        statements,
        timeline.skipped,
        timeline.default_schema,
        timeline,
        points,
        tuple(mismatches),
        live,
    )


def _known_value_matches(timeline: Timeline, key: Key, live: object) -> bool:
    return any(
        value is not UNKNOWN and compatible(key[0], value, live)
        for _, _, value in timeline.segments(key)
    )


def _allowed_points(timeline: Timeline, key: Key, live: object) -> tuple[int, bool]:
    """Bit mask of the points the fact allows, and whether the fact can be trusted."""
    kind = key[0]
    allowed, known_match = 0, False
    for first, last, value in timeline.segments(key):
        if compatible(kind, value, live):
            allowed |= ((1 << (last - first + 1)) - 1) << first
            known_match = known_match or value is not UNKNOWN
    if kind in SPELLED_FACTS and not known_match and not reliably_read(kind, live):
        return 0, False  # the bot may have misread a spelling: this fact says nothing
    return allowed, True


def _statement(
    timeline: Timeline,
    position: int,
    points: tuple[int, ...],
    live: Mapping[Key, object],
    invalid_indexes,
) -> StatementDiagnosis:
    effect = timeline.statements[position]
    if not points:
        verdict = Verdict.UNKNOWN
    elif points[0] > position:
        verdict = Verdict.APPLIED
    elif points[-1] <= position:
        verdict = Verdict.NOT_APPLIED
    else:
        verdict = Verdict.UNKNOWN
    changes = tuple(
        ChangeVerdict(
            change,
            verdict,
            _evidence(timeline, position, facts, live, points, invalid_indexes),
        )
        for change, facts in zip(effect.changes, effect.facts, strict=True)
    )
    return StatementDiagnosis(effect.statement, verdict, changes)


def _evidence(timeline, position, facts, live, points, invalid_indexes) -> str:
    before, after = timeline.states[position], timeline.states[position + 1]
    shown = []
    for key in sorted(facts, key=repr):
        was, becomes = model_value(before, key), model_value(after, key)
        if was == becomes or becomes is UNKNOWN:
            continue
        value = live.get(key, UNKNOWN)
        if value is UNKNOWN:
            continue
        if key[0] in PRESENCE_ONLY and value is True and was is None:
            side = "as after it, or left by an earlier undo: PostgreSQL cannot drop it"
        elif compatible(key[0], becomes, value):
            side = "as after it"
        elif compatible(key[0], was, value):
            side = "as before it"
        else:
            side = "changed by a later statement"
        text = f"{describe(key, value)} ({side})"
        if key[0] == "rel" and key[1] in invalid_indexes:
            text += ", INVALID: a CREATE INDEX CONCURRENTLY that failed leaves it"
        shown.append(text)
        if len(shown) == _EVIDENCE_FACTS:
            break
    fails = timeline.statements[position].fails
    if fails:
        shown.append(f"it fails on the schema before it: {fails[0]}")
    if shown:
        return "; ".join(dict.fromkeys(shown))
    return _by_sequence(position, points)


def _by_sequence(position: int, points: tuple[int, ...]) -> str:
    if not points:
        return "leaves nothing the catalog shows, and the catalog matches no point"
    if points[0] > position:
        return (
            "leaves nothing the catalog shows; a later statement took effect, and a"
            " migration's statements take effect in order"
        )
    if points[-1] <= position:
        return "leaves nothing the catalog shows; an earlier statement did not take effect"
    return "leaves nothing the catalog shows, and the statements around it do not tell"
