"""The sandbox page's JSON endpoints on the rig's fake Slack (no browser needed): what the
acting user sees, and their commands, clicks and submissions turned into signed requests."""

from __future__ import annotations

import json
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
    assert call(page, "/sandbox/state?user=U_ALICE")[1]["views"] == []


def test_what_slack_would_refuse_is_a_clear_error(page):
    typed = {"user": "U_ALICE", "channel": "C_ENG", "text": "/deploy now"}
    status, answer = call(page, "/sandbox/command", typed)
    assert status == 400 and "not a valid command" in answer["error"]
    status, answer = call(page, "/sandbox/submit", {"user": "U_ALICE", "view_id": "VNOPE"})
    assert status == 400 and "no longer open" in answer["error"]
