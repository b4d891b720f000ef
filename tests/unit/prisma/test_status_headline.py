"""The status card's headline (bot.runbooks.status.headline) on real histories: it names
the worst state the card shows, never "up to date" beside a failed, pending, edited or
missing migration (issue 15, reproduction 6: "up to date" next to "Pending 1")."""

from bot.prisma.status import migration_status
from bot.runbooks.status import headline

FIRST, SECOND, THIRD = "20250101000000_init", "20250102000000_add_bio", "20250103000000_index"
INIT_SQL = "CREATE TABLE users (id int);\n"
BIO_SQL = "ALTER TABLE users ADD COLUMN bio text;\n"
INDEX_SQL = "CREATE INDEX users_bio ON users (bio);\n"


def _headline(conn, migrations) -> tuple[str, bool]:
    return headline(migration_status(conn, migrations.path))


def test_up_to_date_only_when_nothing_is_wrong(conn, migrations, history):
    migrations.add(FIRST, INIT_SQL)
    history.add(FIRST, INIT_SQL)

    assert _headline(conn, migrations) == ("up to date", True)


def test_a_failed_migration_comes_first(conn, migrations, history):
    migrations.add(FIRST, INIT_SQL)
    migrations.add(SECOND, BIO_SQL)
    migrations.add(THIRD, INDEX_SQL)
    history.add(FIRST, INIT_SQL)
    history.add(SECOND, BIO_SQL, state="failed", logs="ERROR: boom")

    assert _headline(conn, migrations) == ("1 failed, 1 pending", False)


def test_a_rolled_back_migration_still_in_the_directory_is_pending(conn, migrations, history):
    """Prisma calls this up to date; deploy would apply it again."""
    migrations.add(FIRST, INIT_SQL)
    migrations.add(SECOND, BIO_SQL)
    history.add(FIRST, INIT_SQL)
    history.add(SECOND, BIO_SQL, state="rolled_back")

    assert _headline(conn, migrations) == ("1 pending", False)


def test_a_migration_edited_after_it_was_applied(conn, migrations, history):
    migrations.add(FIRST, INIT_SQL)
    migrations.add(SECOND, BIO_SQL + "-- edited afterwards\n")
    history.add(FIRST, INIT_SQL)
    history.add(SECOND, BIO_SQL)

    assert _headline(conn, migrations) == ("1 edited after being applied", False)


def test_a_migration_missing_from_the_directory(conn, migrations, history):
    migrations.add(FIRST, INIT_SQL)
    history.add(FIRST, INIT_SQL)
    history.add(SECOND, BIO_SQL)
    history.add(THIRD, INDEX_SQL)

    assert _headline(conn, migrations) == ("2 in the database but not in the directory", False)


def test_every_problem_is_counted_worst_first(conn, migrations, history):
    migrations.add(FIRST, INIT_SQL + "-- edited afterwards\n")
    migrations.add(THIRD, INDEX_SQL)
    history.add(FIRST, INIT_SQL)
    history.add(SECOND, BIO_SQL)  # not in the directory
    history.add(THIRD, INDEX_SQL, state="failed", logs="ERROR: boom")

    text, ok = _headline(conn, migrations)
    assert not ok
    assert text == (
        "1 failed, 1 edited after being applied, 1 in the database but not in the directory"
    )
