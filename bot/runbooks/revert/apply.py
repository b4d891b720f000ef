"""Runbook option 2 after the review: write the reverse migration into the migrations
directory, apply it as `prisma migrate deploy` would (bot.prisma.deploy), and check that
the original's changes are gone (option 1's diagnosis of the original).

No Slack here. Every read opens its own connection (bot.database) and closes it.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import psycopg

from bot.database import connect
from bot.errors import ConflictError
from bot.prisma.deploy import deploy
from bot.prisma.migrations_dir import LocalMigration
from bot.prisma.recommendation import earlier_scripts
from bot.prisma.status import migration_status
from bot.runbooks.status import migrations_dir
from bot.settings import Environment
from bot.sql.diagnosis import Diagnosis, diagnose
from bot.sql.session import check_lexing
from bot.sql.statements import split_statements


def write_migration(directory: Path, name: str, sql: str) -> Path:
    """``<directory>/<name>/migration.sql``; the same file already there is fine (staging
    and production may share one migrations directory), a different one is refused."""
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
    path.write_bytes(sql.encode("utf-8"))
    return path


Progress = Callable[[int, int, str], None]


def apply_revert(
    conn: psycopg.Connection, directory: Path, name: str, on_progress: Progress
) -> int:
    """Apply the one pending migration ``name`` through bot.prisma.deploy, so it is recorded
    exactly as `prisma migrate deploy` records it (row inserted, script run,
    applied_steps_count + 1, finished_at; on error the logs and P3018); its statements run
    one by one inside ONE transaction so each is reported. Refused, with nothing applied,
    when another migration is pending too. Returns the number of statements run."""
    ran: list[int] = []

    def statement_by_statement(conn: psycopg.Connection, migration: LocalMigration) -> None:
        statements = split_statements(migration.script)
        check_lexing(conn)  # the server must read the script as the bot split it
        with conn.transaction():
            for done, statement in enumerate(statements):
                on_progress(done, len(statements), _first_line(statement.text))
                conn.execute(statement.text, prepare=False)
        ran.append(len(statements))

    deploy(conn, directory, only=name, run=statement_by_statement)
    on_progress(ran[0], ran[0], "committed")
    return ran[0]


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
            "Check the database with `/rollback status`; the reverse SQL was edited or"
            " something changed it since.",
        )
    return diagnosis
