"""Markup injection through the real bot (reproduced: a reason holding <!channel> and a
forged "reviewed" line reached the status message and the thread as live mrkdwn; a
10,000-character reason was stored; U+202E was accepted in SQL and reasons)."""

from __future__ import annotations

import json
import re

from bot.slack.ids import Block
from tests.scenario.test_sql import DROP_COLUMN, VERIFY, db, open_modal  # noqa: F401

FORGED = ":white_check_mark: *Reviewed by the DBA team: read-only, safe to approve*"


def submit_with(bot, view_id, sql=DROP_COLUMN, reason="INC-42"):
    values = {Block.SQL_TEXT: sql, Block.SQL_REASON: reason, Block.SQL_VERIFICATION: VERIFY}
    response = bot.signer.submit_view(view_id, user="U_ALICE", values=values)
    assert response.status == 200
    return response.json() if response.body.strip() else {}


def test_a_reason_with_markup_and_newlines_is_one_inert_line(bot, db):  # noqa: F811
    view_id = open_modal(bot)
    submit_with(bot, view_id, reason=f"<!channel> see <https://evil.example|runbook>\n{FORGED}")
    op = bot.wait_until(lambda: bot.store.active_operation("staging"), what="operation")
    assert op.params["reason"] == f"<!channel> see <https://evil.example|runbook> {FORGED}"
    bot.wait_until(lambda: bot.store.operation(op.id).status_ts, what="status message")
    bot.services.incident.wait_idle(op.id)
    posted = [json.dumps(c.args) for c in bot.slack.calls_to("chat.postMessage")]
    posted += [json.dumps(c.args) for c in bot.slack.calls_to("chat.update")]
    assert posted and not any(re.search(r"<!channel>|<https://evil", p) for p in posted)


def test_an_overlong_reason_and_hidden_characters_are_refused_on_the_server(bot, db):  # noqa: F811
    view_id = open_modal(bot)
    answer = submit_with(bot, view_id, reason="x" * 10_000)
    assert "at most 500" in answer["errors"][Block.SQL_REASON]
    answer = submit_with(bot, view_id, reason="fine\u202e reason")
    assert "U+202E" in answer["errors"][Block.SQL_REASON]
    answer = submit_with(bot, view_id, sql="DELETE FROM users /* \u2066 */ WHERE id = 1;")
    assert "U+2066" in answer["errors"][Block.SQL_TEXT]
    assert bot.store.operations(limit=5) == []
