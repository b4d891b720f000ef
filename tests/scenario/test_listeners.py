"""Every listener the app registers reports its errors (handlers/error_reporter.py): a
listener that raised after its ack could make Bolt drop the ack, and the user would see
Slack's generic failure with nothing in the log to find it by."""

from __future__ import annotations

from bot.app import build_app
from bot.slack.ids import Callback
from handlers.error_reporter import unwrapped_listeners
from tests.scenario.test_drill import start_drill


def test_every_registered_listener_reports_its_errors(bot):
    app = build_app(bot.services, token_verification=False)
    assert len(app._listeners) >= 15  # the slash command, every button and modal, events
    assert unwrapped_listeners(app) == []

    # The check fails for a listener registered without the wrapper.
    @app.view("an_unwrapped_modal")
    def unwrapped(ack):
        ack()

    assert unwrapped_listeners(app) == ["unwrapped"]


def test_a_checklist_submission_that_fails_is_acked_and_told_in_a_dm(bot):
    """The checklist submission was the one listener not wrapped: a modal whose metadata no
    longer parses raised into Bolt. Now the modal is closed and the user told in a DM."""
    op = start_drill(bot)
    opened = bot.slack.wait_for(
        "views.open", where=lambda c: c.args["view"]["callback_id"] == Callback.CHECKLIST
    )[-1]
    view_id = opened.response["view"]["id"]
    # What an old or hand-made modal would carry back.
    with bot.slack._lock:
        bot.slack._views[view_id]["private_metadata"] = '{"op": 1}'
    response = bot.signer.submit_view(view_id, user="U_ALICE", values={})
    assert response.status == 200 and not response.body.strip()
    dm = bot.slack.wait_for("chat.postMessage", where=lambda c: c.args.get("channel") == "U_ALICE")[
        -1
    ]
    assert "no longer matches what the bot expects" in dm.args["text"]
    assert all(i.checked is False or i.by_bot for i in bot.store.checklist(op.id, "before"))
