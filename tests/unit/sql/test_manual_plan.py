"""The plan an option 4 approver approves, from a real dry run."""

from __future__ import annotations

import html

import psycopg
import pytest

from bot.slack.blocks import button
from bot.slack.plan_views import pages, plan_blocks, plan_modal
from bot.slack.values import PlanPage
from bot.sql.manual import analyse
from bot.sql.manual_plan import PlanContext, counts_sha256, plan_text
from bot.sql.manual_run import dry_run
from bot.sql.session import Limits

STAMP = "20251208_120000"
CONTEXT = PlanContext("production", "op-1", "INC-7", "no change to _prisma_migrations")


@pytest.fixture
def db(pg_role_url):
    with psycopg.connect(pg_role_url, autocommit=True) as conn:
        conn.execute(
            "CREATE TABLE users (id int PRIMARY KEY, email text);"
            " INSERT INTO users SELECT n, 'secret-' || n || '@example.com'"
            " FROM generate_series(1, 20) n;"
            " CREATE TABLE posts (id int PRIMARY KEY, user_id int REFERENCES users"
            " ON DELETE CASCADE); INSERT INTO posts SELECT n, n FROM generate_series(1, 20) n"
        )
        yield pg_role_url


def _plan(url: str, sql: str, previous=None) -> tuple[str, object]:
    manual = analyse(sql, "SELECT email FROM users", stamp=STAMP)
    with psycopg.connect(url, autocommit=False) as conn:
        result = dry_run(conn, manual, Limits("2s", "5s"))
    text = plan_text(manual, CONTEXT, result.to_dict(samples=False), result.counts(), previous)
    return text, result


def test_the_hidden_delete_is_summarised_first_with_its_count_and_backups(db):
    sql = "SELECT id FROM users;\n" * 120 + "DELETE FROM users WHERE id > 15"
    text, result = _plan(db, sql)
    summary = text.split("\n\n")[1]
    assert summary.startswith("WHAT IT CHANGES")
    assert "statement 121, line 121 [changes data" in summary
    assert "DELETE users: 5 rows" in summary
    assert f"backup users_backup_{STAMP} (rows of users): 5 rows" in summary
    assert "posts (user_id) ON DELETE CASCADE of public.posts): 5 rows" in summary
    assert "statements that only read (SELECT): 120: numbers 1-120" in text
    assert text.endswith(sql)
    assert counts_sha256(result.counts()) in text
    # The approval message shows the summary itself, not only behind a button.
    blocks = plan_blocks(text, button("View full plan", "v", "a"))
    shown = html.unescape(str(blocks))
    assert "statement 121, line 121" in shown and "DELETE users: 5 rows" in shown


def test_no_sample_row_is_in_the_plan(db):
    text, _ = _plan(db, "DELETE FROM users WHERE id = 3")
    assert "secret-" not in text


def test_other_counts_make_another_plan_showing_both(db, conn):
    text, first = _plan(db, "DELETE FROM users WHERE id > 15")
    conn.execute("DELETE FROM posts WHERE id = 16")
    again, second = _plan(db, "DELETE FROM users WHERE id > 15", first.to_dict(samples=False))
    assert again != text and first.counts() != second.counts()
    assert "THE COUNTS CHANGED" in again
    assert "approved 5 rows, now 4 rows" in again


@pytest.mark.parametrize("before", [*range(0, 290, 41), 290])  # 290: the very end
@pytest.mark.parametrize(
    "destructive",
    [
        "DELETE FROM users WHERE id = 7;",
        "WITH gone AS (DELETE FROM users WHERE id = 7 RETURNING id) SELECT * FROM gone;",
    ],
)
def test_a_destructive_statement_anywhere_in_3000_characters_is_in_the_approval_message(
    before, destructive
):
    """With the real analysis and plan (no dry run: its counts only add lines): wherever
    the statement sits among harmless ones, the message itself names it, and the modal's
    pages hold the whole plan."""
    harmless = ["SELECT 1;"] * ((3000 - len(destructive)) // 10)
    sql = "\n".join(harmless[:before] + [destructive] + harmless[before:])
    assert 2990 <= len(sql) <= 3000
    manual = analyse(sql, None, stamp=STAMP)
    text = plan_text(manual, CONTEXT, {}, [])
    message = html.unescape(str(plan_blocks(text, button("View full plan", "v", "a"))))
    line = sql[: sql.index(destructive)].count("\n") + 1
    assert f"line {line} [" in message and "DELETE FROM users WHERE id = 7" in message
    pages_shown = "".join(
        html.unescape("".join(b["text"]["text"].strip("`") for b in view if b["type"] == "section"))
        for view in (
            plan_modal(text, "h", PlanPage("a", n))["blocks"] for n in range(len(pages(text)))
        )
    )
    assert pages_shown.replace("`\u200b", "`") == text
