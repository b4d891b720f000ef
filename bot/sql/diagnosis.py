"""Which statements of a migration took effect, decided from the live catalog.

Prisma records only that a migration "failed". Whether the database is "in a known state"
and which changes "were applied" (the runbook's conditions for option 1) is decided here,
statement by statement: applied, not applied, or unknown.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import psycopg

from bot.sql.catalog import Catalog
from bot.sql.changes import Change, changes_of, resolved
from bot.sql.observe import Verdict, observe
from bot.sql.renames import Renames
from bot.sql.statements import Statement, split_statements

__all__ = ["ChangeVerdict", "Diagnosis", "StatementDiagnosis", "Verdict", "diagnose"]


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
    """

    statements: tuple[StatementDiagnosis, ...]
    skipped: tuple[Statement, ...]
    default_schema: str

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
        return text + "."


def diagnose(conn: psycopg.Connection, sql: str, *, default_schema: str | None = None) -> Diagnosis:
    """Judge every statement of ``sql`` against the database behind ``conn`` (read-only).

    ``default_schema`` is where unqualified names live; by default the connection's
    current_schema(), which is what Prisma's connection (``?schema=``, else public) uses.
    """
    catalog = Catalog(conn, default_schema)
    statements = split_statements(sql)
    effective = [s for s in statements if changes_of(s.node)]
    skipped = tuple(s for s in statements if not changes_of(s.node))
    renames = Renames()
    judged = [_judge(catalog, renames, s) for s in reversed(effective)]
    return Diagnosis(tuple(reversed(judged)), skipped, catalog.default_schema)


def _judge(catalog: Catalog, renames: Renames, statement: Statement) -> StatementDiagnosis:
    # Within a statement, later subcommands may rename what earlier ones touch, too.
    changes = [resolved(c, catalog.default_schema) for c in changes_of(statement.node)]
    verdicts = [_judge_change(catalog, renames, change) for change in reversed(changes)]
    verdicts.reverse()
    return StatementDiagnosis(statement, statement_verdict(verdicts), tuple(verdicts))


def _judge_change(catalog: Catalog, renames: Renames, change: Change) -> ChangeVerdict:
    now = renames.current(change)
    verdict, evidence = observe(catalog, now)
    if verdict == Verdict.APPLIED:
        renames.record(change, now)
    return ChangeVerdict(change, verdict, evidence)


def statement_verdict(verdicts: Sequence[ChangeVerdict]) -> Verdict:
    """One verdict for a statement from those of its subcommands.

    PostgreSQL runs a statement atomically: all of its subcommands took effect or none did.
    So any observed subcommand decides for the unobservable ones; observations that
    contradict each other mean the catalog was changed since, and the state is unknown.
    """
    observed = {v.verdict for v in verdicts if v.verdict != Verdict.UNKNOWN}
    return observed.pop() if len(observed) == 1 else Verdict.UNKNOWN
