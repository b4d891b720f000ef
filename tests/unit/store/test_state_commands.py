"""`rollback-bot state backup FILE` and `state check`, run as real processes against a
state file another process is writing."""

from __future__ import annotations

import sqlite3
import threading

import pytest

from bot.store import Store
from bot.store.records import EventKind
from tests.unit.test_main import run_cli


@pytest.fixture
def state(tmp_path):
    path = tmp_path / "state.db"
    config = tmp_path / "rollback.toml"
    config.write_text(
        f'default_environment = "dev"\nstate_db = "{path}"\n'
        '[environments.dev]\ndatabase_url_env = "X"\nprotected = false\n'
    )
    store = Store(path)
    for n in range(20):
        store.append_audit(None, "U_A", EventKind.STARTED, f"record {n}")
    yield store, config
    store.close()


def test_backup_while_the_bot_writes_gives_a_consistent_checked_copy(state, tmp_path):
    store, config = state
    stop = threading.Event()

    def keep_writing() -> None:
        while not stop.is_set():
            store.append_audit(None, "U_B", EventKind.FINISHED, "written during the backup")

    writer = threading.Thread(target=keep_writing)
    writer.start()
    try:
        result = run_cli("state", "backup", str(tmp_path / "copy.db"), "--config", str(config))
    finally:
        stop.set()
        writer.join()
    assert result.returncode == 0, result.stdout + result.stderr
    assert "PASS  audit log chain intact" in result.stdout
    copied = sqlite3.connect(tmp_path / "copy.db").execute("SELECT count(*) FROM audit")
    assert 20 <= copied.fetchone()[0] <= len(store.audit())


def test_check_passes_on_a_healthy_file(state):
    _, config = state
    result = run_cli("state", "check", "--config", str(config))
    assert result.returncode == 0, result.stdout
    assert "FAIL" not in result.stdout
    assert "PASS  audit log chain intact (20 records)" in result.stdout


def _tamper(path, *statements: str) -> None:
    conn = sqlite3.connect(path)
    conn.execute("DROP TRIGGER audit_is_append_only_update")
    conn.execute("DROP TRIGGER audit_is_append_only_delete")
    for statement in statements:
        conn.execute(statement)
    conn.commit()
    conn.close()


@pytest.mark.parametrize(
    ("statement", "says"),
    [
        ("UPDATE audit SET message = 'nothing happened' WHERE id = 7", "chain broken at record 7"),
        ("DELETE FROM audit WHERE id = 5", "chain broken at record 6"),
        ("DELETE FROM audit WHERE id = 20", "ends at record 19 but record 20 was written"),
    ],
)
def test_check_finds_an_edited_or_removed_audit_record(state, statement, says):
    store, config = state
    _tamper(store.path, statement)
    result = run_cli("state", "check", "--config", str(config))
    assert result.returncode == 1
    assert f"FAIL  audit log {says}" in result.stdout
    assert "FAIL  the audit log's append-only triggers are missing" in result.stdout


def test_backup_refuses_to_overwrite_and_a_missing_state_file_is_named(state, tmp_path):
    _, config = state
    existing = tmp_path / "exists.db"
    existing.write_text("keep me")
    result = run_cli("state", "backup", str(existing), "--config", str(config))
    assert result.returncode == 2
    assert result.stderr.strip() == (
        f"rollback-bot: {existing} already exists: give a new file name for the backup."
    )
    assert existing.read_text() == "keep me"
    (tmp_path / "rollback.toml").write_text(config.read_text().replace("state.db", "nowhere.db"))
    result = run_cli("state", "check", "--config", str(config))
    assert result.returncode == 2 and "no state database at" in result.stderr
    assert "Traceback" not in result.stderr


PAGE = 4096  # SQLite's default page size, the store's


def _damage(path, page: int) -> None:
    """Overwrites one whole page (not the header page) with bytes no b-tree page starts with."""
    data = bytearray(path.read_bytes())
    assert len(data) > (page + 1) * PAGE
    data[page * PAGE : (page + 1) * PAGE] = b"\xab" * PAGE
    path.write_bytes(bytes(data))


@pytest.mark.parametrize(
    ("damage", "reason"),
    [
        (lambda path: path.write_bytes(b"not a database " * 300), "file is not a database"),
        (lambda path: _damage(path, 5), "database disk image is malformed"),
    ],
    ids=["not-sqlite", "damaged-page"],
)
def test_check_on_a_damaged_file_is_one_clear_fail_line(state, damage, reason):
    store, config = state
    for n in range(100):  # pages enough to damage one in the middle
        store.append_audit(None, "U_A", EventKind.STARTED, f"padding {n} " + "x" * 200)
    store.close()
    damage(store.path)
    result = run_cli("state", "check", "--config", str(config))
    assert result.returncode == 1, result.stdout + result.stderr
    assert result.stderr == ""
    fails = [line for line in result.stdout.splitlines() if line.startswith("FAIL")]
    assert fails == [
        f"FAIL  SQLite integrity check: damaged file ({reason}): the file is damaged;"
        " restore the last good backup (`rollback-bot state backup`)"
    ]
    # A backup of it: refused when SQLite cannot read it at all (no half copy is left);
    # a damaged page is copied as it is (what is left to rescue) and the copy's check fails.
    backup = store.path.parent / "copy.db"
    result = run_cli("state", "backup", str(backup), "--config", str(config))
    assert "Traceback" not in result.stderr
    if reason == "file is not a database":
        assert result.returncode == 2 and not backup.exists()
        assert f"{store.path} cannot be copied ({reason})" in result.stderr
    else:
        assert result.returncode == 1 and fails[0] in result.stdout
