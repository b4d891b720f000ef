"""`rollback-bot check`: the Migration Safety Checklist in CI, before a migration reaches
production. Exit status 0 when every migration passes, 1 when one is data-losing or
irreversible without an acknowledgement in its file (or cannot be reviewed), 2 when the
command itself is wrong (a bad option, no database, an unreadable directory)."""

from __future__ import annotations

import os
import sys
from pathlib import Path

from bot.errors import ConfigError, UserError

EXIT_PASS, EXIT_FAIL, EXIT_USAGE = 0, 1, 2
FORMATS = ("text", "markdown", "json")


def add_parser(sub) -> None:
    check = sub.add_parser(
        "check",
        help="review pending migrations against the runbook's Migration Safety Checklist (CI)",
        description="Answer the runbook's Migration Safety Checklist for each pending"
        " migration. Exits 1 when one is data-losing or irreversible and its file does not"
        ' acknowledge it (a line: -- rollback-bot: allow data-loss "reason").',
    )
    check.add_argument("--migrations-dir", required=True, help="Prisma's migrations directory")
    check.add_argument(
        "--database-url-env",
        metavar="VAR",
        help="environment variable holding the database URL (read-only use: pending"
        " migrations, row counts, table sizes)",
    )
    check.add_argument(
        "--migration",
        action="append",
        default=[],
        metavar="NAME",
        help="a migration to check (repeatable; default: every pending one, which needs"
        " --database-url-env)",
    )
    check.add_argument("--format", choices=FORMATS, default="text")
    check.add_argument("--statement-timeout", default="60s", help="for row counts (default 60s)")


def run(args) -> int:
    from bot.prevention.directory import review_directory
    from bot.prevention.report import json_report, markdown_report, text_report

    path = Path(args.migrations_dir)
    if not path.is_dir():
        raise ConfigError(f"--migrations-dir {path} is not a directory.")
    try:
        conn = _connect(args.database_url_env)
        try:
            reviews = review_directory(
                path,
                conn=conn,
                names=args.migration,
                statement_timeout=args.statement_timeout,
            )
        finally:
            if conn is not None:
                conn.close()
    except UserError as error:
        print(f"rollback-bot check: {error}", file=sys.stderr)
        return EXIT_USAGE
    render = {"text": text_report, "markdown": markdown_report, "json": json_report}
    sys.stdout.write(render[args.format](reviews))
    return EXIT_FAIL if any(r.fails_ci for r in reviews) else EXIT_PASS


def _connect(variable: str | None):
    if not variable:
        return None
    value = os.environ.get(variable)
    if not value:
        raise ConfigError(f"--database-url-env {variable}: the variable is not set or empty.")
    from bot.database import connect_url
    from bot.redaction import Secret

    return connect_url(
        Secret(value), f"the database in {variable}", "Check the URL and that it is reachable."
    )
