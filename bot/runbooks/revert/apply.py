"""Runbook option 2 after the review: apply the reverse migration as `prisma migrate deploy`
would (bot.prisma.deploy) from a staged copy of the migrations directory, then write it
into the real one, and check that the original's changes are gone (option 1's diagnosis of
the original).

No Slack here. Every read opens its own connection (bot.database) and closes it.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg

from bot.database import connect
from bot.errors import ConflictError, UserError
from bot.prisma.deploy import deploy, run_script
from bot.prisma.migrations_dir import LocalMigration
from bot.prisma.recommendation import earlier_scripts
from bot.prisma.status import migration_status
from bot.runbooks.status import migrations_dir
from bot.settings import Environment
from bot.sql.diagnosis import Diagnosis, diagnose
from bot.sql.session import check_lexing
from bot.sql.statements import split_statements


def write_migration(directory: Path, name: str, sql: str) -> Path:
    """``<directory>/<name>/migration.sql``, written only once the migration applied (the
    apply step ran it from a staged copy): a reverse that failed never leaves a file that
    every environment would then see as pending. The same file already there is fine
    (staging wrote it; production shares the directory), a different one is refused."""
    if "/" in name or name.startswith("."):  # names come from revert_name(), never typed
        raise ValueError(name)
    path = directory / name / "migration.sql"
    if path.exists():
        if path.read_bytes() != sql.encode("utf-8"):
            raise ConflictError(
                f"`{path}` already exists with other content; nothing was written.",
                "Remove it, or start `/rollback revert` again.",
            )
        return path
    path.parent.mkdir(parents=False, exist_ok=True)
    partial = path.with_name("migration.sql.partial")
    partial.write_bytes(sql.encode("utf-8"))
    partial.replace(path)  # atomic: Prisma never reads half a file
    return path


@contextmanager
def staged_directory(directory: Path, name: str, sql: str) -> Iterator[Path]:
    """The migrations directory as Prisma would read it with the reverse migration added,
    in a temporary directory: every entry of the real one linked, and ``<name>/migration.sql``.
    The real directory is not touched."""
    with tempfile.TemporaryDirectory(prefix="rollback-bot-revert-") as tmp:
        root = Path(tmp) / directory.name
        root.mkdir()
        for entry in directory.iterdir():
            if entry.name != name:
                (root / entry.name).symlink_to(entry.resolve(), entry.is_dir())
        (root / name).mkdir()
        (root / name / "migration.sql").write_bytes(sql.encode("utf-8"))
        yield root


Progress = Callable[[int, int, str], None]


def apply_revert(
    conn: psycopg.Connection, directory: Path, name: str, on_progress: Progress
) -> None:
    """Apply the one pending migration ``name`` exactly as `prisma migrate deploy` applies
    it (bot.prisma.deploy: row inserted, the whole script as ONE simple query, so one
    implicit transaction, applied_steps_count + 1, finished_at; on error the logs and
    P3018). Progress is the migration's start and end; a failure names the statement the
    server's error position points into. Refused, with nothing applied, when another
    migration is pending too."""
    failed_at: list[str] = []

    def whole_script(conn: psycopg.Connection, migration: LocalMigration) -> None:
        on_progress(0, 1, f"{name}: running (one script, one transaction)")
        check_lexing(conn)  # the server must read the script as the bot analysed it
        try:
            run_script(conn, migration.script)
        except psycopg.Error as exc:
            failed_at.append(failing_statement(migration.script, exc.diag.statement_position))
            raise

    try:
        deploy(conn, directory, only=name, run=whole_script)
    except UserError as error:
        if failed_at:
            error.message += f" Failed statement: {failed_at[0]}. Nothing of it took effect."
        raise
    on_progress(1, 1, f"{name}: committed")


def failing_statement(script: str, position: str | int | None) -> str:
    """``line N: <statement's first line>`` for the server's error position (1-based
    characters into the script, PostgreSQL's P field), or "unknown position"."""
    try:
        offset = int(position or 0) - 1
    except ValueError:
        offset = -1
    if offset < 0:
        return "unknown position (the error has none)"
    line = script.count("\n", 0, offset) + 1
    try:
        statements = split_statements(script)
    except UserError:
        return f"line {line}"
    at = [s for s in statements if s.line <= line]
    return f"line {at[-1].line}: {_first_line(at[-1].text)}" if at else f"line {line}"


def _first_line(text: str) -> str:
    line = text.strip().splitlines()[0] if text.strip() else ""
    return line if len(line) <= 120 else line[:119] + "…"


def check_reverted(env: Environment, name: str) -> Diagnosis:
    """The option 1 diagnosis of the original after the revert: every statement the
    revert undid must say "not applied"; otherwise a ConflictError names the rest."""
    with connect(env) as conn:
        status = migration_status(conn, migrations_dir(env))
        script = status.local(name).script
        diagnosis = diagnose(conn, script, earlier_sql=earlier_scripts(status, name))
    left = diagnosis.differences_from_before()
    if left:
        raise ConflictError(
            f"After the revert, these statements of `{name}` still show as in effect: "
            + "; ".join(left)
            + ".",
            f"Check the database with `/rollback status --env {env.name}`; the reverse SQL"
            " was edited or"
            " something changed it since.",
        )
    return diagnosis
