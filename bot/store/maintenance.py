"""The state file as an asset: ``rollback-bot state backup FILE`` and ``state check``.

The backup uses SQLite's online backup API (``Connection.backup``), which copies a
consistent snapshot while the bot keeps writing (WAL mode); the copy is then checked like
the original. The check opens the file read-only and changes nothing: it never migrates.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from pathlib import Path

from bot.errors import ConfigError
from bot.store import audit_chain, migrations
from bot.store.migrations.sqlite_target import schema_version

_APPEND_ONLY_TRIGGERS = ("audit_is_append_only_update", "audit_is_append_only_delete")


@dataclass(frozen=True)
class Finding:
    ok: bool
    what: str

    def line(self) -> str:
        return f"{'PASS' if self.ok else 'FAIL'}  {self.what}"


def _open_read_only(path: Path) -> sqlite3.Connection:
    if not path.is_file():
        raise ConfigError(
            f"no state database at {path}: check state_db in the config (or --config)."
        )
    return sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True, timeout=30)


def backup(source: Path, destination: Path) -> list[Finding]:
    """Copies the state file to ``destination`` (which must not exist) and checks the copy."""
    if destination.exists():
        raise ConfigError(f"{destination} already exists: give a new file name for the backup.")
    if not destination.parent.is_dir():
        raise ConfigError(f"{destination.parent} is not a directory: create it first.")
    conn = _open_read_only(source)
    try:
        copy = sqlite3.connect(destination)
        try:
            conn.backup(copy)
        except sqlite3.DatabaseError as error:
            copy.close()
            destination.unlink()  # half a copy is not a backup
            raise ConfigError(f"{source} cannot be copied ({error}): {_DAMAGED}.") from None
        finally:
            copy.close()
    finally:
        conn.close()
    return check(destination)


_DAMAGED = "the file is damaged; restore the last good backup (`rollback-bot state backup`)"


def check(path: Path) -> list[Finding]:
    """A damaged file is findings, not a traceback: SQLite raises DatabaseError ("file is
    not a database", "database disk image is malformed") from whichever read meets it."""
    conn = _open_read_only(path)
    try:
        try:
            findings = [_integrity(conn)]
        except sqlite3.DatabaseError as error:
            return [Finding(False, f"SQLite integrity check: damaged file ({error}): {_DAMAGED}")]
        for what, probe in _CHECKS:
            try:
                findings.append(probe(conn))
            except sqlite3.DatabaseError as error:
                findings.append(Finding(False, f"{what} unreadable ({error}): {_DAMAGED}"))
        return findings
    finally:
        conn.close()


def _integrity(conn: sqlite3.Connection) -> Finding:
    problems = [row[0] for row in conn.execute("PRAGMA integrity_check")]
    if problems == ["ok"]:
        return Finding(True, "SQLite integrity check: ok")
    return Finding(False, f"SQLite integrity check: {'; '.join(problems[:5])}: {_DAMAGED}")


def _foreign_keys(conn: sqlite3.Connection) -> Finding:
    broken = conn.execute("PRAGMA foreign_key_check").fetchall()
    if not broken:
        return Finding(True, "every step, approval and checklist row belongs to an operation")
    tables = sorted({row[0] for row in broken})
    return Finding(False, f"{len(broken)} rows point at missing operations ({', '.join(tables)})")


def _version(conn: sqlite3.Connection) -> Finding:
    have, latest = schema_version(conn), migrations.latest_version()
    if have == latest:
        return Finding(True, f"schema version {have} (this release's)")
    if have < latest:
        return Finding(
            False,
            f"schema version {have}, this release's is {latest}: start the bot once to migrate",
        )
    return Finding(False, f"schema version {have} is newer than this release's ({latest})")


def _triggers(conn: sqlite3.Connection) -> Finding:
    found = {
        row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'trigger'")
    }
    missing = [name for name in _APPEND_ONLY_TRIGGERS if name not in found]
    if not missing:
        return Finding(True, "the audit log is append-only (both triggers present)")
    return Finding(False, f"the audit log's append-only triggers are missing: {missing}")


def _chain(conn: sqlite3.Connection) -> Finding:
    conn.row_factory = sqlite3.Row
    try:
        rows = [dict(row) for row in conn.execute("SELECT * FROM audit ORDER BY id")]
        sequence = conn.execute("SELECT seq FROM sqlite_sequence WHERE name = 'audit'").fetchone()
    finally:
        conn.row_factory = None
    if rows and "chain" not in rows[0]:
        return Finding(False, "the audit log has no hash chain yet: start the bot once to migrate")
    found = audit_chain.first_break(rows)
    if found:
        return Finding(False, f"audit log chain broken at record {found.audit_id}: {found.reason}")
    last_id = rows[-1]["id"] if rows else 0
    issued = sequence[0] if sequence else 0
    if last_id != issued:
        return Finding(False, f"audit log ends at record {last_id} but record {issued} was written")
    return Finding(True, f"audit log chain intact ({len(rows)} records)")


_CHECKS = (
    ("operations' rows", _foreign_keys),
    ("schema version", _version),
    ("audit log triggers", _triggers),
    ("audit log", _chain),
)
