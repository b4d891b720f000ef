"""A corpus of bad input across every command and modal. Each case must get a
clear error where the user is, and change nothing: the database's catalog and the hash of
every table's rows are compared before and after, and no operation may start.

Hand-written cases plus generated ones (hypothesis) for the slash command text, and
the hostile SQL corpus of tests/faults/hostile_sql.py through the SQL modal."""

from __future__ import annotations

import time

import psycopg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bot.slack.ids import Block, Callback
from tests.faults.hostile_sql import HOSTILE_SQL, HOSTILE_VERIFICATION
from tests.scenario.test_resolve import BAD, GOOD, prisma  # noqa: F401 - the fixture
from tests.unit.sql.catalog_snapshot import catalog_snapshot_of

ERROR_MARKS = (":warning:", "Unknown", "needs", "not", "cannot", "must", "no ", "No ")

SLASH_CASES = [
    # unknown subcommands and typos
    "hepl",
    "stauts",
    "resolv x",
    "rollback",
    "drop",
    "DROP TABLE users",
    "undo",
    "pitrr",
    "sqll",
    "revertt x",
    "-h",
    "--help",
    "...",
    "¯\\_(ツ)_/¯",
    "💥",
    "help me please now",
    "drill drill",
    "history now",
    "status a b",
    "report",
    "report a b",
    "checklist",
    "checklist a b c",
    "cancel",
    "cancel a b",
    "resolve",
    "resolve a b",
    # options
    "drill --env",
    "drill --env nowhere",
    "drill --env=nowhere",
    "drill --environment x",
    "drill --env staging --env production",
    "drill -e staging",
    "drill --",
    "status --env",
    "status --env ../../etc",
    "status nowhere",
    "resolve x --env",
    "resolve x --app",
    "resolve x --applied=yes",
    "deploy --env",
    "deploy --env nowhere",
    "deploy extra",
    "sql --env nowhere",
    "sql extra",
    "sql --env",
    "history --env staging",
    # quoting
    'resolve "unterminated',
    "resolve 'unterminated",
    'drill "',
    "status '",
    'report "a',
    # unknown operations
    "report op-00000000-000000",
    "report nope",
    "report ../../etc/passwd",
    "report '; DROP TABLE users; --",
    "checklist nope",
    "checklist op-00000000-000000 after",
    "checklist op-00000000-000000 sideways",
    "cancel op-00000000-000000",
    "cancel '; DELETE FROM users; --",
    # hostile or wrong migration names (the confirmation modal says what is wrong)
    "resolve nope --env staging",
    f"resolve {BAD}x --env staging",
    f"resolve {BAD[:-2]} --env staging",
    f"resolve {GOOD} --env staging",
    f"resolve {GOOD} --applied --env staging",
    "resolve ../../etc/passwd --env staging",
    'resolve "20251208120000_problematic_migration; DROP TABLE users" --env staging',
    'resolve "\'; DELETE FROM _prisma_migrations; --" --env staging',
    "resolve %00 --env staging",
    "resolve * --env staging",
    "resolve . --env staging",
    "resolve .. --env staging",
    "resolve /tmp --env staging",
    "resolve ~root --env staging",
    "resolve $(reboot) --env staging",
    "resolve `id` --env staging",
    f"resolve {'x' * 300} --env staging",
    "resolve NULL --env staging",
    "resolve 20251208120000 --env staging",
    "resolve problematic_migration --env staging",
    "resolve 20251208120000_PROBLEMATIC_MIGRATION --env staging",
    'resolve "20251208120000_problematic_migration " --env staging',
    "resolve ＤＲＯＰ --env staging",
    "resolve nope --applied --env staging",
    "resolve ../migration_lock.toml --applied --env staging",
]

SQL_CASES = [
    # (sql, verification, reason, field that must complain)
    ("", "", "r", Block.SQL_TEXT),
    ("-- just a comment", "", "r", Block.SQL_TEXT),
    ("/* only a comment */", "", "r", Block.SQL_TEXT),
    ("   \n\t  ", "", "r", Block.SQL_TEXT),
    ("SELECT 1;" + " " * 3000, "", "r", Block.SQL_TEXT),
    ("DELETE FROM users WHERE id IN (" + ",".join(["1"] * 1600) + ");", "", "r", Block.SQL_TEXT),
    ("BEGIN; DELETE FROM users WHERE id = 1; COMMIT;", "", "r", Block.SQL_TEXT),
    ("DELETE FROM users WHERE id = 1; COMMIT;", "", "r", Block.SQL_TEXT),
    ("START TRANSACTION; DELETE FROM users;", "", "r", Block.SQL_TEXT),
    ("ROLLBACK;", "", "r", Block.SQL_TEXT),
    ("SAVEPOINT a; DELETE FROM users;", "", "r", Block.SQL_TEXT),
    ("RELEASE SAVEPOINT a;", "", "r", Block.SQL_TEXT),
    ("END;", "", "r", Block.SQL_TEXT),
    ("ABORT;", "", "r", Block.SQL_TEXT),
    ("PREPARE TRANSACTION 'x';", "", "r", Block.SQL_TEXT),
    ("COMMIT PREPARED 'x';", "", "r", Block.SQL_TEXT),
    ("CREATE INDEX CONCURRENTLY i ON users (email);", "", "r", Block.SQL_TEXT),
    ("DROP INDEX CONCURRENTLY i;", "", "r", Block.SQL_TEXT),
    ("REINDEX TABLE CONCURRENTLY users;", "", "r", Block.SQL_TEXT),
    ("VACUUM users;", "", "r", Block.SQL_TEXT),
    ("VACUUM FULL;", "", "r", Block.SQL_TEXT),
    ("CREATE DATABASE x;", "", "r", Block.SQL_TEXT),
    ("DROP DATABASE x;", "", "r", Block.SQL_TEXT),
    ("ALTER SYSTEM SET work_mem = '1GB';", "", "r", Block.SQL_TEXT),
    ("CREATE TABLESPACE t LOCATION '/tmp';", "", "r", Block.SQL_TEXT),
    ("SET statement_timeout = 0;", "", "r", Block.SQL_TEXT),
    ("SET lock_timeout = 0; DELETE FROM users;", "", "r", Block.SQL_TEXT),
    ("RESET statement_timeout;", "", "r", Block.SQL_TEXT),
    ("COPY users FROM STDIN;", "", "r", Block.SQL_TEXT),
    ("DELETE FROM users WHERE", "", "r", Block.SQL_TEXT),
    ("DELET FROM users;", "", "r", Block.SQL_TEXT),
    ("ALTER TABLE users DROP COLUMN;", "", "r", Block.SQL_TEXT),
    ("UPDATE users SET = 1;", "", "r", Block.SQL_TEXT),
    ("SELECT 'unterminated;", "", "r", Block.SQL_TEXT),
    ('ALTER TABLE "users DROP COLUMN x;', "", "r", Block.SQL_TEXT),
    ("DROP TABLE users CASCADE CASCADE;", "", "r", Block.SQL_TEXT),
    ("$$", "", "r", Block.SQL_TEXT),
    ("DELETE FROM users WHERE id = 1;", "DELETE FROM users", "r", Block.SQL_VERIFICATION),
    ("DELETE FROM users WHERE id = 1;", "SELECT 1; SELECT 2", "r", Block.SQL_VERIFICATION),
    (
        "DELETE FROM users WHERE id = 1;",
        "UPDATE users SET email = 'x'",
        "r",
        Block.SQL_VERIFICATION,
    ),
    ("DELETE FROM users WHERE id = 1;", "SELEC 1", "r", Block.SQL_VERIFICATION),
    (
        "DELETE FROM users WHERE id = 1;",
        "INSERT INTO users VALUES (9, 'x')",
        "r",
        Block.SQL_VERIFICATION,
    ),
    ("DELETE FROM users WHERE id = 1;", "DROP TABLE users", "r", Block.SQL_VERIFICATION),
    ("DELETE FROM users WHERE id = 1;", "COMMIT", "r", Block.SQL_VERIFICATION),
    ("DELETE FROM users WHERE id = 1;", "", "", Block.SQL_REASON),
    ("DELETE FROM users WHERE id = 1;", "", "   ", Block.SQL_REASON),
]
# What a careless or hostile requester may try, refused before anything runs.
SQL_CASES += [(sql, "", "r", Block.SQL_TEXT) for sql in HOSTILE_SQL]
SQL_CASES += [
    ("DELETE FROM users WHERE id = 1;", query, "r", Block.SQL_VERIFICATION)
    for query in HOSTILE_VERIFICATION
]


@pytest.fixture
def env(bot_factory, prisma, pg_url):  # noqa: F811 - the imported fixture
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute(
            "CREATE TABLE users (id int PRIMARY KEY, email text NOT NULL);"
            " INSERT INTO users SELECT g, 'u' || g || '@example.com'"
            " FROM generate_series(1, 50) g"
        )
    bot = bot_factory(staging_extra=f'migrations_dir = "{prisma.path}"')
    # Hundreds of modals in a few seconds is this test's pace, not a person's: lift the
    # views.* limits so the test is about input, not Slack's rate limits.
    for method in ("views.open", "views.update"):
        bot.slack.set_rate_limit(method, per_second=1000, burst=1000)
    return bot, pg_url


def database_state(url: str) -> tuple:
    """The catalog plus an md5 of every table's rows, _prisma_migrations included."""
    with psycopg.connect(url, autocommit=True) as conn:
        catalog = catalog_snapshot_of(conn)
        tables = [
            r[0]
            for r in conn.execute(
                "SELECT quote_ident(schemaname) || '.' || quote_ident(tablename) FROM pg_tables"
                " WHERE schemaname NOT IN ('pg_catalog', 'information_schema') ORDER BY 1"
            )
        ]
        rows = {
            t: conn.execute(
                f"SELECT md5(coalesce(string_agg(x::text, ',' ORDER BY x::text), '')) FROM {t} x"
            ).fetchone()[0]
            for t in tables
        }
    return catalog, rows


def shown_after(bot, response, marks_before: int) -> str:
    """What the user was shown: the ack body, an ephemeral reply, or a modal."""
    body = response.json() if response.body.strip() else None
    if body and (body.get("text") or body.get("blocks")):
        return str(body)
    deadline = time.monotonic() + 10
    shown = ""
    while time.monotonic() < deadline:
        out = [str(r) for r in bot.slack.responses()]
        out += [
            str(c.args.get("view"))
            for c in bot.slack.calls
            if c.method in ("views.open", "views.update")
        ]
        shown = "\n".join(out[marks_before:])
        # A modal may first say "Checking..." and then show the error (views.update).
        if any(m in shown for m in ERROR_MARKS):
            return shown
        time.sleep(0.02)
    return shown


def sql_modals(bot) -> list:
    return [
        c for c in bot.slack.calls_to("views.open") if c.args["view"]["callback_id"] == Callback.SQL
    ]


def seen_count(bot) -> int:
    return len(bot.slack.responses()) + len(
        [c for c in bot.slack.calls if c.method in ("views.open", "views.update")]
    )


def test_corpus_is_at_least_200_cases():
    total = len(SLASH_CASES) + len(SQL_CASES) + GENERATED
    assert total >= 200, total
    assert len(HOSTILE_SQL) + len(HOSTILE_VERIFICATION) >= 100


def test_bad_slash_commands_get_a_clear_error_and_change_nothing(env):
    bot, url = env
    before = database_state(url)
    problems = []
    for text in SLASH_CASES:
        marks = seen_count(bot)
        response = bot.signer.slash(text)
        shown = shown_after(bot, response, marks)
        if response.status != 200 or not any(m in shown for m in ERROR_MARKS):
            problems.append(f"{text!r}: status {response.status}, shown {shown[:200]!r}")
        if bot.store.operations(active=True, limit=1):
            problems.append(f"{text!r} started an operation")
        if database_state(url) != before:
            problems.append(f"{text!r} changed the database")
            before = database_state(url)
    assert not problems, "\n".join(problems)


def test_bad_sql_modal_input_is_a_field_error_and_changes_nothing(env):
    bot, url = env
    before = database_state(url)
    problems = []
    for sql, verification, reason, field in SQL_CASES:
        opened_before = len(sql_modals(bot))
        bot.signer.slash("sql --env staging")
        # This case's own modal: the newest one is the previous case's until it arrives.
        opened = bot.wait_until(
            lambda n=opened_before: len(sql_modals(bot)) > n and sql_modals(bot)[-1],
            what="the SQL modal",
        )
        values = {Block.SQL_TEXT: sql, Block.SQL_REASON: reason}
        if verification:
            values[Block.SQL_VERIFICATION] = verification
        try:
            response = bot.signer.submit_view(
                opened.response["view"]["id"], user="U_ALICE", values=values
            )
        except (AssertionError, ValueError) as refused_by_client:
            # Slack's own client refuses an empty required field: also a clear error.
            if field in (Block.SQL_TEXT, Block.SQL_REASON) and not (sql.strip() and reason):
                continue
            problems.append(f"{sql[:60]!r}: {refused_by_client}")
            continue
        body = response.json() or {}
        errors = body.get("errors", {})
        if body.get("response_action") != "errors" or field not in errors:
            problems.append(f"{sql[:60]!r}/{verification[:30]!r}: {str(body)[:200]}")
        elif len(errors[field]) < 10:
            problems.append(f"{sql[:60]!r}: unclear message {errors[field]!r}")
        if bot.store.operations(active=True, limit=1):
            problems.append(f"{sql[:60]!r} started an operation")
            break
        if database_state(url) != before:
            problems.append(f"{sql[:60]!r} changed the database")
    assert not problems, "\n".join(problems)


GENERATED = 120
_TOKEN = st.one_of(
    st.text(alphabet=list("abcdefghijklmnopqrstuvwxyz0123456789-_=\"'./;*é\u200b☃"), max_size=12),
    st.sampled_from(
        [
            "--env",
            "--applied",
            "--env=staging",
            "help",
            "history",
            "status",
            "report",
            "cancel",
            "staging",
            "production",
            "nowhere",
        ]
    ),
)
_TEXT = st.lists(_TOKEN, max_size=6).map(" ".join)


def test_generated_slash_text_never_changes_anything(env):
    bot, url = env
    before = database_state(url)

    @settings(
        max_examples=GENERATED,
        deadline=None,
        derandomize=True,
        suppress_health_check=list(HealthCheck),
    )
    @given(text=_TEXT)
    def check(text):
        # Anything but the subcommands that start work (covered by their own tests).
        if text.strip().split(" ")[0] in (
            "drill",
            "sql",
            "deploy",
            "resolve",
            "pitr",
            "revert",
            "checklist",
        ):
            return
        response = bot.signer.slash(text)
        assert response.status == 200, text
        assert not bot.store.operations(active=True, limit=1), text

    check()
    assert database_state(url) == before
