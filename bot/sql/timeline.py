"""A migration replayed statement by statement on the schema before it.

``states[k]`` is the schema after the first ``k`` statements that change something (BEGIN,
COMMIT and SET change nothing and are skipped). A failed migration left the database at
one of these points: Prisma's native engine sends the script as one simple query (one
implicit transaction unless the script has its own BEGIN/COMMIT), the driver adapter sends
it piece by piece, and either way the statements that took effect are the first ``k``
(prisma-oracle.md). The diagnosis finds which points the live catalog allows; the reverse
generator walks back from one of them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from functools import cached_property

from bot.sql.changes import UNQUALIFIED_KINDS, Change, changes_of, resolved
from bot.sql.gc_pause import gc_paused
from bot.sql.model_cache import schema_before
from bot.sql.model_replay import apply_statement
from bot.sql.names import QualifiedName
from bot.sql.observations import Key, facts_touched, model_value
from bot.sql.schema_model import TEMP_SCHEMA, SchemaModel
from bot.sql.statements import Statement, split_statements


@dataclass(eq=False)
class StatementEffect:
    statement: Statement
    changes: tuple[Change, ...]  # as written, names resolved to a schema
    markers: tuple[set, ...]  # per change: what it touched in the model
    before: SchemaModel
    after: SchemaModel
    fails: tuple[str, ...] = ()  # why it would fail on the schema the model has before it

    @cached_property
    def facts(self) -> tuple[frozenset[Key], ...]:
        """Per change: the facts it could have changed (worked out when first asked)."""
        facts = [frozenset(facts_touched(self.before, self.after, m)) for m in self.markers]
        if len(facts) != len(self.changes):
            union = frozenset().union(*facts)
            facts = [union] * len(self.changes)
        return tuple(facts)


@dataclass(frozen=True)
class Timeline:
    default_schema: str
    statements: tuple[StatementEffect, ...]
    skipped: tuple[Statement, ...]
    states: tuple[SchemaModel, ...]  # len(statements) + 1

    @cached_property
    def facts(self) -> frozenset[Key]:
        return frozenset(key for s in self.statements for facts in s.facts for key in facts)

    @cached_property
    def changed_at(self) -> dict[Key, list[int]]:
        """For each fact, the statements (0-based) that may change it."""
        points: dict[Key, list[int]] = {}
        for position, effect in enumerate(self.statements):
            for key in frozenset().union(*effect.facts) if effect.facts else ():
                points.setdefault(key, []).append(position)
        return points

    def segments(self, key: Key) -> list[tuple[int, int, object]]:
        """(first point, last point, value): the fact's model value at points
        first..last (inclusive), covering 0..len(statements)."""
        points = self.changed_at.get(key, [])
        segments, start, value = [], 0, model_value(self.states[0], key)
        for position in points:
            after = model_value(self.states[position + 1], key)
            segments.append((start, position, value))
            start, value = position + 1, after
        segments.append((start, len(self.statements), value))
        return segments


def _resolved(change: Change, state: SchemaModel) -> Change:
    """Names placed in a schema as the statement ran: a temporary table made earlier in the
    migration hides a table of the same name."""
    target = change.target
    if target.schema is None and change.kind not in UNQUALIFIED_KINDS:
        temporary = QualifiedName(TEMP_SCHEMA, target.name)
        if temporary in state.relations:
            return resolved(replace(change, target=temporary), state.default_schema)
    return resolved(change, state.default_schema)


@gc_paused
def migration_timeline(
    sql: str, *, default_schema: str, earlier_sql: Sequence[str] | None = None
) -> Timeline:
    """``earlier_sql``: the scripts of the migrations applied before, in order (None: not
    known, so whatever the migration does not create itself is UNKNOWN)."""
    state = schema_before(earlier_sql, default_schema)
    states: list[SchemaModel] = [state]
    effects, skipped = [], []
    for statement in split_statements(sql):
        changes = tuple(_resolved(c, states[-1]) for c in changes_of(statement.node))
        if not changes:
            skipped.append(statement)
            continue
        before, after = states[-1], states[-1].copy()
        fails: list[str] = []
        touched = apply_statement(after, statement.node, violations=fails)
        markers = tuple(touched)
        effects.append(StatementEffect(statement, changes, markers, before, after, tuple(fails)))
        states.append(after)
    return Timeline(default_schema, tuple(effects), tuple(skipped), tuple(states))
