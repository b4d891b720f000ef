"""Runbook option 2, the review: the reverse SQL as the requester submitted it from the review
modal (edited or not) is checked again, then the operation starts with it.

Outside staging the SQL must be the very script staging applied; anywhere, edited SQL must
parse, change something and leave the transaction to the bot. No Slack here: a field at
fault is a ``SqlFieldError`` the front end shows on the field.
"""

from __future__ import annotations

from datetime import datetime

from pglast import ast

from bot.errors import UserError
from bot.prisma.migrations_dir import checksum
from bot.runbooks.revert.plan import plan_revert
from bot.sql.guard import migration_refusals
from bot.sql.lint import lint
from bot.sql.statements import split_statements
from bot.text import refuse_invisible

# Slack's plain_text_input holds at most 3000 characters (Block Kit reference).
SQL_MAX_CHARS = 3000


class SqlFieldError(UserError):
    """The SQL field of the review modal is at fault (shown as a field error)."""


def check_sql(sql: str) -> str:
    """The edited SQL must parse, change something, stay within Slack's field size and
    leave the transaction to the bot (Prisma runs a migration as one implicit
    transaction; a COMMIT inside would split it)."""
    if not sql.strip():
        raise SqlFieldError("The SQL is empty.", "Paste the reverse SQL back in.")
    if len(sql) > SQL_MAX_CHARS:
        raise SqlFieldError(f"The SQL is longer than {SQL_MAX_CHARS} characters.")
    try:
        refuse_invisible(sql, "SQL")
    except UserError as error:
        raise SqlFieldError(error.message, error.hint) from None
    try:
        statements = split_statements(sql)
    except UserError as error:
        raise SqlFieldError(error.message, error.hint) from None
    refusals = migration_refusals(statements)  # typed SQL is guarded the same everywhere
    if refusals:
        raise SqlFieldError("\n".join(refusals), "Remove those statements.")
    if not any(not isinstance(s.node, ast.VariableSetStmt) for s in statements):
        raise SqlFieldError("The SQL only sets settings; it reverses nothing.")
    return sql if sql.endswith("\n") else sql + "\n"


def start_reviewed(engine, env_name: str, migration: str, stamp: datetime, user: str, sql):
    """Plans again from the live state (the review's moment, so the same names) and starts
    the operation with the SQL as submitted (``sql`` None: shown read-only, as planned)."""
    env = engine.config.environment(env_name)
    engine.check_requester(env, user, "a reverse migration")
    plan = plan_revert(engine.config, env, migration, stamp)
    params = plan.params()
    if sql is not None and sql != plan.sql:
        if plan.staging_tested:
            raise UserError(
                "This SQL differs from what was applied on staging; only the tested SQL may"
                " run here. Nothing was started.",
                f"Test the edited SQL on staging first: `/rollback revert {plan.migration}"
                " --env staging`.",
            )
        params.update(
            sql=sql, sql_sha256=checksum(sql.encode("utf-8")), edited=True, lint=lint(sql).to_dict()
        )
    return engine.start("revert", env.name, user, params)
