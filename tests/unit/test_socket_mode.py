"""bot/socket_mode.py's pure parts: what identifies a redelivery, and the ack for a Bolt
response (the connection handling is proven end to end in tests/scenario/test_socket_mode.py)."""

from __future__ import annotations

from slack_bolt.response import BoltResponse

from bot.socket_mode import ack_message, redelivery_key


def test_commands_and_interactions_are_known_by_their_trigger_id():
    command = {"command": "/rollback", "text": "drill", "trigger_id": "1.2.abc"}
    click = {"type": "block_actions", "trigger_id": "1.2.def", "actions": [{"action_ts": "1"}]}
    assert redelivery_key(command) == "trigger:1.2.abc"
    assert redelivery_key(click) == "trigger:1.2.def"
    assert redelivery_key(dict(command)) == redelivery_key(command)


def test_events_are_left_to_the_event_id_deduplication():
    assert redelivery_key({"type": "event_callback", "event_id": "Ev1"}) is None


def test_a_payload_without_trigger_id_is_known_by_its_digest_in_any_key_order():
    closed = {"type": "view_closed", "view": {"id": "V1", "hash": "h"}, "user": {"id": "U1"}}
    reordered = {"user": {"id": "U1"}, "view": {"hash": "h", "id": "V1"}, "type": "view_closed"}
    assert redelivery_key(closed).startswith("payload:")
    assert redelivery_key(closed) == redelivery_key(reordered)
    assert redelivery_key(closed) != redelivery_key({**closed, "user": {"id": "U2"}})


def test_acks_are_shaped_as_bolts_socket_mode_adapters_shape_them():
    json_body = BoltResponse(status=200, body='{"response_action": "clear"}')
    assert ack_message("e1", BoltResponse(status=200, body="")) == {"envelope_id": "e1"}
    assert ack_message("e2", json_body) == {
        "envelope_id": "e2",
        "payload": {"response_action": "clear"},
    }
    assert ack_message("e3", BoltResponse(status=200, body="plain")) == {
        "envelope_id": "e3",
        "payload": {"text": "plain"},
    }
    assert ack_message("e4", BoltResponse(status=404, body="")) is None
