"""The migrations directory as Prisma reads it: ``<dir>/<name>/migration.sql`` and
``<dir>/migration_lock.toml``.

Rules from the prisma CLI (``listMigrationDirectories``: every subdirectory is a migration,
its migration.sql read as UTF-8) and prisma-engines ``schema-connector`` (checksum.rs,
migrations_directory.rs).
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

from bot.prisma.error_codes import p3019_provider_switched

MIGRATION_FILE = "migration.sql"
LOCK_FILE = "migration_lock.toml"
PROVIDER = "postgresql"
# read_provider_from_lock_file's answer when the lock file has no provider line.
PROVIDER_NOT_FOUND = "<PROVIDER NOT FOUND>"


@dataclass(frozen=True)
class LocalMigration:
    name: str
    path: Path  # the migration's directory
    sql: bytes | None  # migration.sql as stored; None when it is missing or unreadable
    checksum: str | None  # what Prisma records for it; None without sql

    @property
    def script(self) -> str:
        """The script as Prisma runs it: the file decoded as UTF-8 (Node's readFile)."""
        return _decoded(self.sql or b"")


@dataclass(frozen=True)
class MigrationsDirectory:
    path: Path
    migrations: tuple[LocalMigration, ...]  # ordered by name
    lock_provider: str | None  # None when there is no migration_lock.toml

    @cached_property
    def names(self) -> tuple[str, ...]:
        return tuple(m.name for m in self.migrations)

    @cached_property
    def _by_name(self) -> dict[str, LocalMigration]:
        # Status looks up every history row by name: a scan each time made 5,000
        # migrations take seconds (bench/: status at scale).
        return {m.name: m for m in self.migrations}

    def get(self, name: str) -> LocalMigration | None:
        """The migration with exactly this directory name, else None."""
        return self._by_name.get(name)

    def check_provider(self) -> None:
        """P3019 when migration_lock.toml names another provider (no file: no check)."""
        if self.lock_provider is not None and self.lock_provider != PROVIDER:
            raise p3019_provider_switched(self.lock_provider)


def read_migrations_dir(path: Path | str) -> MigrationsDirectory:
    path = Path(path)
    return MigrationsDirectory(path, _migrations(path), _lock_provider(path))


def _migrations(path: Path) -> tuple[LocalMigration, ...]:
    try:
        # scandir: the entry type comes with the listing, no stat per entry (thousands of
        # migrations made pathlib's is_dir/is_symlink calls a third of /rollback status).
        with os.scandir(path) as scan:
            # Dirent.isDirectory() in the CLI does not follow symlinks.
            names = [e.name for e in scan if e.is_dir(follow_symlinks=False)]
    except (FileNotFoundError, NotADirectoryError):
        return ()  # the CLI treats a missing directory as "no migration"
    # The CLI sorts with localeCompare; for Prisma's YYYYMMDDHHMMSS_ names that is the same
    # as code-point order.
    return tuple(_local_migration(path / name) for name in sorted(names))


def _local_migration(directory: Path) -> LocalMigration:
    try:
        with open(os.path.join(directory, MIGRATION_FILE), "rb") as file:
            sql = file.read()
    except OSError:
        return LocalMigration(directory.name, directory, None, None)
    return LocalMigration(directory.name, directory, sql, checksum(sql))


def _lock_provider(path: Path) -> str | None:
    try:
        content = (path / LOCK_FILE).read_bytes()
    except OSError:
        return None
    return provider_from_lock_file(_decoded(content))


def provider_from_lock_file(content: str) -> str:
    """migrations_directory.rs::read_provider_from_lock_file, line for line: the first line
    starting with "provider", "provider = " prefixes removed, then surrounding quotes."""
    for line in _rust_lines(content):
        if line.startswith("provider"):
            value = line
            while value.startswith("provider = "):
                value = value.removeprefix("provider = ")
            return value.strip('"')
    return PROVIDER_NOT_FOUND


def _rust_lines(text: str) -> list[str]:
    # Rust's str::lines splits on "\n" only and drops one trailing "\r" per line.
    return [line.removesuffix("\r") for line in text.split("\n")]


def _decoded(raw: bytes) -> str:
    # Node replaces invalid UTF-8 with U+FFFD when reading a file as "utf-8".
    return raw.decode("utf-8", errors="replace")


def checksum(sql: bytes) -> str:
    """Lowercase hex SHA-256 of the script as Prisma holds it (its UTF-8 bytes)."""
    return _sha256(_decoded(sql))


def _sha256(script: str) -> str:
    return hashlib.sha256(script.encode("utf-8")).hexdigest()


def checksum_matches(sql: bytes, recorded: str) -> bool:
    """checksum.rs::script_matches_checksum: the script as is, with CRLF -> LF, or with
    LF -> CRLF, so a checkout with other line endings is not "edited"."""
    script = _decoded(sql)
    # Lazily: the file as is matches in the common case; no need to build the variants.
    variants = (
        lambda: script,
        lambda: script.replace("\r\n", "\n"),
        lambda: script.replace("\n", "\r\n"),
    )
    return any(_formatted(_sha256(v()), recorded) == recorded for v in variants)


def _formatted(hex_digest: str, recorded: str) -> str:
    # Old schema engines wrote checksums without zero padding (prisma-engines issue 1887);
    # such a recorded checksum is compared with an unpadded digest.
    if recorded and len(recorded) != 64:
        return "".join(f"{byte:x}" for byte in bytes.fromhex(hex_digest))
    return hex_digest
