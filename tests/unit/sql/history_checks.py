"""Checks over a real Prisma migration history, shared by the corpus tests (the excerpt in
tests/data) and by ``python -m bench.histories`` (whole public histories fetched outside
the repository).

- Round trip: apply each migration as Prisma's native engine does (the whole script, one
  simple query), generate its reverse with the live catalog, run the reverse script as a
  revert file runs (one simple query, one implicit transaction) and compare the catalog
  with the one before the migration; then roll the reverse back and go on.
- Failure points: fail a multi-statement migration at a statement (the ones before it
  applied one by one, as Prisma's driver adapter does), diagnose it, check no verdict is
  wrong, and run what the bot recommends: the undo must leave the schema exactly as before
  the migration, and "resolve" must only be said of a schema that already is.

Everything runs in one database per history, inside savepoints that are rolled back.
"""

from __future__ import annotations

import inspect
import random
import subprocess
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace

import psycopg
from pglast import ast

from bot.prisma.history import RecordState
from bot.prisma.recommendation import NextStep, recommendation
from bot.sql import reverse as reverse_generator
from bot.sql.diagnosis import Verdict, diagnose
from bot.sql.impact import LiveImpact
from bot.sql.reverse import reverse_script
from bot.sql.statements import split_statements
from tests.unit.sql.catalog_snapshot import catalog_snapshot_of

STAMP = "20260101"
# A refusal caused by another (a generator that does not tell them apart has no FOLLOWS).
FOLLOWS = getattr(reverse_generator, "FOLLOWS", "\0")
BACKUP_MARK = "_backup_"
EXAMPLES_KEPT = 12


@dataclass(frozen=True)
class Migration:
    name: str
    sql: str


def load_git_history(repo: Path, directory: str) -> list[Migration]:
    """``<directory>/*/migration.sql`` at HEAD of a bare git copy, in name order."""
    listed = subprocess.run(
        ["git", "-C", str(repo), "ls-tree", "-r", "-z", "--name-only", "HEAD", directory],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split("\0")
    migrations = []
    for path in sorted(p for p in listed if p.endswith("/migration.sql")):
        blob = subprocess.run(
            ["git", "-C", str(repo), "show", f"HEAD:{path}"], capture_output=True, check=True
        ).stdout
        migrations.append(Migration(path.split("/")[-2], blob.decode("utf-8")))
    return migrations


def load_directory(path: Path) -> list[Migration]:
    return [
        Migration(d.name, (d / "migration.sql").read_text(encoding="utf-8"))
        for d in sorted(path.iterdir())
        if (d / "migration.sql").is_file()
    ]


@dataclass
class Tally:
    """What the checks found; ``examples`` keeps a few of each problem for the report."""

    migrations: int = 0
    statements_exact: int = 0
    statements_unknown: int = 0
    statements_wrong: int = 0
    failure_points: int = 0
    recommended: Counter = field(default_factory=Counter)
    undo_exact: int = 0
    undo_inexact: int = 0
    undo_failed: int = 0
    resolve_wrong: int = 0
    reverses: int = 0
    reverse_complete: int = 0
    reverse_ran: int = 0
    reverse_exact: int = 0
    reverse_residue: int = 0
    reverse_inexact: int = 0
    reverse_failed: int = 0
    refusals: Counter = field(default_factory=Counter)  # root reasons, by kind
    refusal_consequences: int = 0  # steps that fail only because another cannot run
    refused_migrations: int = 0
    refused_only_enum_value: int = 0
    stopped: str = ""  # the migration the server could not apply, and why
    examples: dict[str, list[str]] = field(default_factory=dict)

    def example(self, kind: str, text: str) -> None:
        kept = self.examples.setdefault(kind, [])
        if len(kept) < EXAMPLES_KEPT:
            kept.append(text)

    def add(self, other: Tally) -> None:
        for name, value in vars(other).items():
            if isinstance(value, int):
                setattr(self, name, getattr(self, name) + value)
            elif isinstance(value, Counter):
                getattr(self, name).update(value)
        self.stopped = self.stopped or other.stopped
        for kind, texts in other.examples.items():
            for text in texts:
                self.example(kind, text)


# ----------------------------------------------------------------- the bot's API


def _accepts_history(function: Callable) -> bool:
    return "earlier_sql" in inspect.signature(function).parameters


def diagnosis_of(conn: psycopg.Connection, sql: str, earlier: list[str]):
    """A failed migration's diagnosis, as bot/runbooks/status.py asks for it (Prisma recorded the
    error, so the failing statement did not take effect)."""
    if _accepts_history(diagnose):
        return diagnose(conn, sql, earlier_sql=earlier, stopped_by_error=True)
    return diagnose(conn, sql)  # a diagnosis without the history: the live catalog by names


def _status_for(history: list[Migration], position: int) -> SimpleNamespace:
    """The parts of a MigrationStatus ``recommendation`` reads: the earlier migrations
    applied, this one failed."""
    name = history[position].name
    local = {m.name: SimpleNamespace(script=m.sql, sql=m.sql.encode()) for m in history}
    failed_row = SimpleNamespace(state=RecordState.FAILED, migration_name=name)
    directory = SimpleNamespace(names=[m.name for m in history], get=local.get)
    return SimpleNamespace(
        applied=tuple(m.name for m in history[:position]),
        directory=directory,
        local=local.get,
        failed=(failed_row,),
        rows_for=lambda n: (failed_row,) if n == name else (),
    )


# ----------------------------------------------------------------- catalog


def schema_of(conn: psycopg.Connection) -> dict[str, list[tuple]]:
    """The catalog snapshot without the backup tables a revert makes on purpose."""
    snapshot = catalog_snapshot_of(conn)
    return {
        kind: [row for row in rows if not any(BACKUP_MARK in str(v) for v in row)]
        for kind, rows in snapshot.items()
    }


def differences(before: dict, after: dict) -> list[str]:
    found = []
    for kind in before:
        gone = sorted(set(before[kind]) - set(after[kind]), key=repr)
        new = sorted(set(after[kind]) - set(before[kind]), key=repr)
        found += [f"{kind} missing: {row}" for row in gone]
        found += [f"{kind} extra: {row}" for row in new]
    return found


def _only_enum_labels(found: list[str]) -> bool:
    return bool(found) and all(line.startswith("types ") for line in found)


# ----------------------------------------------------------------- one pass


def walk_history(
    conn: psycopg.Connection,
    history: list[Migration],
    tally: Tally,
    *,
    choose: Callable[[int], Iterable[int]] | None = None,
    round_trips: bool = True,
    checked_from: int = 0,
) -> None:
    """Each migration in order (from ``checked_from``; the ones before are only applied):
    first failed at the statements ``choose(count)`` picks (rolled back), then applied as
    Prisma's native engine applies it (the whole file, one simple query), then reversed
    (rolled back)."""
    scripts: list[str] = []
    for position, migration in enumerate(history):
        checked = position >= checked_from
        before = schema_of(conn) if checked else {}
        if choose is not None and checked:
            _failures(conn, history, position, before, scripts, tally, choose)
        try:
            conn.execute(migration.sql)
        except psycopg.Error as exc:  # e.g. an extension this server does not have
            tally.stopped = f"{migration.name}: {str(exc).splitlines()[0]}"
            return
        if round_trips and checked:
            _round_trip(conn, migration, scripts, before, tally)
        scripts.append(migration.sql)
        tally.migrations += 1


def _round_trip(conn, migration: Migration, scripts: list[str], before: dict, tally) -> None:
    tally.reverses += 1
    plan = reverse_script(
        migration.sql,
        default_schema="public",
        earlier_sql=list(scripts),
        live=LiveImpact(conn),
        backup_stamp=STAMP,
    )
    if not plan.complete:
        tally.refused_migrations += 1
        reasons = [
            f"{step.undoes.kind}: {_reason(step.note)}"
            for step in plan.irreversible
            if FOLLOWS not in step.note
        ]
        tally.refusals.update(reasons)
        tally.refusal_consequences += len(plan.irreversible) - len(reasons)
        if not reasons:
            tally.example("refused with no reason of its own", migration.name)
        if reasons and all(r.startswith("add_enum_value") for r in reasons):
            tally.refused_only_enum_value += 1
        return
    tally.reverse_complete += 1
    script = plan.script(lock_timeout="5s", statement_timeout="60s", title=migration.name)
    try:
        with conn.transaction(force_rollback=True):
            conn.execute(script)  # as a revert file runs: one simple query
            tally.reverse_ran += 1
            found = differences(before, schema_of(conn))
    except psycopg.Error as exc:
        tally.reverse_failed += 1
        tally.example("reverse failed", f"{migration.name}: {str(exc).splitlines()[0]}")
        return
    if not found:
        tally.reverse_exact += 1
    elif _only_enum_labels(found) and getattr(plan, "residues", ()):
        tally.reverse_residue += 1
    else:
        tally.reverse_inexact += 1
        tally.example("reverse not exact", f"{migration.name}: {'; '.join(found[:4])}")


def _reason(note: str) -> str:
    """The kind of reason, without the names: 'dropping a column destroyed its values'."""
    first = note.split(";")[0].split(":")[0]
    return " ".join(w for w in first.split() if '"' not in w and "." not in w)[:80]


# ----------------------------------------------------------------- failure points


def _fails_in_a_transaction(statements) -> bool:
    return any(
        isinstance(s.node, ast.IndexStmt)
        and s.node.concurrent
        or isinstance(s.node, ast.DropStmt)
        and s.node.concurrent
        for s in statements
    )


def _failures(conn, history, position, before, scripts, tally, choose) -> None:
    statements = [s for s in split_statements(history[position].sql) if not _control(s.node)]
    if len(statements) < 2 or _fails_in_a_transaction(statements):
        return
    for failing in choose(len(statements)):
        with conn.transaction(force_rollback=True):
            _fail_at(conn, history, position, statements, failing, scripts, before, tally)


def _control(node: ast.Node) -> bool:
    return isinstance(node, ast.TransactionStmt)


def _fail_at(conn, history, position, statements, failing, scripts, before, tally) -> None:
    migration = history[position]
    applied_up_to = failing
    for index in range(failing):
        try:
            with conn.transaction():
                conn.execute(statements[index].text)
        except psycopg.Error:
            applied_up_to = index  # it really fails here: that is the failure point
            break
    tally.failure_points += 1
    diagnosis = diagnosis_of(conn, migration.sql, list(scripts))
    ran_before = statements[applied_up_to].index if applied_up_to < len(statements) else None
    for judged in diagnosis.statements:
        ran = ran_before is None or judged.statement.index < ran_before
        _count_verdict(tally, migration.name, judged, ran, applied_up_to)
    advice = recommendation(_status_for(history, position), diagnosis, migration=migration.name)
    tally.recommended[str(advice.step)] += 1
    _check_advice(conn, migration, advice, before, applied_up_to, tally)


def _count_verdict(tally: Tally, name: str, judged, ran: bool, point: int) -> None:
    if judged.verdict == Verdict.UNKNOWN:
        tally.statements_unknown += 1
    elif (judged.verdict == Verdict.APPLIED) == ran:
        tally.statements_exact += 1
    else:
        tally.statements_wrong += 1
        tally.example(
            "wrong verdict",
            f"{name} failed at statement {point + 1}: {judged.description} judged"
            f" {judged.verdict} ({judged.changes[0].evidence})",
        )


def _check_advice(conn, migration: Migration, advice, before, point: int, tally) -> None:
    if advice.step == NextStep.RESOLVE_ROLLED_BACK:
        found = differences(before, schema_of(conn))
        if found and not _only_enum_labels(found):
            tally.resolve_wrong += 1
            tally.example(
                "resolve on a changed schema",
                f"{migration.name} failed at {point + 1}: {'; '.join(found[:3])}",
            )
        return
    if advice.step != NextStep.UNDO_THEN_RESOLVE:
        return
    try:
        with conn.transaction():
            for statement in advice.undo.statements:
                conn.execute(statement)
            found = differences(before, schema_of(conn))
    except psycopg.Error as exc:
        tally.undo_failed += 1
        tally.example("undo failed", f"{migration.name} at {point + 1}: {exc}".splitlines()[0])
        return
    if not found or (_only_enum_labels(found) and getattr(advice.undo, "residues", ())):
        tally.undo_exact += 1
    else:
        tally.undo_inexact += 1
        tally.example(
            "undo not exact",
            f"{migration.name} failed at {point + 1}: {'; '.join(found[:4])}",
        )


def every_point(count: int) -> range:
    return range(count)


def one_random_point(seed: int) -> Callable[[int], list[int]]:
    rng = random.Random(seed)
    return lambda count: [rng.randrange(count)]
