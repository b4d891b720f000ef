"""The rig's Socket Mode server speaks Slack's side as documented: tickets from
apps.connections.open, hello, envelopes and their redelivery, disconnect, the 10-socket cap."""

from __future__ import annotations

import json

import pytest
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from websockets.exceptions import InvalidStatus
from websockets.sync.client import connect


def open_url(fake_slack, token=None) -> str:
    client = WebClient(base_url=fake_slack.url)
    return client.apps_connections_open(app_token=token or fake_slack.app_token)["url"]


def test_apps_connections_open_takes_only_the_app_token_with_connections_write(
    fake_slack, socket_mode
):
    assert open_url(fake_slack).startswith(f"ws://127.0.0.1:{socket_mode.port}/link/?ticket=")
    for token, error in [
        (fake_slack.token, "not_allowed_token_type"),
        ("xapp-1-x", "invalid_auth"),
    ]:
        with pytest.raises(SlackApiError) as refused:
            open_url(fake_slack, token)
        assert refused.value.response["error"] == error
    fake_slack.app_token_scopes = {"authorizations:read"}
    with pytest.raises(SlackApiError) as refused:
        open_url(fake_slack)
    assert refused.value.response["error"] == "missing_scope"
    assert refused.value.response["needed"] == "connections:write"


def test_hello_envelopes_acks_and_a_used_ticket(fake_slack, socket_mode):
    url = open_url(fake_slack)
    with connect(url) as ws:
        hello = json.loads(ws.recv(5))
        assert hello["type"] == "hello" and hello["connection_info"]["app_id"] == "A0TEST"
        assert {"host", "build_number", "approximate_connection_time"} <= set(hello["debug_info"])
        delivery = socket_mode.deliver("events_api", {"type": "event_callback", "event_id": "E1"})
        envelope = json.loads(ws.recv(5))
        assert envelope["type"] == "events_api" and envelope["accepts_response_payload"] is False
        assert (envelope["retry_attempt"], envelope["retry_reason"]) == (0, "")
        ws.send(json.dumps({"envelope_id": envelope["envelope_id"]}))
        assert delivery.wait(5).envelope_id == envelope["envelope_id"]
    with pytest.raises(InvalidStatus), connect(url):
        pass  # a ticket opens one connection


def test_an_unacked_envelope_comes_again_under_a_new_id_with_retry_fields(fake_slack, socket_mode):
    socket_mode.ack_deadline = 0.3
    with connect(open_url(fake_slack)) as ws:
        ws.recv(5)
        delivery = socket_mode.deliver(
            "slash_commands", {"command": "/rollback", "trigger_id": "t"}
        )
        first, second = json.loads(ws.recv(5)), json.loads(ws.recv(5))
        assert first["accepts_response_payload"] is True and "retry_attempt" not in first
        assert second["envelope_id"] != first["envelope_id"]
        assert (second["retry_attempt"], second["retry_reason"]) == (1, "timeout")
        assert second["payload"] == first["payload"]
        ws.send(json.dumps({"envelope_id": first["envelope_id"]}))  # too late: Slack gave up
        ws.send(json.dumps({"envelope_id": second["envelope_id"], "payload": {"text": "ok"}}))
        assert delivery.wait(5).payload == {"text": "ok"}
    assert socket_mode.late_acks == [first["envelope_id"]]


def test_disconnect_and_the_eleventh_socket(fake_slack, socket_mode):
    socket_mode.max_connections = 1
    with connect(open_url(fake_slack)) as ws:
        ws.recv(5)
        with connect(open_url(fake_slack)) as extra:
            refused = json.loads(extra.recv(5))
            assert refused == {
                "type": "disconnect",
                "reason": "too_many_websockets",
                "debug_info": {"host": "applink-rig"},
            }
        socket_mode.disconnect("warning", close_after=0.1)
        assert json.loads(ws.recv(5))["reason"] == "warning"
