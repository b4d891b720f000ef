"""resolve_migration_name: exact names only, closest names offered otherwise."""

import pytest

from bot.errors import NotFound
from bot.prisma.names import resolve_migration_name
from bot.prisma.status import migration_status

NAMES = ("20251201090000_init", "20251208120000_problematic_migration", "20251209080000_add_index")


@pytest.fixture
def status(conn, migrations, history):
    for name in NAMES:
        migrations.add(name, "SELECT 1;")
    history.add(NAMES[0], "SELECT 1;")
    history.add("20251130000000_only_in_history", "SELECT 1;")
    return migration_status(conn, migrations.path)


@pytest.mark.parametrize("name", [*NAMES, "20251130000000_only_in_history"])
def test_exact_names_from_directory_or_history(status, name):
    assert resolve_migration_name(name, status) == name


def test_typo_lists_the_closest_names(status):
    with pytest.raises(NotFound) as caught:
        resolve_migration_name("20251208120000_problematic_migratoin", status)

    assert caught.value.message == (
        "There is no migration named `20251208120000_problematic_migratoin`."
    )
    assert caught.value.hint.startswith("Did you mean: `20251208120000_problematic_migration`")


@pytest.mark.parametrize(
    "name",
    [
        "20251208120000_problematic_migration'; DROP TABLE _prisma_migrations; --",
        "../../etc/passwd",
        "../20251201090000_init",
        "20251208120000",
        " 20251201090000_init",
        "",
    ],
)
def test_anything_but_an_exact_name_is_refused(status, name):
    with pytest.raises(NotFound) as caught:
        resolve_migration_name(name, status)

    assert caught.value.hint.startswith(("Did you mean:", "Use the whole directory name"))


def test_long_or_odd_text_is_shortened_in_the_message(status):
    with pytest.raises(NotFound) as caught:
        resolve_migration_name("x" * 500 + "`\n", status)

    assert len(caught.value.message) < 140
    assert "\n" not in caught.value.message
