"""The sandbox page's JSON endpoints on the rig's fake Slack (no browser needed): what the
acting user sees, and their commands, clicks and submissions turned into signed requests."""

from __future__ import annotations

import ast
import json
import re
from importlib import resources
from pathlib import Path
from urllib.request import ProxyHandler, Request, build_opener

import pytest

from bot.sandbox.page import SlackPage
from bot.slack.ids import Callback

_opener = build_opener(ProxyHandler({}))


@pytest.fixture
def page(bot):
    bot.slack.attach_page(SlackPage(bot.slack, bot.signer))
    yield bot
    bot.slack.attach_page(None)  # the fake is shared by the whole session


def call(bot, path: str, body: dict | None = None) -> tuple[int, dict | str]:
    data = json.dumps(body).encode() if body is not None else None
    request = Request(bot.slack.root + path, data=data, method="POST" if data else "GET")
    request.add_header("Content-Type", "application/json")
    try:
        with _opener.open(request, timeout=10) as answer:
            status, text = answer.status, answer.read().decode()
    except OSError as error:  # urllib's HTTPError for 4xx
        status, text = error.code, error.read().decode()
    try:
        return status, json.loads(text)
    except ValueError:
        return status, text


def test_the_page_is_served_at_the_root(page):
    status, html = call(page, "/")
    assert status == 200 and "/sandbox/state" in html and "<script>" in html


def test_a_typed_command_is_signed_and_its_answer_shown_to_that_user_only(page):
    status, answer = call(
        page, "/sandbox/command", {"user": "U_ALICE", "channel": "C_ENG", "text": "/rollback help"}
    )
    assert status == 200 and answer["ok"]
    _, alice = call(page, "/sandbox/state?user=U_ALICE&channel=C_ENG")
    assert any("/rollback drill" in json.dumps(e) for e in alice["ephemerals"])
    _, bob = call(page, "/sandbox/state?user=U_BOB&channel=C_ENG")
    assert bob["ephemerals"] == [] and bob["me"] == "U_BOB"
    assert {"engineering", "general"} <= {c["name"] for c in bob["channels"]}


def test_modals_open_and_submit_for_the_acting_user(page):
    typed = {"user": "U_ALICE", "channel": "C_ENG", "text": "/rollback drill"}
    call(page, "/sandbox/command", typed)
    view = page.wait_until(lambda: call(page, "/sandbox/state?user=U_ALICE")[1]["views"])[-1]
    assert view["callback_id"] == Callback.CHECKLIST
    assert call(page, "/sandbox/state?user=U_BOB")[1]["views"] == []
    values = {
        b["block_id"]: {b["element"]["action_id"]: [o["value"] for o in b["element"]["options"]]}
        for b in view["blocks"]
        if b["type"] == "input"
    }
    status, answer = call(
        page, "/sandbox/submit", {"user": "U_ALICE", "view_id": view["id"], "values": values}
    )
    assert status == 200 and answer["ok"]
    op = page.store.active_operation("staging")
    page.wait_until(lambda: page.engine.checklist_complete(op.id, "before"), what="ticks")
    # The checklist became its confirmation (issue 19 item 4: saving says what was saved).
    (saved,) = call(page, "/sandbox/state?user=U_ALICE")[1]["views"]
    assert saved.get("callback_id") != Callback.CHECKLIST and "Saved" in json.dumps(saved)


def test_what_slack_would_refuse_is_a_clear_error(page):
    typed = {"user": "U_ALICE", "channel": "C_ENG", "text": "/deploy now"}
    status, answer = call(page, "/sandbox/command", typed)
    assert status == 400 and "not a valid command" in answer["error"]
    status, answer = call(page, "/sandbox/submit", {"user": "U_ALICE", "view_id": "VNOPE"})
    assert status == 400 and "no longer open" in answer["error"]


# Every `:name:` shortcode in a product string literal (docstrings aside); ":memory:" is
# SQLite's in-memory database name, not an emoji.
_SHORTCODE = re.compile(r"(?<![\w:/]):([a-z][a-z0-9_+-]*):(?![\w/])")
_NOT_EMOJI = {"memory"}


def _shortcodes_the_bot_sends() -> dict[str, str]:
    found: dict[str, str] = {}
    root = Path(__file__).parents[2]
    for package in ("bot", "commands", "handlers"):
        for path in sorted((root / package).rglob("*.py")):
            tree = ast.parse(path.read_text())
            docstrings = {
                id(node.body[0].value)
                for node in ast.walk(tree)
                if isinstance(node, ast.Module | ast.FunctionDef | ast.ClassDef)
                and node.body
                and isinstance(node.body[0], ast.Expr)
            }
            for node in ast.walk(tree):
                literal = isinstance(node, ast.Constant) and isinstance(node.value, str)
                if literal and id(node) not in docstrings:
                    for name in _SHORTCODE.findall(node.value):
                        found.setdefault(name, str(path.relative_to(root)))
    return {k: v for k, v in found.items() if k not in _NOT_EMOJI}


def test_every_emoji_the_bot_sends_shows_as_an_emoji_on_the_page():
    html = resources.files("bot.sandbox").joinpath("static/index.html").read_text()
    table = re.search(r"const EMOJI = \{(.*?)\n\};", html, re.S).group(1)
    mapped = set(re.findall(r'(?:^|[\s,{])"?([a-z0-9_+-]+)"?:\s*"', table))
    sent = _shortcodes_the_bot_sends()
    assert {"wastebasket", "white_check_mark", "warning"} <= set(sent)  # the reader works
    missing = {name: where for name, where in sent.items() if name not in mapped}
    assert not missing, f"add these to EMOJI in bot/sandbox/static/index.html: {missing}"


def test_the_favicon_is_served(page):
    status, _ = call(page, "/favicon.svg")
    assert status == 200
    status, _ = call(page, "/favicon.ico")
    assert status == 200
