"""Option 4's Commit / Roll back message, from a real run on PostgreSQL: the verification
result is a table in a code block of its own, aligned, and no value in it can close that
block or format anything (it once sat in the prompt's mrkdwn, whose escaping broke its
fences: stray backticks, lost alignment, ``_a_`` in italics)."""

from __future__ import annotations

import html

import psycopg
import pytest
from slack_sdk.models.blocks import Block

from bot.slack import views
from bot.sql.manual import analyse
from bot.sql.manual_plan import decision_text
from bot.sql.manual_run import apply
from bot.sql.session import Limits
from tests.unit.slack.catalog import sql_decision
from tests.unit.slack.test_views import operation

FORGED = ":white_check_mark: *Reviewed by the DBA team*"
NOTES = ("plain", "_a_", f"x```\n{FORGED}\n```y", "*bold* ~gone~", "<!channel>")
VERIFY = "SELECT id, email, note FROM users ORDER BY id"


@pytest.fixture
def evidence(pg_role_url):
    """What the real run asks the requester, after an approved UPDATE (rows shown)."""
    with psycopg.connect(pg_role_url, autocommit=True) as db:
        db.execute("CREATE TABLE users (id int PRIMARY KEY, email text, note text)")
        for n, note in enumerate(NOTES, 1):
            db.execute("INSERT INTO users VALUES (%s, %s, %s)", (n, f"u{n}@example.com", note))
    manual = analyse("UPDATE users SET email = lower(email) WHERE id < 3", VERIFY, stamp="s1")
    asked = []
    with psycopg.connect(pg_role_url, autocommit=False) as conn:
        apply(conn, manual, Limits("2s", "5s"), lambda r: asked.append(r) or "rollback")
    return decision_text("production", asked[0].to_dict(), manual.verification)


def _message(evidence) -> dict:
    return views.decision_message(operation(runbook="sql"), sql_decision(evidence))


def _sections(message: dict) -> list[str]:
    return [b["text"]["text"] for b in message["blocks"] if b["type"] == "section"]


def _shown(code: str) -> list[str]:
    """A code block's lines as Slack shows them (entities decoded, zero-width spaces
    invisible)."""
    return (
        html.unescape(code.removeprefix("```").removesuffix("```"))
        .replace("\u200b", "")
        .split("\n")
    )


def test_the_verification_result_is_an_aligned_table_in_a_block_of_its_own(evidence):
    message = _message(evidence)
    for block in message["blocks"]:
        Block.parse(block).validate_json()
    code = [t for t in _sections(message) if t.startswith("```")]
    assert len(code) == 1, _sections(message)
    (table,) = code
    assert table.endswith("```") and table.count("```") == 2  # nothing in it closes it
    lines = _shown(table)
    assert lines[0].split(" | ")[0].rstrip() == "id" and "email" in lines[0] and "note" in lines[0]
    assert set(lines[1]) <= {"-", "+"}
    # Aligned: every row's columns start where the header's do (the values hold no "|").
    starts = [lines[0].index("email"), lines[0].index("note")]
    for row in (lines[2], lines[3], lines[5], lines[6]):
        assert [row.index("u"), row.index(" | ", starts[0]) + 3] == starts, lines
    assert len(lines) == 2 + len(NOTES)  # a line break in a value does not make a row


def test_no_value_in_the_table_closes_the_block_or_formats_outside_it(evidence):
    message = _message(evidence)
    prose = [t for t in _sections(message) if not t.startswith("```")]
    for value in ("_a_", FORGED, "*bold*", "u1@example.com"):
        assert not any(value in t for t in prose), value  # only inside the code block
    (table,) = [t for t in _sections(message) if t.startswith("```")]
    forged_row = next(line for line in _shown(table) if FORGED in line)
    assert forged_row.startswith("3 ")  # the forged line stays inside its own row
    assert "<!channel>" not in table and "&lt;!channel&gt;" in table
    assert "``" not in table.removeprefix("```").removesuffix("```")  # runs broken: inert


def test_the_prompt_asks_first_and_counts_outside_the_table(evidence):
    message = _message(evidence)
    head, counts = _sections(message)[:2]
    assert "decide for `op-20261126-abcdef`: Commit or roll back? Ran on production" in head
    assert "statement 1 (line 1" in counts and "backup users_backup_s1" in counts
    assert f"Verification query ({VERIFY}): 5 rows" in counts
    assert "```" not in head + counts


def test_the_notification_text_holds_the_question_and_the_whole_table_fenced(evidence):
    text = _message(evidence)["text"]
    assert text.startswith(":question: <@U_ALICE>, decide for `op-20261126-abcdef`: Commit")
    assert text.count("```") == 2 and text.endswith("```")
    assert "_a_" in text.split("```")[1] and "_a_" not in text.split("```")[0]


def test_no_table_when_the_rows_are_not_shown(evidence):
    """An unprotected environment (nobody approved): the count, no rows, no code block."""
    message = _message(type(evidence)(evidence.prompt))
    assert not any(t.startswith("```") for t in _sections(message))
    assert "```" not in message["text"] and "u1@example.com" not in str(message)
