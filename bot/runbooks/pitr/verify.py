"""Runbook option 3, step "Verify restored database": the environment's verification
queries run read-only on the current database and on the restored instance, side by side.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

import psycopg

from bot.aws import secrets_manager
from bot.database import connect_url, database_url
from bot.engine.model import Step, StepContext
from bot.errors import UserError
from bot.redaction import Secret, register, where
from bot.settings import Environment, VerificationQuery
from bot.store.records import CardKind

if TYPE_CHECKING:
    pass


def restored_url(env: Environment, params: dict) -> Secret:
    """The environment's URL (credentials, database, parameters) on the restored endpoint."""
    url = secrets_manager.url_with_endpoint(
        database_url(env), params["restored_address"], params.get("restored_port")
    )
    register(url)
    return url


def _connect_read_only(url: Secret, label: str, statement_timeout: str) -> psycopg.Connection:
    conn = connect_url(
        url,
        f"the {label} ({where(url)})",
        "Check that the instance is available and its security groups let the bot in.",
    )
    # Verification only reads: a query that tries to write fails instead of changing data.
    conn.execute("SET default_transaction_read_only = on")
    conn.execute("SELECT set_config('statement_timeout', %s, false)", (statement_timeout,))
    return conn


def run_queries(conn: psycopg.Connection, queries: tuple[VerificationQuery, ...]) -> list[dict]:
    results = []
    for q in queries:
        try:
            row = conn.execute(q.sql).fetchone()
            value = None if row is None else row[0]
            results.append({"value": _shown(value), "ok": _meets(value, q.expect), "error": None})
        except psycopg.Error as error:
            results.append({"value": None, "ok": False, "error": str(error).splitlines()[0]})
    return results


def _meets(value, expect: str | None) -> bool:
    """expect is a comparison such as "> 0" (checked by bot/settings.py)."""
    if not expect:
        return True
    match = re.match(r"^\s*(!=|<=|>=|=|<|>)\s*(-?\d+(?:\.\d+)?)\s*$", expect)
    try:
        left, right = float(value), float(match.group(2))
    except (TypeError, ValueError, AttributeError):
        return False
    return {
        "=": left == right,
        "!=": left != right,
        "<": left < right,
        "<=": left <= right,
        ">": left > right,
        ">=": left >= right,
    }[match.group(1)]


def _shown(value) -> str:
    return "NULL" if value is None else str(value)[:200]


def _verify_restored(ctx: StepContext) -> str:
    env, timeout = ctx.environment, ctx.params["statement_timeout"]
    queries = env.verification_queries
    if not queries:
        ctx.say(
            f"No verification queries are configured for {env.name}: nothing was checked."
            " Add [[environments.NAME.verification_queries]] (runbook: prepare verification"
            " queries)."
        )
        return "no verification queries configured"
    with _connect_read_only(database_url(env), f"current {env.name} database", timeout) as conn:
        current = run_queries(conn, queries)
    with _connect_read_only(restored_url(env, ctx.params), "restored instance", timeout) as conn:
        restored = run_queries(conn, queries)
    rows = [
        {"name": q.name, "sql": q.sql, "expect": q.expect, "current": c, "restored": r}
        for q, c, r in zip(queries, current, restored, strict=True)
    ]
    failed = [row["name"] for row in rows if not row["restored"]["ok"]]
    ctx.record(verification_failed=failed)
    ctx.card(
        CardKind.PITR_VERIFICATION,
        f"Verification: current {env.name} database vs restored {ctx.params['restore_target']}",
        {"rows": rows, "target": ctx.params["restore_target"], "environment": env.name},
    )
    if failed:
        raise UserError(
            f"Verification failed on the restored instance: {', '.join(failed)}.",
            "Traffic was not switched. Inspect the restored instance, or restore another point.",
        )
    return f"{len(rows)} verification queries passed on {ctx.params['restore_target']}"


VERIFY_RESTORED = Step(
    "verify_restored", "Verify restored database", _verify_restored, idempotent=True
)
