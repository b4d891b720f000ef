"""Double clicks, double submissions and concurrent commands count once."""

from __future__ import annotations

import threading
import time

from bot.slack.ids import Block, Callback
from tests.scenario.test_drill import _human_items


def concurrently(n, fn):
    results = []
    threads = [threading.Thread(target=lambda: results.append(fn())) for _ in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return results


def test_ten_concurrent_drills_on_one_environment_start_one_operation(bot):
    results = concurrently(10, lambda: bot.signer.slash("drill --env staging"))
    assert all(r.status == 200 for r in results)
    bot.wait_until(lambda: len(bot.slack.responses()) >= 10, what="10 replies")
    assert len(bot.store.operations(limit=20)) == 1
    refusals = [r for r in bot.slack.responses() if "already running" in r["text"]]
    assert len(refusals) == 9


def test_a_checklist_submitted_twice_ticks_each_item_once(bot):
    bot.signer.slash("drill --env development")
    op = bot.wait_until(lambda: bot.store.active_operation("development"), what="op")
    call = bot.slack.wait_for(
        "views.open", where=lambda c: c.args["view"]["callback_id"] == Callback.CHECKLIST
    )[-1]
    view = bot.slack.views()[call.response["view"]["id"]]
    items = _human_items(view)
    values = {
        b["block_id"]: items
        for b in view["blocks"]
        if b.get("block_id", "").startswith(Block.CHECKLIST_ITEMS)
    }
    payload_view = {**view}
    results = concurrently(
        2, lambda: bot.signer.submit_view(payload_view["id"], user="U_ALICE", values=values)
    )
    assert all(r.status == 200 for r in results)
    bot.wait_status(op.id, "succeeded", timeout=30)
    ticked = [
        a.message
        for a in bot.store.audit(op.id)
        if a.event == "checklist_ticked" and a.actor == "U_ALICE"
    ]
    # Each item ticked by Alice once, however the two submissions interleaved.
    assert len(ticked) == len(set(ticked)) >= 4
    assert len([a for a in bot.store.audit(op.id) if a.event == "checklist_completed"]) == 1


def test_a_double_clicked_cancel_cancels_once(bot):
    bot.signer.slash("drill --env staging")
    op = bot.wait_until(lambda: bot.store.active_operation("staging"), what="op")
    results = concurrently(5, lambda: bot.signer.slash(f"cancel {op.id}"))
    assert all(r.status == 200 for r in results)
    bot.wait_status(op.id, "cancelled", timeout=30)
    # The audit record follows the status change: wait for it, then count.
    bot.wait_until(
        lambda: [a for a in bot.store.audit(op.id) if a.event == "finished"],
        what="the finished record",
    )
    time.sleep(0.5)  # a second "finished" would have been written by now
    finished = [a for a in bot.store.audit(op.id) if a.event == "finished"]
    assert len(finished) == 1
    texts = [
        r["text"]
        for r in bot.wait_until(
            lambda: len(bot.slack.responses()) >= 6 and bot.slack.responses(), what="replies"
        )
    ]
    assert sum(t.startswith(("Cancelled", "Cancelling")) for t in texts) >= 1
    assert (
        sum("already ended" in t for t in texts)
        + sum(t.startswith(("Cancelled", "Cancelling")) for t in texts)
        == 5
    )
