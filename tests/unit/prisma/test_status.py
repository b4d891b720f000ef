"""migration_status in every history state, with Prisma's verdict and exit code."""

import pytest

from bot.errors import UserError
from bot.prisma.status import StatusVerdict, migration_status

from .conftest import LOCK_KEY

FIRST, SECOND, THIRD = "20250101000000_init", "20250102000000_add_bio", "20250103000000_index"
INIT_SQL = "CREATE TABLE users (id int);\n"
BIO_SQL = "ALTER TABLE users ADD COLUMN bio text;\n"


def test_not_managed_without_table_and_migrations(conn, migrations):
    status = migration_status(conn, migrations.path)

    assert status.verdict == StatusVerdict.NOT_MANAGED
    assert status.exit_code == 1
    assert not status.has_migrations_table
    assert status.message.startswith("The current database is not managed by Prisma Migrate.")


def test_not_yet_applied_without_table(conn, migrations):
    migrations.add(FIRST, INIT_SQL)
    migrations.add(SECOND, BIO_SQL)

    status = migration_status(conn, migrations.path)

    assert status.verdict == StatusVerdict.NOT_YET_APPLIED
    assert status.exit_code == 1
    assert status.pending == (FIRST, SECOND)
    assert status.message.startswith(
        f"Following migrations have not yet been applied:\n{FIRST}\n{SECOND}\n"
    )


def test_up_to_date(conn, migrations, history):
    migrations.add(FIRST, INIT_SQL)
    migrations.add(SECOND, BIO_SQL)
    history.add(FIRST, INIT_SQL)
    history.add(SECOND, BIO_SQL)

    status = migration_status(conn, migrations.path)

    assert status.verdict == StatusVerdict.UP_TO_DATE
    assert status.message == "Database schema is up to date!"
    assert status.exit_code == 0
    assert status.applied == (FIRST, SECOND)
    assert status.pending == status.failed == status.edited == status.missing == ()
    assert status.warnings == ()


def test_pending_after_applied(conn, migrations, history):
    migrations.add(FIRST, INIT_SQL)
    migrations.add(SECOND, BIO_SQL)
    history.add(FIRST, INIT_SQL)

    status = migration_status(conn, migrations.path)

    assert status.verdict == StatusVerdict.NOT_YET_APPLIED
    assert status.message.startswith(f"Following migration have not yet been applied:\n{SECOND}")
    assert status.pending == (SECOND,)


def test_failed(conn, migrations, history):
    migrations.add(FIRST, INIT_SQL)
    migrations.add(SECOND, BIO_SQL)
    history.add(FIRST, INIT_SQL)
    history.add(SECOND, BIO_SQL, state="failed", logs="ERROR: boom")

    status = migration_status(conn, migrations.path)

    assert status.verdict == StatusVerdict.FAILED
    assert status.exit_code == 1
    assert [r.migration_name for r in status.failed] == [SECOND]
    assert status.failed[0].logs == "ERROR: boom"
    assert f'prisma migrate resolve --rolled-back "{SECOND}"' in status.message
    assert f'prisma migrate resolve --applied "{SECOND}"' in status.message
    assert status.pending == ()  # a failed row blocks deploy instead


def test_rolled_back_is_pending_again_and_prisma_calls_it_up_to_date(conn, migrations, history):
    migrations.add(FIRST, INIT_SQL)
    migrations.add(SECOND, BIO_SQL)
    history.add(FIRST, INIT_SQL)
    history.add(SECOND, BIO_SQL, state="rolled_back")

    status = migration_status(conn, migrations.path)

    # Prisma's status counts any row as "in the database"; deploy skips only live rows.
    assert status.verdict == StatusVerdict.UP_TO_DATE
    assert status.rolled_back == (SECOND,)
    assert status.pending == (SECOND,)
    assert status.failed == ()


def test_edited_is_a_warning_prisma_does_not_print(conn, migrations, history):
    migrations.add(FIRST, INIT_SQL)
    history.add(FIRST, INIT_SQL)
    migrations.add(FIRST, INIT_SQL + "-- edited later\n")

    status = migration_status(conn, migrations.path)

    assert status.verdict == StatusVerdict.UP_TO_DATE
    assert status.edited == (FIRST,)
    assert status.warnings == (f"`{FIRST}` was edited after it was applied (checksum differs).",)


@pytest.mark.parametrize(
    ("applied", "on_disk"),
    [
        (
            "CREATE TABLE a (id int);\nCREATE TABLE b (id int);\n",
            "CREATE TABLE a (id int);\r\nCREATE TABLE b (id int);\r\n",
        ),
        (
            "CREATE TABLE a (id int);\r\nCREATE TABLE b (id int);\r\n",
            "CREATE TABLE a (id int);\nCREATE TABLE b (id int);\n",
        ),
    ],
    ids=["lf_applied_crlf_on_disk", "crlf_applied_lf_on_disk"],
)
def test_line_endings_alone_are_not_an_edit(conn, migrations, history, applied, on_disk):
    history.add(FIRST, applied)
    migrations.add(FIRST, on_disk.encode())

    status = migration_status(conn, migrations.path)

    assert status.edited == ()


def test_missing_from_directory(conn, migrations, history):
    migrations.add(FIRST, INIT_SQL)
    history.add(FIRST, INIT_SQL)
    history.add(SECOND, BIO_SQL)

    status = migration_status(conn, migrations.path)

    # MigrationsDirectoryIsBehind: Prisma's status still says up to date.
    assert status.verdict == StatusVerdict.UP_TO_DATE
    assert status.missing == (SECOND,)
    assert status.warnings == (f"`{SECOND}` is in the database history but not in the directory.",)


def test_histories_diverge(conn, migrations, history):
    migrations.add(FIRST, INIT_SQL)
    migrations.add(THIRD, "SELECT 1;")
    history.add(FIRST, INIT_SQL)
    history.add(SECOND, BIO_SQL)

    status = migration_status(conn, migrations.path)

    assert status.verdict == StatusVerdict.HISTORIES_DIVERGE
    assert status.exit_code == 1
    assert f"The last common migration is: {FIRST}" in status.message
    assert f"have not yet been applied:\n{THIRD}" in status.message
    assert f"not found locally in prisma/migrations:\n{SECOND}" in status.message


def test_several_rows_per_name_after_rolled_back_and_redeployed(conn, migrations, history):
    fixed = BIO_SQL.replace("text", "varchar(200)")
    migrations.add(FIRST, INIT_SQL)
    migrations.add(SECOND, fixed)
    history.add(FIRST, INIT_SQL)
    history.add(SECOND, BIO_SQL, state="rolled_back")
    history.add(SECOND, fixed)

    status = migration_status(conn, migrations.path)

    assert status.verdict == StatusVerdict.UP_TO_DATE
    assert [r.state for r in status.rows_for(SECOND)] == ["rolled_back", "applied"]
    assert status.applied == (FIRST, SECOND)
    assert status.rolled_back == status.pending == ()
    # Prisma compares with the FIRST row of the name: the rolled-back attempt.
    assert status.edited == (SECOND,)


def test_no_table_but_migrations_dir_empty_is_not_managed_with_lock_file_checked(conn, migrations):
    migrations.lock('provider = "sqlite"\n')

    with pytest.raises(UserError) as caught:
        migration_status(conn, migrations.path)

    assert caught.value.code == "P3019"


def test_unreadable_migration_is_reported(conn, migrations, history):
    (migrations.path / FIRST).mkdir()

    status = migration_status(conn, migrations.path)

    assert status.unreadable == (FIRST,)
    assert status.warnings == (f"`{FIRST}` has no readable migration.sql.",)


def test_lock_holder_is_named(conn, other_conn, migrations):
    other_conn.execute("SELECT pg_advisory_lock(%s)", (LOCK_KEY,))
    other_pid = other_conn.info.backend_pid

    holder = migration_status(conn, migrations.path).lock_holder

    assert holder.pid == other_pid
    assert holder.application_name == "prisma-migrate-elsewhere"
    assert holder.user == "postgres"
    assert holder.client_addr == "127.0.0.1"
    assert holder.since is not None
    assert f"pid {other_pid}" in holder.describe()


def test_no_lock_holder(conn, migrations):
    assert migration_status(conn, migrations.path).lock_holder is None
