"""The state schema's numbered forward migrations, applied in order at start-up.

Each migration is one module in this package, ``NNNN_what_it_does.py``, numbered one past
the last, with one function per state-store dialect: ``sqlite(conn)`` (and ``postgres(conn)``
once that store exists). Adding a table or a column is adding one such module; nothing else
changes. A migration only moves forward and never edits one already released: a state file
written by any earlier release is brought up to date, step by step, at start-up.

The runner is dialect-neutral (``Target``): it reads the applied versions from the
``schema_version`` table, runs each pending migration in its own write transaction with its
row in ``schema_version``, and refuses a database written by a newer release (its version
is unknown here) rather than guess what that release wrote.
"""

from __future__ import annotations

import importlib
import pkgutil
import re
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any, Protocol

from bot.clock import iso, utcnow
from bot.errors import ConfigError

VERSION_TABLE = "schema_version"
_MODULE_NAME = re.compile(r"^(\d{4})_([a-z0-9_]+)$")


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    module: Any

    def step(self, dialect: str) -> Callable[[Any], None]:
        step = getattr(self.module, dialect, None)
        if step is None:
            raise ConfigError(
                f"state schema migration {self.version:04d}_{self.name} has no {dialect} step."
            )
        return step


class Target(Protocol):
    """A state database as the runner sees it (SQLite's: bot/store/migrations/sqlite_target.py)."""

    dialect: str
    description: str  # how the database is named in an error: its path, never a password

    def write_transaction(self) -> AbstractContextManager[Any]:
        """One write transaction that also keeps other processes from migrating at once;
        yields the connection a migration step is given."""

    def applied_versions(self, conn: Any) -> set[int]:
        """The versions recorded in ``schema_version`` (creating the table when missing)."""

    def record(self, conn: Any, migration: Migration, applied_at: str) -> None: ...


def migrations() -> list[Migration]:
    """Every migration in this package, by version."""
    return discover(__path__, __name__)


def discover(path: list[str], package: str) -> list[Migration]:
    """The migrations of a package; two with one number, or a gap, are a mistake."""
    found: dict[int, Migration] = {}
    for info in pkgutil.iter_modules(path):
        match = _MODULE_NAME.match(info.name)
        if not match:
            continue
        version = int(match.group(1))
        if version in found:
            raise ConfigError(
                f"two state schema migrations are numbered {version:04d}"
                f" ({found[version].name}, {match.group(2)}): renumber the newer one."
            )
        module = importlib.import_module(f"{package}.{info.name}")
        found[version] = Migration(version, match.group(2), module)
    ordered = [found[v] for v in sorted(found)]
    expected = list(range(1, len(ordered) + 1))
    if [m.version for m in ordered] != expected:
        raise ConfigError(f"state schema migrations must be numbered 1..N without gaps: {found}")
    return ordered


def latest_version() -> int:
    return migrations()[-1].version


def pending(target: Target, applied: set[int]) -> list[Migration]:
    known = migrations()
    unknown = sorted(applied - {m.version for m in known})
    if unknown:
        raise ConfigError(
            f"the state database {target.description} has schema version {unknown[-1]}, newer"
            f" than this rollback-bot knows ({known[-1].version}): it was written by a newer"
            " release. Run that release, or restore the state backup taken before the upgrade."
        )
    return [m for m in known if m.version not in applied]


def migrate(
    target: Target, before: Callable[[list[Migration]], None] = lambda _: None
) -> list[Migration]:
    """Applies every pending migration, each in its own transaction; returns those applied.
    ``before(pending)`` runs first when there are any (the SQLite store's backup)."""
    with target.write_transaction() as conn:
        todo = pending(target, target.applied_versions(conn))
    if todo:
        before(todo)
    done = []
    for migration in todo:
        with target.write_transaction() as conn:
            # Another process may have applied it since: the check is inside the lock.
            if migration.version in target.applied_versions(conn):
                continue
            migration.step(target.dialect)(conn)
            target.record(conn, migration, iso(utcnow()))
        done.append(migration)
    return done


def versions(rows: Iterator[tuple[int]]) -> set[int]:
    return {int(row[0]) for row in rows}
