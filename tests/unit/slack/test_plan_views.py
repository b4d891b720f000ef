"""The plan an approver is shown is the whole plan, within Slack's limits."""

from __future__ import annotations

import html

import pytest
from slack_sdk.models.blocks import Block
from slack_sdk.models.views import View

from bot.slack.blocks import button
from bot.slack.ids import Action
from bot.slack.plan_views import (
    CODE_CHARS,
    MESSAGE_BUDGET,
    chunks,
    escape,
    pages,
    plan_blocks,
    plan_modal,
)
from bot.slack.values import PlanPage

VIEW = button("View full plan", "plan_view", "apr-1")


def shown(blocks: list[dict]) -> str:
    """What a reader sees: the code sections' text, unescaped."""
    texts = [b["text"]["text"] for b in blocks if b["type"] == "section"]
    return html.unescape("".join(t.strip("`") for t in texts if t.startswith("```")))


def test_pieces_join_back_to_the_whole_escaped_text_and_fit_a_section():
    text = ("line with <!here> & <https://x|y> " * 30 + "\n") * 20 + "x" * 7000
    pieces = chunks(text)
    assert "".join(pieces) == escape(text)
    assert all(len(p) <= CODE_CHARS for p in pieces)
    assert not any("<" in p or ">" in p for p in pieces)
    # No piece ends inside an escape.
    assert all(not p.rstrip(";").endswith(("&amp", "&lt", "&gt", "&")) for p in pieces)


def test_a_short_plan_is_shown_whole_in_the_message():
    plan = "MANUAL SQL on staging\nreason: x\n\nFULL SQL:\nDELETE FROM users WHERE id = 1"
    blocks = plan_blocks(plan, VIEW)
    assert "DELETE FROM users WHERE id = 1" in shown(blocks)
    assert "That is the whole plan." in str(blocks)
    for block in blocks:
        Block.parse(block).validate_json()


def test_a_long_plan_shows_what_fits_and_says_how_much_is_left():
    plan = "summary: DELETE users\n\n" + "\n\n".join(f"part {i}\n" + "x" * 2000 for i in range(30))
    blocks = plan_blocks(plan, VIEW)
    assert len(blocks) <= 45
    assert sum(len(b["text"]["text"]) for b in blocks if b["type"] == "section") < (
        MESSAGE_BUDGET + 1000
    )
    assert "summary: DELETE users" in shown(blocks)
    note = blocks[-1]
    assert "The plan goes on" in note["text"]["text"] and note["accessory"] == VIEW
    for block in blocks:
        Block.parse(block).validate_json()


@pytest.mark.parametrize("position", range(0, 3000, 97))
def test_a_delete_anywhere_in_a_3000_character_text_is_in_what_the_approver_sees(position):
    filler = "SELECT 1;\n"
    sql = (filler * 300)[: 3000 - 25]
    sql = sql[:position] + "\nDELETE FROM users;\n" + sql[position:]
    plan = "summary\n\nFULL SQL:\n" + sql
    every = "".join(
        shown(plan_modal(plan, "h", PlanPage("a", n))["blocks"]) for n in range(len(pages(plan)))
    )
    assert "DELETE FROM users;" in every
    assert every == plan


def test_the_modal_pages_hold_every_character_once():
    plan = "\n\n".join(f"statement {i}: " + "y" * 2500 for i in range(80))  # ~200 KB
    every = pages(plan)
    assert len(every) > 1
    text = ""
    for n in range(len(every)):
        view = plan_modal(plan, "abc", PlanPage("a", n))
        View(**view).validate_json()
        assert len(view["blocks"]) <= 100 and len(str(view)) < 250_000
        text += shown(view["blocks"])
        moves = str(view["blocks"][-1])
        assert (f"{Action.PLAN_PAGE}_next" in moves) == (n < len(every) - 1)
        assert (f"{Action.PLAN_PAGE}_previous" in moves) == (n > 0)
        assert PlanPage.parse(view["private_metadata"]) == PlanPage("a", n)
    assert text == plan


def test_mrkdwn_in_the_plan_cannot_ping_or_disguise_a_link():
    plan = "SELECT '<!channel>', '<https://evil.example|harmless>'"
    (section, *_rest) = plan_blocks(plan, VIEW)
    assert "<!channel>" not in section["text"]["text"]
    assert "&lt;https://evil.example|harmless&gt;" in section["text"]["text"]
