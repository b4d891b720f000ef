"""Data for the message catalog made by the bot's own domain functions on a real PostgreSQL:
a real migration history (tests/data/trigger.dev, Apache-2.0) failed by PostgreSQL itself, the
sandbox demo's partly applied migration, resolve's and deploy's approval plans, a manual SQL
dry run with its backups and verification query, and the migration check cards. Nothing here
is typed to look like output: the catalog renders what these runs return."""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import psycopg

from bot.engine.model import plan_text
from bot.errors import UserError
from bot.prevention.report import review_dict
from bot.prisma.deploy import deploy
from bot.prisma.resolve import mark_rolled_back
from bot.redaction import Secret
from bot.runbooks import RUNBOOKS
from bot.runbooks import sql as sql_runbook
from bot.runbooks.check import check_environment
from bot.runbooks.deploy import preview_deploy
from bot.runbooks.pitr.verify import run_queries
from bot.runbooks.resolve.plan import plan_resolve
from bot.runbooks.sql import card_data, plan_apply
from bot.runbooks.status import assess, status_card_data
from bot.sandbox import demo
from bot.settings import Environment, VerificationQuery, load_config
from bot.sql.manual import analyse
from bot.sql.manual_run import Limits, dry_run
from bot.store.records import Operation

TRIGGER_DEV = Path(__file__).parents[2] / "data" / "trigger.dev" / "migrations"
# Migration 2 adds NOT NULL columns without a default: Prisma's own warning says it fails on
# a table with rows. With one User row PostgreSQL refuses it, and Prisma records it failed.
TRIGGER_FIRST, TRIGGER_FAILS, TRIGGER_NEXT = sorted(
    p.name for p in TRIGGER_DEV.iterdir() if p.is_dir()
)[:3]
SQL = (
    'DELETE FROM "Project" WHERE "id" > 8;\n'
    'ALTER TABLE "User" DROP COLUMN "bio";\n'
    'UPDATE "User" SET "email" = lower("email") WHERE "id" < 4;\n'
)
VERIFY = 'SELECT "id", "email" FROM "User" ORDER BY "id" LIMIT 3'
STAMP = "20261126"
REASON = "INC-4711: the failed deploy left Proposal behind"


@dataclass(frozen=True, repr=False)
class RealRuns:
    trigger_status: dict  # status card data: a real trigger.dev migration failed on PostgreSQL
    demo_status: dict  # the sandbox demo's partly applied migration (undo, then resolve)
    postgres_error: str  # PostgreSQL's own message, as Prisma's history keeps it
    resolve_plan: dict  # what /rollback resolve confirms
    resolve_approval: str  # the approval plan of resolve's destructive step
    deploy_approval: str  # the approval plan of re-run migrations
    sql_params: dict  # a manual SQL operation's params after its dry run
    sql_approval: str  # the approval plan of manual SQL
    sql_counts: dict  # the dry run card: counts only
    sql_rows: dict  # the requester's card: rows (also what Commit / Roll back shows)
    sql_dry_run_result: str  # the dry run step's result, as the status message shows it
    check_cards: list[dict]  # /rollback check's cards of trigger.dev's pending migrations
    errors: list[UserError]  # what the domain refuses, said to the person who asked
    deploy_failure: str  # the deploy step's error (P3018) as the engine records it
    deploy_preview: dict  # what /rollback deploy shows before the deploy failed
    deploy_preview_failed: dict  # ... while a migration is failed (Prisma refuses)
    deploy_preview_repeat: dict  # ... after resolve, the same file pending again
    verification: list[dict]  # PITR's verification rows: two databases, one query failing


def environment(url: str, migrations: Path, name: str = "production") -> Environment:
    return Environment(name, True, database_url=Secret(url), migrations_dir=migrations)


def operation(runbook: str, env: str, params: dict, **kw) -> Operation:
    base = dict(
        id="op-20261126-abcdef",
        runbook=runbook,
        environment=env,
        status="waiting_approval",
        requester="U_ALICE",
        params=params,
        summary="",
        created_at="2026-11-26T10:00:00.000000Z",
        updated_at="2026-11-26T10:05:00.000000Z",
        finished_at=None,
        result=None,
        incident_channel="C_INCIDENT",
        status_ts=None,
        notify_channel=None,
        notify_ts=None,
    )
    return Operation(**(base | kw))


def trigger_dev_failed(url: str, root: Path) -> tuple[Environment, str, str, dict]:
    """The first trigger.dev migration applied, a row written, the second refused by
    PostgreSQL: a failed migration Prisma records (P3018), and the third pending. With the
    approval plan re-run migrations showed before the deploy failed."""
    directory = root / "trigger" / "migrations"
    directory.mkdir(parents=True)
    shutil.copy(TRIGGER_DEV / "migration_lock.toml", directory)
    shutil.copytree(TRIGGER_DEV / TRIGGER_FIRST, directory / TRIGGER_FIRST)
    deploy(url, directory)
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("""INSERT INTO "User" ("id", "updatedAt") VALUES ('u1', now())""")
    for name in (TRIGGER_FAILS, TRIGGER_NEXT):
        shutil.copytree(TRIGGER_DEV / name, directory / name)
    env = environment(url, directory)
    deploy_step = next(s for s in RUNBOOKS["deploy"].steps if s.plan is not None)
    plan = plan_text(deploy_step, operation("deploy", env.name, {}), env)
    preview = preview_deploy(env).params()
    try:
        deploy(url, directory)
    except UserError as error:  # P3018: the incident this catalog shows
        return env, plan, str(error), preview  # the error as the walker records it
    raise AssertionError(f"{TRIGGER_FAILS} applied on a table with rows")


def real_runs(trigger_url: str, demo_url: str, root: Path) -> RealRuns:
    trigger, deploy_plan, deploy_failure, preview = trigger_dev_failed(trigger_url, root)
    trigger_status = status_card_data(trigger.name, assess(trigger))
    demo_env = environment(demo_url, demo.write_migrations(root / "demo"))
    demo.prepare_database(demo_url, demo_env.migrations_dir)
    demo_status = status_card_data(demo_env.name, assess(demo_env))
    now = datetime(2026, 11, 26, 10, 0, tzinfo=UTC)
    resolve = plan_resolve(demo_env, demo.FAILED, applied=False, now=now).params()
    resolve_op = operation("resolve", demo_env.name, resolve)
    mark = next(s for s in RUNBOOKS["resolve"].steps if s.plan is not None)
    sql = _manual_sql(demo_url, demo_env)
    return RealRuns(
        trigger_status=trigger_status,
        demo_status=demo_status,
        postgres_error=trigger_status["failed"][0]["logs"],
        resolve_plan=resolve,
        resolve_approval=plan_text(mark, resolve_op, demo_env),
        deploy_approval=deploy_plan,
        deploy_failure=deploy_failure,
        deploy_preview=preview,
        deploy_preview_failed=preview_deploy(trigger).params(),
        check_cards=[review_dict(r) for r in check_environment(_config(), trigger)],
        errors=_errors(trigger, demo_env),
        verification=_verification(demo_url, trigger_url),
        deploy_preview_repeat=_resolved_then_previewed(trigger),
        **sql,
    )


def _resolved_then_previewed(trigger: Environment) -> dict:
    """Option 1 on the failed trigger.dev migration (marked rolled back, the file not
    fixed), then what a re-run would show: the same checksum pending again."""
    with psycopg.connect(trigger.database_url.reveal(), autocommit=True) as conn:
        mark_rolled_back(conn, TRIGGER_FAILS)
    return preview_deploy(trigger).params()


def _manual_sql(url: str, env: Environment) -> dict:
    manual = analyse(SQL, VERIFY, stamp=STAMP)
    with psycopg.connect(url) as conn:
        result = dry_run(conn, manual, Limits("2s", "15s"))
    counts = card_data(manual, result, rows=False)
    params = {
        "sql": SQL,
        "verification": VERIFY,
        "backup_stamp": STAMP,
        "reason": REASON,
        "dry_run": counts,
        "dry_run_counts": result.counts(),
    }
    return {
        "sql_params": params,
        "sql_approval": plan_apply(operation("sql", env.name, params), env),
        "sql_counts": counts,
        "sql_rows": card_data(manual, result, rows=True),
        # What the dry run step returns (bot/runbooks/sql.py), its result in the card.
        "sql_dry_run_result": f"{sql_runbook._rows(result)}{sql_runbook._verified(result)}",
    }


# The runbook's "Check recent records", and one whose table the failed migration never made.
QUERIES = (
    VerificationQuery("Users", 'SELECT count(*) FROM "User"', "> 0"),
    VerificationQuery("Invoices due", 'SELECT count(*) FROM "Invoice"', None),
)


def _verification(current_url: str, restored_url: str) -> list[dict]:
    with psycopg.connect(current_url, autocommit=True) as current:
        now = run_queries(current, QUERIES)
    with psycopg.connect(restored_url, autocommit=True) as restored:
        then = run_queries(restored, QUERIES)
    return [
        {"name": q.name, "sql": q.sql, "expect": q.expect, "current": c, "restored": r}
        for q, c, r in zip(QUERIES, now, then, strict=True)
    ]


def _config():
    return load_config(Path(__file__).parents[3] / "rollback.example.toml")


def _errors(trigger: Environment, demo_env: Environment) -> list[UserError]:
    """Refusals the domain makes on bad or unlucky input, each as it reaches the person."""
    from commands import parse

    attempts = [
        lambda: _config().environment("prod"),
        lambda: parse("resolv 20221207113401"),
        lambda: parse("status --envv production"),
        lambda: plan_resolve(trigger, TRIGGER_FIRST, applied=False),
        lambda: plan_resolve(trigger, "no_such_migration", applied=False),
        lambda: check_environment(_config(), trigger, TRIGGER_FAILS),
        lambda: analyse("DELETE FROM users; COMMIT;", None, stamp=STAMP),
    ]
    errors = []
    for attempt in attempts:
        try:
            attempt()
        except UserError as error:
            errors.append(error)
        else:
            raise AssertionError("a refusal the catalog shows was not refused")
    return errors
