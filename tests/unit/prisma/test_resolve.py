"""resolve --rolled-back / --applied: Prisma's writes, Prisma's errors, Prisma's lock."""

import time
import uuid

import pytest

from bot.errors import UserError
from bot.prisma.history import has_migrations_table
from bot.prisma.resolve import mark_applied, mark_rolled_back, remove_from_history

from .conftest import LOCK_KEY, sha256

NAME = "20251208120000_problematic_migration"
SQL = "ALTER TABLE users ADD COLUMN bio text;\n"


def without(row: dict, *keys: str) -> dict:
    return {k: v for k, v in row.items() if k not in keys}


# --------------------------------------------------------------------- --rolled-back


def test_rolled_back_sets_only_rolled_back_at_on_the_failed_row(conn, history):
    history.add("20250101000000_init")
    failed_id = history.add(NAME, SQL, state="failed", logs="ERROR: boom")
    before = history.rows()

    marked = mark_rolled_back(conn, NAME)

    after = history.rows()
    assert [r.id for r in marked] == [failed_id]
    assert marked[0].state == "rolled_back"
    assert after[0] == before[0]
    assert after[1]["rolled_back_at"] is not None
    assert without(after[1], "rolled_back_at") == without(before[1], "rolled_back_at")


def test_rolled_back_marks_every_failed_row_of_the_name(conn, history):
    history.add(NAME, SQL, state="failed")
    history.add(NAME, SQL, state="failed")

    assert len(mark_rolled_back(conn, NAME)) == 2
    assert all(r["rolled_back_at"] for r in history.rows())


def test_rolled_back_twice_is_a_no_op(conn, history):
    history.add(NAME, SQL, state="failed")
    mark_rolled_back(conn, NAME)
    before = history.rows()

    assert mark_rolled_back(conn, NAME) == ()
    assert history.rows() == before


def test_rolled_back_never_applied_is_p3011(conn, history):
    history.add("20250101000000_init")

    with pytest.raises(UserError) as caught:
        mark_rolled_back(conn, NAME)

    assert caught.value.code == "P3011"
    assert caught.value.message == (
        f"Migration `{NAME}` cannot be rolled back because it was never applied to the "
        "database. Hint: did you pass in the whole migration name? (example: "
        '"20201207184859_initial_migration")'
    )


def test_rolled_back_on_a_completed_migration_is_p3012_pointing_to_revert(conn, history):
    history.add(NAME, SQL)
    before = history.rows()

    with pytest.raises(UserError) as caught:
        mark_rolled_back(conn, NAME)

    assert caught.value.code == "P3012"
    assert caught.value.message == (
        f"Migration `{NAME}` cannot be rolled back because it is not in a failed state."
    )
    assert "option 2" in caught.value.hint
    assert history.rows() == before


def test_rolled_back_without_history_table(conn):
    with pytest.raises(UserError) as caught:
        mark_rolled_back(conn, NAME)

    assert "no _prisma_migrations table" in caught.value.message


# ------------------------------------------------------------------------- --applied


def test_applied_rolls_back_failed_rows_and_inserts_a_finished_row(conn, history, migrations):
    migrations.add(NAME, SQL)
    failed_id = history.add(NAME, "old script", state="failed", logs="ERROR: boom")

    inserted = mark_applied(conn, NAME, migrations.path)

    old, new = history.rows()
    assert old["id"] == failed_id and old["rolled_back_at"] is not None
    assert new["id"] == inserted.id
    assert uuid.UUID(new["id"]).version == 4
    assert new["checksum"] == sha256(SQL)
    assert new["logs"] == ""
    assert new["started_at"] == new["finished_at"]
    assert new["applied_steps_count"] == 0
    assert new["rolled_back_at"] is None
    assert new["migration_name"] == NAME


def test_applied_creates_the_history_table_to_baseline(conn, migrations):
    conn.execute("CREATE TABLE existing (id int)")
    migrations.add(NAME, SQL)

    mark_applied(conn, NAME, migrations.path)

    assert has_migrations_table(conn)


def test_applied_needs_the_directory_p3017(conn, history, migrations):
    history.add(NAME, SQL, state="failed")

    with pytest.raises(UserError) as caught:
        mark_applied(conn, NAME, migrations.path)

    assert caught.value.code == "P3017"
    assert caught.value.message.startswith(f"The migration {NAME} could not be found.")


def test_applied_needs_a_migration_sql_p3017(conn, migrations):
    (migrations.path / NAME).mkdir()

    with pytest.raises(UserError) as caught:
        mark_applied(conn, NAME, migrations.path)

    assert caught.value.code == "P3017"


def test_applied_twice_is_p3008(conn, history, migrations):
    migrations.add(NAME, SQL)
    history.add(NAME, SQL)

    with pytest.raises(UserError) as caught:
        mark_applied(conn, NAME, migrations.path)

    assert caught.value.code == "P3008"
    assert caught.value.message == (
        f"The migration `{NAME}` is already recorded as applied in the database."
    )


def test_applied_checks_the_lock_file_p3019(conn, migrations):
    migrations.add(NAME, SQL)
    migrations.lock('provider = "mysql"')

    with pytest.raises(UserError) as caught:
        mark_applied(conn, NAME, migrations.path)

    assert caught.value.code == "P3019"
    assert not has_migrations_table(conn)


# -------------------------------------------------------------------- advisory lock


def test_lock_held_elsewhere_times_out_naming_the_holder(conn, other_conn, history):
    history.add(NAME, SQL, state="failed")
    other_conn.execute("SELECT pg_advisory_lock(%s)", (LOCK_KEY,))
    before = history.rows()

    started = time.monotonic()
    with pytest.raises(UserError) as caught:
        mark_rolled_back(conn, NAME, lock_timeout=0.5)
    waited = time.monotonic() - started

    assert caught.value.code == "P1002"
    assert "Timed out trying to acquire a postgres advisory lock" in caught.value.message
    assert "Timeout: 500ms" in caught.value.message
    assert f"pid {other_conn.info.backend_pid}" in caught.value.hint
    assert "prisma-migrate-elsewhere" in caught.value.hint
    assert 0.4 < waited < 5
    assert history.rows() == before
    # The session is usable and its lock_timeout is back to what it was.
    assert conn.execute("SHOW lock_timeout").fetchone()[0] == "0"


def test_writes_happen_inside_the_lock_and_release_it(conn, other_conn, history):
    history.add(NAME, SQL, state="failed")
    seen = []
    original = conn.execute

    def spy(query, params=None, **kwargs):
        text = query if isinstance(query, str) else repr(query)
        if "UPDATE" in text:
            row = other_conn.execute(
                "SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND objid = %s AND granted",
                (LOCK_KEY,),
            ).fetchone()
            seen.append(row[0] if row else None)
        return original(query, params, **kwargs)

    conn.execute = spy
    mark_rolled_back(conn, NAME)
    del conn.execute

    assert seen == [conn.info.backend_pid]
    held = other_conn.execute(
        "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND objid = %s", (LOCK_KEY,)
    ).fetchone()[0]
    assert held == 0


# --------------------------------------------------------------------- remove (option 4)


def test_remove_from_history_deletes_from_the_table_prisma_reads(conn, history):
    """The table is named as Prisma names it (schema-qualified), so a same-named table
    earlier in the search path (here a temporary one, always searched first) is not the
    one changed."""
    history.add("20250101000000_init")
    history.add(NAME, SQL, state="failed")
    conn.execute("CREATE TEMP TABLE _prisma_migrations AS SELECT * FROM public._prisma_migrations")

    assert remove_from_history(conn, NAME) == 1

    count = "SELECT count(*) FROM {} WHERE migration_name = %s"
    assert conn.execute(count.format("public._prisma_migrations"), (NAME,)).fetchone()[0] == 0
    assert conn.execute(count.format("pg_temp._prisma_migrations"), (NAME,)).fetchone()[0] == 1


def test_remove_from_history_of_a_name_never_applied_is_p3011(conn, history):
    history.add("20250101000000_init")
    with pytest.raises(UserError) as caught:
        remove_from_history(conn, NAME)
    assert caught.value.code == "P3011"
