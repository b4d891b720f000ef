"""The bot over Socket Mode, what HTTP mode does not have to survive: acks by
envelope_id, modal answers in the ack, Slack's disconnects and dropped sockets, and
redeliveries. The core flows themselves run in both transports (both_transports marks)."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request

import pytest

from bot.slack.ids import Action, Block, Callback
from tests.rig.socket_mode import ACK_DEADLINE
from tests.scenario.test_drill import approval_message, complete_before_checklist, start_drill
from tests.scenario.test_sql import DROP_COLUMN, complete_checklist_in, db, open_modal, submit

__all__ = ["db"]  # the fixture, shared with test_sql

RECONNECTED_WITHIN = 3.0  # seconds from a disconnect or drop to a new connection's hello


@pytest.fixture
def bot(bot_factory):
    return bot_factory(transport="socket_mode")


def probe(bot, path: str) -> tuple[int, dict]:
    try:
        with urllib.request.urlopen(f"{bot.url}{path}", timeout=5) as answer:
            return answer.status, json.loads(answer.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def drills(bot) -> list:
    return [op for op in bot.store.operations(limit=50) if op.runbook == "drill"]


def test_every_envelope_is_acked_in_time_with_its_own_envelope_id(bot):
    op = start_drill(bot, env="development")
    complete_before_checklist(bot, op.id)
    bot.wait_status(op.id, "succeeded")
    staging = start_drill(bot, env="staging")
    complete_before_checklist(bot, staging.id)
    channel = approval_message(bot, staging)
    bot.signer.block_action(Action.APPROVE, None, user="U_BOB", channel=channel)
    bot.wait_status(staging.id, "succeeded")
    bot.signer.event({"type": "app_home_opened", "user": "U_BOB", "tab": "home"})
    bot.slack.wait_for("views.publish")

    envelopes = bot.socket.envelopes()
    kinds = {(e.type, e.payload.get("type")) for e in envelopes}
    assert {
        ("slash_commands", None),
        ("interactive", "view_submission"),
        ("interactive", "block_actions"),
        ("events_api", "event_callback"),
    } <= kinds
    for envelope in envelopes:
        assert envelope.retry_attempt == 0, "nothing needed a redelivery"
        assert envelope.ack is not None, f"{envelope.type} never acked"
        assert envelope.ack.envelope_id == envelope.envelope_id
        assert envelope.ack.connection == envelope.connection, "acked over another socket"
        assert envelope.ack.latency < ACK_DEADLINE
    assert not bot.socket.unexpected


def test_modal_answers_travel_in_the_ack_payload(bot, db):
    view_id = open_modal(bot)
    answer = submit(bot, view_id, "DELET FROM users")
    ack = bot.socket.envelopes()[-1].ack
    assert ack.payload["response_action"] == "errors"
    assert Block.SQL_TEXT in ack.payload["errors"]
    assert answer == ack.payload  # what the rig applied to the modal is what the ack said
    assert bot.slack.calls_to("response_action")[-1].ok

    answer = submit(bot, view_id, DROP_COLUMN)
    ack = bot.socket.envelopes()[-1].ack
    assert ack.payload["response_action"] == "update"
    assert ack.payload["view"]["callback_id"] == bot.slack.views()[view_id]["callback_id"]

    # The checklist's submission answers with what was saved (the read-only "saved" view),
    # in the ack too, and the rig applied exactly that to the modal.
    complete_checklist_in(bot, view_id)
    ack = bot.socket.envelopes()[-1].ack
    assert ack.payload["response_action"] == "update"
    assert ack.payload["view"]["callback_id"] == Callback.CHECKLIST_SAVED
    assert bot.slack.views()[view_id]["callback_id"] == Callback.CHECKLIST_SAVED


@pytest.mark.parametrize("reason", ["warning", "refresh_requested"])
def test_a_refresh_opens_the_next_connection_first_and_loses_nothing(bot, reason):
    old = bot.socket.wait_connected()[0]
    asked = time.monotonic()
    bot.socket.disconnect(reason, close_after=1.0)
    # Commands keep coming while Slack moves the app to a new connection.
    for n in range(3):
        assert bot.signer.slash(f"drill --env development --nope{n}").status == 200
    new = bot.socket.wait_connected(after=asked)[0]
    assert new.id != old.id and new.hello_at - asked < RECONNECTED_WITHIN
    assert bot.signer.slash("drill --env development").status == 200
    op = bot.wait_until(lambda: bot.store.active_operation("development"), what="drill")
    complete_before_checklist(bot, op.id)
    bot.wait_status(op.id, "succeeded")

    # The old connection was closed once Slack's deadline passed or its acks were sent,
    # and the app then held exactly one.
    bot.wait_until(lambda: len(bot.socket.connections()) == 1, what="one connection")
    assert all(e.retry_attempt == 0 for e in bot.socket.envelopes()), "nothing was lost"
    assert len(drills(bot)) == 1
    status, body = probe(bot, "/readyz")
    assert status == 200 and body["checks"]["socket_mode"]["last_disconnect"] == reason


@pytest.mark.parametrize("reset", [True, False], ids=["reset", "no-close-frame"])
def test_a_dropped_socket_is_replaced_within_seconds_and_nothing_is_lost(bot, reset):
    bot.socket.wait_connected()
    dropped = time.monotonic()
    bot.socket.drop(reset=reset)
    response = bot.signer.slash("drill --env development")
    assert response.status == 200 and response.elapsed < ACK_DEADLINE
    reconnected = bot.socket.wait_connected(after=dropped)[0]
    assert reconnected.hello_at - dropped < RECONNECTED_WITHIN
    op = bot.wait_until(lambda: bot.store.active_operation("development"), what="drill")
    complete_before_checklist(bot, op.id)
    bot.wait_status(op.id, "succeeded")
    assert len(drills(bot)) == 1
    assert bot.runner.status()["reconnects"] == 1


def test_a_lost_ack_means_a_redelivery_that_is_acked_and_not_run_twice(bot):
    bot.socket.lose_acks = 1
    response = bot.signer.slash("drill --env development")
    delivery = response.delivery
    assert [e.retry_attempt for e in delivery.attempts] == [0, 1]
    first, again = delivery.attempts
    assert again.envelope_id != first.envelope_id and again.retry_reason == "timeout"
    assert again.ack.envelope_id == again.envelope_id and again.ack.latency < ACK_DEADLINE
    op = bot.wait_until(lambda: bot.store.active_operation("development"), what="drill")
    complete_before_checklist(bot, op.id)
    bot.wait_status(op.id, "succeeded")
    time.sleep(0.3)
    assert len(drills(bot)) == 1, "the redelivered command started a second drill"
    ignored = [a for a in bot.store.audit() if a.event == "redelivery_ignored"]
    assert len(ignored) == 1 and ignored[0].actor == "U_ALICE"


def test_an_approval_redelivered_after_a_dropped_socket_runs_the_step_once(bot):
    op = start_drill(bot, env="staging")
    complete_before_checklist(bot, op.id)
    channel = approval_message(bot, op)
    bot.wait_status(op.id, "waiting_approval")
    # The click is handled, but its ack never reaches Slack: the socket dies with it.
    bot.socket.lose_acks = 1
    response = bot.signer.block_action(Action.APPROVE, None, user="U_BOB", channel=channel)
    bot.socket.drop()
    assert response.status == 200
    bot.wait_status(op.id, "succeeded")
    assert [a.decided_by for a in bot.store.approvals(op.id)] == ["U_BOB"]
    granted = [a for a in bot.store.audit(op.id) if a.event == "approval_granted"]
    assert len(granted) == 1
    started = [
        a
        for a in bot.store.audit(op.id)
        if a.event == "step_started" and a.step_id == "rehearse_destructive_step"
    ]
    assert len(started) == 1, "the destructive step ran twice"
    ignored = [a for a in bot.store.audit() if a.event == "redelivery_ignored"]
    assert [a.actor for a in ignored] == ["U_BOB"]


def test_too_many_websockets_backs_off_instead_of_looping(bot):
    bot.socket.wait_connected()
    bot.socket.max_connections = 1  # another replica holds the rest of the app's 10
    asked = time.monotonic()
    # Slack moves the app: the new connection is one too many while the old one lives.
    bot.socket.disconnect("refresh_requested", close_after=1.5)
    bot.socket.wait_connected(after=asked, timeout=15)
    refused = [
        c
        for c in bot.socket.connections(open_only=False)
        if c.disconnect_sent == "too_many_websockets"
    ]
    assert refused, "the rig never refused a connection"
    opened = bot.slack.calls_to("apps.connections.open", ok=None)
    assert len(opened) <= 5, f"{len(opened)} apps.connections.open calls: a reconnect loop"
    assert bot.signer.slash("help").status == 200
    assert bot.runner.status()["ok"]


def test_probes_report_the_socket_and_follow_it_down_and_up(bot):
    status, body = probe(bot, "/readyz")
    assert status == 200 and body["mode"] == "socket_mode"
    assert body["checks"]["socket_mode"]["connections"] == 1
    status, body = probe(bot, "/healthz")
    assert status == 200 and body["checks"]["socket_mode_supervisor"]["ok"]

    # Slack stops taking the token (revoked scope): the socket goes and cannot come back.
    bot.slack.app_token_scopes = {"authorizations:read"}
    bot.socket.drop()

    def refused() -> dict | None:
        status, body = probe(bot, "/readyz")
        socket = body["checks"]["socket_mode"]
        return status == 503 and "missing_scope" in (socket["last_error"] or "") and socket

    socket = bot.wait_until(refused, what="/readyz to say 503 and why")
    assert socket["connections"] == 0 and not socket["ok"]
    assert probe(bot, "/healthz")[0] == 200, "alive: restarting would not fix Slack's side"

    bot.slack.app_token_scopes = {"connections:write"}
    bot.wait_until(lambda: probe(bot, "/readyz")[0] == 200, timeout=10, what="ready again")
    assert bot.signer.slash("help").status == 200
