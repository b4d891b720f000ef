"""A corpus of markup injection strings through every view builder that places user- or
database-originated text in mrkdwn (reproduced: a reason or a PostgreSQL error holding
<!channel>, <@U...> or <https://evil.example|Open the runbook> reached the status message
and the thread as live mrkdwn; a ``` in the plan closed the approval's code block and
forged a "Reviewed by the DBA team" line outside it)."""

from __future__ import annotations

import re

import pytest

from bot.slack import views
from bot.slack.blocks import code_block, escape, section, with_mentions
from bot.slack.cards import RENDERERS, card_renderer, render_card
from bot.store.records import Approval, Decision, StepRecord, StepStatus
from tests.unit.slack.test_views import operation

FORGED = ":white_check_mark: *Reviewed by the DBA team: read-only, safe to approve*"
CORPUS = [
    "<!channel>",
    "<!here|here>",
    "<!everyone>",
    "<@U0EVIL>",
    "<#C0EVIL>",
    "<!subteam^S0EVIL>",
    "<https://evil.example|Open the runbook>",
    "<mailto:x@evil.example|mail>",
    f"x```\n{FORGED}\n```y",
    f"```{FORGED}",
    "a & b &amp; <> &lt;",
    "\u202eexec\u202c",
    "\u2066hidden\u2069",
    "zero\u200bwidth",
    "line one\nline two",
]
LIVE = re.compile(r"<[!@#]|<(https?|mailto):")
HIDDEN = re.compile("[\u202a-\u202e\u2066-\u2069\u200e\u200f\u061c]")


def objects(payload):
    """Every dict in a Block Kit payload (blocks, elements, text objects), depth first."""
    if isinstance(payload, dict):
        yield payload
        for child in payload.values():
            yield from objects(child)
    elif isinstance(payload, list):
        for child in payload:
            yield from objects(child)


def mrkdwn_texts(payload) -> list[str]:
    found = [
        o["text"]
        for o in objects(payload)
        if o.get("type") == "mrkdwn" and isinstance(o.get("text"), str)
    ]
    if isinstance(payload, dict) and isinstance(payload.get("text"), str):
        found.append(payload["text"])
    return found


def assert_inert(build, bad: str, allowed_mentions: set[str] = frozenset()) -> None:
    """``build(text)`` with the bad string holds no live markup and no hidden character, and
    exactly the code fences it holds with a harmless string: quoted text opens and closes
    none (so a forged line cannot leave the approval's plan block)."""
    texts, plain_texts = mrkdwn_texts(build(bad)), mrkdwn_texts(build("harmless"))
    for text in texts:
        stripped = text
        for user in allowed_mentions:
            stripped = stripped.replace(f"<@{user}>", "")
        assert not LIVE.search(stripped), text
        assert not HIDDEN.search(text), text
    # (A multi-line text may take more sections than a harmless one: count fences overall.)
    fences = sum(t.count("```") for t in texts)
    assert fences == sum(t.count("```") for t in plain_texts), texts


@pytest.mark.parametrize("bad", CORPUS)
def test_status_message_keeps_summary_result_errors_and_progress_inert(bad):
    def build(text):
        op = operation(summary=f"SQL. Reason: {text}", result=f"Failed: {text}", status="failed")
        steps = [
            StepRecord(op.id, 0, "a", "A", True, False, status=StepStatus.FAILED, error=text),
            StepRecord(op.id, 1, "b", "B", False, True, status=StepStatus.RUNNING),
        ]
        progress = {"step_id": "b", "done": 1, "total": 2, "message": text}
        return views.status_message(op, steps, {}, progress)

    assert_inert(build, bad, {"U_ALICE"})


@pytest.mark.parametrize("bad", CORPUS)
def test_thread_lines_keep_only_the_operations_people_live(bad):
    def build(text):
        line = with_mentions(f"Cancelled by <@U_ALICE>: {text}", {"U_ALICE"})
        return {"text": views.timeline_line("2026-12-02T01:00:00Z", line)}

    assert "<@U_ALICE>" in build(bad)["text"]
    assert_inert(build, bad, {"U_ALICE"})


@pytest.mark.parametrize("bad", CORPUS)
def test_the_approval_request_shows_the_plan_in_a_block_nothing_closes(bad):
    def build(text):
        approval = Approval(
            id="apr-1",
            operation_id="op-20261126-abcdef",
            step_id="apply",
            plan_text=f"DELETE FROM t; -- {text}",
            plan_hash="0" * 64,
            requested_by="U_ALICE",
            requested_at="2026-11-26T10:00:00.000000Z",
            expires_at="2026-11-26T10:30:00.000000Z",
        )
        return views.approval_request(operation(), approval, "<@U_BOB>")

    assert_inert(build, bad, {"U_ALICE", "U_BOB"})


@pytest.mark.parametrize("bad", CORPUS)
def test_a_decision_prompt_is_inert(bad):
    assert_inert(
        lambda text: views.decision_message(operation(), _decision(text)), bad, {"U_ALICE"}
    )


@pytest.mark.parametrize("bad", CORPUS)
def test_a_decisions_table_keeps_every_value_inside_its_code_block(bad):
    """The verification result's values, in the code block of their own: one fence opens
    the block at its start, one closes it at its end, whatever a value holds."""

    def build(text):
        table = f"id | note\n---+-----\n1  | {text}\n2  | _a_"
        return views.decision_message(operation(), _decision("Commit?\nCounts", table))

    assert_inert(build, bad, {"U_ALICE"})
    code = [t for t in mrkdwn_texts(build(bad)["blocks"]) if "```" in t]
    assert len(code) == 1 and code[0].startswith("```id | note") and code[0].endswith("```")
    assert code[0].count("```") == 2, code[0]


def _decision(prompt: str, table: str = "") -> Decision:
    return Decision(
        id="dec-1",
        operation_id="op-20261126-abcdef",
        step_id="apply",
        prompt=prompt,
        choices={"commit": "Commit", "roll_back": "Roll back"},
        default_choice="roll_back",
        asked_at="2026-11-26T10:00:00.000000Z",
        expires_at="2026-11-26T10:30:00.000000Z",
        evidence_table=table,
    )


@pytest.mark.parametrize("bad", CORPUS)
def test_every_card_gets_its_data_escaped_whatever_its_renderer_does(bad):
    @card_renderer("test_blind_card")
    def blind(op, title, data):  # interpolates without a thought, as a renderer might
        return {"text": title, "blocks": [section(f"{title} {data['error']} {data['rows'][0]}")]}

    def build(text):
        data = {"error": text, "rows": [text]}
        return render_card(operation(), "test_blind_card", f"T {text}", data)

    try:
        assert_inert(build, bad)
    finally:
        RENDERERS.pop("test_blind_card")


def test_escape_is_exact_and_code_blocks_cannot_be_closed():
    assert escape("a & <b> \u202e") == "a &amp; &lt;b&gt; [U+202E]"
    block = code_block(f"```\n{FORGED}\n```")
    assert block.startswith("```") and block.endswith("```")
    assert block.count("```") == 2  # so the forged line stays inside
    assert FORGED in block
