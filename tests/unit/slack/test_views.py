"""View builders stay inside Slack's limits, checked with slack_sdk's own models."""

from __future__ import annotations

from slack_sdk.models.blocks import Block
from slack_sdk.models.views import View

from bot.slack import views
from bot.slack.blocks import cut, fit, section
from bot.store.records import ChecklistEntry, Operation, StepRecord, StepStatus


def operation(**kw) -> Operation:
    base = dict(
        id="op-20261126-abcdef",
        runbook="drill",
        environment="staging",
        status="running",
        requester="U_ALICE",
        params={},
        summary="",
        created_at="2026-11-26T10:00:00.000000Z",
        updated_at="2026-11-26T10:00:00.000000Z",
        finished_at=None,
        result=None,
        incident_channel=None,
        status_ts=None,
        notify_channel=None,
        notify_ts=None,
    )
    base.update(kw)
    return Operation(**base)


def test_a_checklist_of_more_than_ten_items_uses_several_checkbox_blocks():
    items = [
        ChecklistEntry("op-1", "before", f"i{n}", n, f"Item {n}", checked=bool(n % 2))
        for n in range(23)
    ]
    view = views.checklist_modal(operation(), "before", items)
    View(**view).validate_json()
    boxes = [b for b in view["blocks"] if b["type"] == "input"]
    assert [len(b["element"]["options"]) for b in boxes] == [10, 10, 3]
    assert len({b["block_id"] for b in boxes}) == 3


def test_long_text_is_cut_with_a_count_and_blocks_are_capped():
    text = cut("x" * 5000, 3000)
    kept = text.count("x")
    assert len(text) <= 3000 and f"({5000 - kept} more characters)" in text
    blocks = fit([section(str(n)) for n in range(80)])
    assert len(blocks) == 50 and "31 more blocks left out" in str(blocks[-1])
    for block in blocks:
        Block.parse(block).validate_json()


def test_status_message_is_valid_for_every_state():
    steps = [
        StepRecord("op-1", 0, "a", "A", True, False, status=StepStatus(s), error="boom")
        for s in ("pending", "running", "succeeded", "failed", "skipped")
    ]
    for status in ("running", "waiting_approval", "succeeded", "failed", "cancelled"):
        message = views.status_message(
            operation(status=status, result="done"),
            steps,
            {},
            {"step_id": "a", "done": 3, "total": 10},
        )
        assert len(message["blocks"]) <= 50
        for block in message["blocks"]:
            Block.parse(block).validate_json()
