"""The migrations directory and checksums, as Prisma reads them (no database)."""

import pytest

from bot.errors import UserError
from bot.prisma.migrations_dir import (
    PROVIDER_NOT_FOUND,
    checksum,
    checksum_matches,
    provider_from_lock_file,
    read_migrations_dir,
)

from .conftest import sha256


def test_lists_every_subdirectory_in_name_order(migrations):
    migrations.add("20250102000000_second", "SELECT 2;")
    migrations.add("20250101000000_first", "SELECT 1;")
    (migrations.path / "20250103000000_no_file").mkdir()
    (migrations.path / "README.md").write_text("not a migration")

    directory = read_migrations_dir(migrations.path)

    assert directory.names == (
        "20250101000000_first",
        "20250102000000_second",
        "20250103000000_no_file",
    )
    first = directory.get("20250101000000_first")
    assert first.sql == b"SELECT 1;"
    assert first.checksum == sha256("SELECT 1;")
    assert directory.get("20250103000000_no_file").sql is None
    assert directory.get("20250101000000") is None


def test_missing_directory_has_no_migrations(tmp_path):
    directory = read_migrations_dir(tmp_path / "nope")

    assert directory.migrations == ()
    assert directory.lock_provider is None


def test_checksum_is_lowercase_hex_sha256_of_the_file():
    assert checksum(b"hello") == "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824"


@pytest.mark.parametrize(
    ("on_disk", "recorded_from"),
    [
        (b"ab\ncd\n", b"ab\ncd\n"),
        (b"ab\r\ncd\r\n", b"ab\ncd\n"),  # checked out on Windows after applying on Linux
        (b"ab\ncd\n", b"ab\r\ncd\r\n"),  # the other way round
    ],
)
def test_checksum_matches_across_line_endings(on_disk, recorded_from):
    assert checksum_matches(on_disk, checksum(recorded_from))


def test_checksum_mismatch_for_a_real_edit():
    assert not checksum_matches(b"abc\n", checksum(b"abc"))
    assert not checksum_matches(b"SELECT 2;", checksum(b"SELECT 1;"))


def test_old_unpadded_checksums_still_match():
    digest = bytes.fromhex(checksum(b"x"))
    unpadded = "".join(f"{byte:x}" for byte in digest)
    assert len(unpadded) < 64  # this digest has a byte below 0x10

    assert checksum_matches(b"x", unpadded)


@pytest.mark.parametrize(
    ("content", "provider"),
    [
        ('# comment\nprovider = "postgresql"\n', "postgresql"),
        ('provider = "mysql"\r\n', "mysql"),
        ("provider = sqlite", "sqlite"),
        ("# no provider line\n", PROVIDER_NOT_FOUND),
        ('  provider = "postgresql"', PROVIDER_NOT_FOUND),  # must start the line
    ],
)
def test_provider_from_lock_file(content, provider):
    assert provider_from_lock_file(content) == provider


def test_lock_file_for_another_provider_is_p3019(migrations):
    migrations.lock('provider = "mysql"\n')

    with pytest.raises(UserError) as caught:
        read_migrations_dir(migrations.path).check_provider()

    assert caught.value.code == "P3019"
    assert caught.value.message.startswith(
        "The datasource provider `postgresql` specified in your schema does not match the one "
        "specified in the migration_lock.toml, `mysql`."
    )


def test_missing_lock_file_is_not_checked(migrations):
    (migrations.path / "migration_lock.toml").unlink()

    read_migrations_dir(migrations.path).check_provider()  # no error
