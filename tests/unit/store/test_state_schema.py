"""The state schema's numbered migrations (bot/store/migrations/): a file written by the
release before versioning is brought forward with nothing lost, a file from a newer release
is refused, and a fresh file and a migrated one end with the same schema."""

from __future__ import annotations

import sqlite3
import sys
import threading
from pathlib import Path

import pytest

from bot.errors import ConfigError
from bot.store import Store, migrations
from bot.store.maintenance import check
from bot.store.migrations.sqlite_target import schema_version
from bot.store.records import EventKind, OperationStatus

PREVIOUS_RELEASE = Path(__file__).parents[2] / "data" / "state" / "before-versioning.sql"


def previous_release_file(tmp_path: Path) -> Path:
    path = tmp_path / "state.db"
    conn = sqlite3.connect(path)
    conn.executescript(PREVIOUS_RELEASE.read_text())
    conn.close()
    return path


def _rows(path: Path, sql: str) -> list[tuple]:
    conn = sqlite3.connect(path)
    try:
        return conn.execute(sql).fetchall()
    finally:
        conn.close()


def _shape(path: Path) -> dict:
    """Tables with their columns, and every index and trigger, as SQLite reports them."""
    conn = sqlite3.connect(path)
    try:
        objects = conn.execute(
            "SELECT type, name FROM sqlite_master WHERE name NOT LIKE 'sqlite_%' ORDER BY name"
        ).fetchall()
        return {
            (kind, name): (
                [row[1:3] for row in conn.execute(f"PRAGMA table_info({name})")]
                if kind == "table"
                else None
            )
            for kind, name in objects
        }
    finally:
        conn.close()


def test_a_file_from_the_previous_release_is_migrated_with_nothing_lost(tmp_path):
    path = previous_release_file(tmp_path)
    before = _rows(path, "SELECT id, message FROM audit ORDER BY id")
    assert schema_version(sqlite3.connect(path)) == 0

    store = Store(path)
    op = store.operation("op-20261201-a1b2c3")
    assert op.status == OperationStatus.SUCCEEDED and op.params == {"note": "x"}
    assert [(a.id, a.message) for a in store.audit()] == before
    assert [s.step_id for s in store.steps(op.id)] == [
        "confirm_environment",
        "rehearse_destructive_step",
    ]
    assert store.job("job-1").payload == {"approval_id": "apr-1"}
    assert not store.first_time_seen("Ev123")
    # The migrated file keeps working: a new record joins the chain after the old ones.
    store.append_audit(op.id, "U_BOB", EventKind.FINISHED, "after the upgrade")
    store.close()

    applied = _rows(path, "SELECT version, name FROM schema_version ORDER BY version")
    assert applied == [(m.version, m.name) for m in migrations.migrations()]
    assert all(finding.ok for finding in check(path)), [f.line() for f in check(path)]
    # The file as it was is kept beside it, and is the previous release's file.
    copy = tmp_path / "state.db.schema-v0.bak"
    assert _rows(copy, "SELECT id, message FROM audit ORDER BY id") == before
    assert schema_version(sqlite3.connect(copy)) == 0


def test_a_migrated_file_and_a_new_one_have_the_same_schema(tmp_path):
    old = previous_release_file(tmp_path)
    Store(old).close()
    new = tmp_path / "new.db"
    Store(new).close()
    assert _shape(old) == _shape(new)


def test_a_second_start_applies_nothing_and_backs_up_nothing(tmp_path):
    path = previous_release_file(tmp_path)
    Store(path).close()
    stamps = _rows(path, "SELECT applied_at FROM schema_version")
    (tmp_path / "state.db.schema-v0.bak").unlink()
    Store(path).close()
    assert _rows(path, "SELECT applied_at FROM schema_version") == stamps
    assert not list(tmp_path.glob("*.bak"))


def test_a_file_from_a_newer_release_is_refused_and_left_alone(tmp_path):
    path = tmp_path / "state.db"
    Store(path).close()
    newer = migrations.latest_version() + 1
    conn = sqlite3.connect(path)
    conn.execute("INSERT INTO schema_version VALUES (?, 'from_the_future', 'x')", (newer,))
    conn.commit()
    conn.close()
    with pytest.raises(ConfigError, match=f"schema version {newer}, newer than this"):
        Store(path)
    assert _rows(path, "SELECT max(version) FROM schema_version") == [(newer,)]


def test_processes_starting_at_once_migrate_once(tmp_path):
    path = previous_release_file(tmp_path)
    errors: list[BaseException] = []

    def start() -> None:
        try:
            Store(path).close()
        except (ConfigError, sqlite3.Error) as error:  # the assertion below reports it
            errors.append(error)

    threads = [threading.Thread(target=start) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors
    assert _rows(path, "SELECT count(*) FROM schema_version") == [(migrations.latest_version(),)]
    assert all(finding.ok for finding in check(path))


def _package(tmp_path: Path, name: str, modules: list[str]) -> tuple[list[str], str]:
    root = tmp_path / name
    root.mkdir()
    (root / "__init__.py").write_text("")
    for module in modules:
        (root / f"{module}.py").write_text("def sqlite(conn):\n    pass\n")
    sys.path.insert(0, str(tmp_path))
    return [str(root)], name


def test_adding_a_migration_is_one_module_numbered_one_past_the_last(tmp_path):
    path, package = _package(tmp_path, "pkg_ok", ["0001_a", "0002_b", "helpers"])
    try:
        found = migrations.discover(path, package)
    finally:
        sys.path.remove(str(tmp_path))
    assert [(m.version, m.name) for m in found] == [(1, "a"), (2, "b")]


@pytest.mark.parametrize(
    ("modules", "message"),
    [
        (["0001_a", "0001_b"], "two state schema migrations are numbered 0001"),
        (["0001_a", "0003_c"], "without gaps"),
    ],
)
def test_two_migrations_with_one_number_or_a_gap_are_refused(tmp_path, modules, message):
    path, package = _package(tmp_path, f"pkg_{'_'.join(modules)}", modules)
    try:
        with pytest.raises(ConfigError, match=message):
            migrations.discover(path, package)
    finally:
        sys.path.remove(str(tmp_path))
