"""The manual SQL cards stay within Block Kit limits and say what they left out; the channel's
card holds counts, the requester's holds the rows."""

from __future__ import annotations

import html

from bot.slack.blocks import MESSAGE_BLOCKS_MAX, SECTION_TEXT_MAX
from bot.slack.cards import render_card
from bot.slack.sql_views import sql_modal
from bot.store.records import Operation


def operation() -> Operation:
    return Operation(
        "op-1",
        "sql",
        "staging",
        "running",
        "U_ALICE",
        {},
        "",
        "",
        "",
        None,
        None,
        None,
        None,
        None,
        None,
    )


def statement(index: int, rows: int = 0, width: int = 10) -> dict:
    sample = {
        "columns": ["id", "payload"],
        "rows": [[str(n), "x" * width] for n in range(min(rows, 5))],
        "total": rows,
    }
    return {
        "index": index,
        "line": index + 1,
        "sql": f"DELETE FROM t WHERE id = {index}",
        "effect": "changes data",
        "rowcount": rows,
        "parts": [{"label": "DELETE t", "verb": "DELETE", "rows": rows}],
        "sample": sample if rows else None,
    }


def card(statements: list[dict], kind: str = "sql_rows") -> dict:
    data = {
        "sha256": "ab" * 32,
        "verification_sql": "SELECT 1",
        "statements": statements,
        "backups": [{"name": "t_backup_x", "source": "t", "rows": 3, "skipped": None}],
        "verification": {"columns": ["?column?"], "rows": [["1"]], "total": 1},
        "committed": False,
    }
    return render_card(operation(), kind, "Dry run on staging", data)


def section_texts(message: dict) -> list[str]:
    return [b["text"]["text"] for b in message["blocks"] if b["type"] == "section"]


def test_a_sample_is_a_monospace_table_with_the_rows_left_out_counted():
    message = card([statement(0, rows=12)])
    table = next(t for t in section_texts(message) if "payload" in t)
    assert table.startswith("*1.* line 1\n```id | payload\n---+-")
    assert "_7 more rows not shown._" in table


def test_the_requesters_rows_stay_aligned_as_slack_shows_them_whatever_the_values_hold():
    """The values arrive escaped (&lt; is four characters, a zero-width space breaks each
    run of backticks): the columns line up on what Slack shows, and a line break in a value
    does not make a row."""
    values = ["<b>", "a & b", "x```y", "one\ntwo", "plain"]
    sample = {"columns": ["payload", "id"], "rows": [[v, str(n)] for n, v in enumerate(values)]}
    first = statement(0, rows=5) | {"sample": sample | {"total": 5}}
    table = next(t for t in section_texts(card([first])) if "payload" in t)
    code = table.split("\n", 1)[1]
    assert code.startswith("```") and code.endswith("```") and code.count("```") == 2
    lines = html.unescape(code.strip("`")).replace("\u200b", "").split("\n")
    assert len(lines) == 2 + len(values)
    assert {line.index("|") for line in lines if "|" in line} == {len("one\\ntwo") + 1}
    assert lines[5] == "one\\ntwo | 3"


def test_many_statements_and_wide_rows_stay_within_slack_limits():
    for kind in ("sql_rows", "sql_dry_run"):
        message = card([statement(i, rows=40, width=2000) for i in range(60)], kind)
        assert len(message["blocks"]) <= MESSAGE_BLOCKS_MAX
        assert all(len(t) <= SECTION_TEXT_MAX for t in section_texts(message))
    rows = card([statement(i, rows=40, width=2000) for i in range(60)])
    assert "more statements' rows not shown" in str(rows["blocks"])
    assert any("more characters" in t for t in section_texts(rows))


def test_the_channels_card_has_every_count_and_no_row():
    message = card([statement(i, rows=i + 1, width=30) for i in range(3)], "sql_dry_run")
    text = str(message["blocks"])
    assert "xxxxxxxx" not in text and "payload" not in text
    assert "DELETE t: *1 row*" in text and "DELETE t: *2 rows*" in text and "*3 rows*" in text
    assert "*Verification query* `SELECT 1`: 1 row" in text


def test_the_modal_takes_up_to_slacks_3000_characters_and_requires_a_reason():
    view = sql_modal("production", protected=True)
    inputs = {b["block_id"]: b for b in view["blocks"] if b["type"] == "input"}
    assert inputs["sql_text"]["element"]["max_length"] == 3000
    assert inputs["sql_verification"]["optional"] is True
    assert inputs["sql_reason"]["optional"] is False
    assert len(view["title"]["text"]) <= 24
