"""The rig's proof: help over HTTP, an unknown subcommand, a forged signature,
App Home. Everything goes through signed HTTP into the real app and out to the fake Slack."""

from __future__ import annotations

import time
import urllib.request

import pytest
from slack_sdk.models.views import View

import commands
from bot.store import Store


@pytest.mark.both_transports
def test_help_is_answered_in_the_ack_well_inside_three_seconds(bot):
    started = time.monotonic()
    response = bot.signer.slash("help")
    elapsed = time.monotonic() - started

    assert response.status == 200
    assert elapsed < 1.5, f"ack took {elapsed:.2f}s; Slack gives up at 3s"
    body = response.json()
    text = body["blocks"][0]["text"]["text"]
    for name in commands.SUBCOMMANDS:
        assert f"`/rollback {name}" in text, f"help does not list {name}"
    # Ephemeral: answered in the ack body, no message posted in the channel.
    assert not bot.slack.calls_to("chat.postMessage")


def test_bare_rollback_shows_help(bot):
    body = bot.signer.slash("").json()
    assert "rollback-bot runs the database rollback runbook" in body["text"]


@pytest.mark.both_transports
def test_unknown_subcommand_names_it_suggests_the_closest_and_lists_all(bot):
    body = bot.signer.slash("hisotry").json()
    text = body["blocks"][0]["text"]["text"]
    assert "Unknown subcommand `hisotry`" in text
    assert "Did you mean `history`?" in text
    for name in commands.SUBCOMMANDS:
        assert f"`{name}`" in text
    assert not bot.store.operations(limit=5)


def test_unknown_option_is_refused_with_usage(bot):
    body = bot.signer.slash("drill --enviroment staging").json()
    text = body["blocks"][0]["text"]["text"]
    assert "Unknown option `--enviroment`" in text
    assert "`--env`" in text
    assert not bot.store.operations(limit=5)


def test_forged_signature_gets_401_and_no_web_api_call(bot):
    before = len(bot.slack.calls)
    body = b"command=%2Frollback&text=drill&user_id=U_ALICE&channel_id=C_ENG&trigger_id=x"
    response = bot.signer.post(body, "application/x-www-form-urlencoded", forge=True)

    assert response.status == 401
    time.sleep(0.3)
    assert len(bot.slack.calls) == before
    assert not bot.store.operations(limit=5)


def test_stale_timestamp_gets_401(bot):
    body = b"command=%2Frollback&text=help&user_id=U_ALICE&channel_id=C_ENG"
    stale = int(time.time()) - 301
    response = bot.signer.post(body, "application/x-www-form-urlencoded", timestamp=stale)
    assert response.status == 401


@pytest.mark.both_transports
def test_app_home_publishes_valid_blocks_with_history(bot):
    bot.engine.start("drill", "development", "U_ALICE", {"slow_step_seconds": 0.1})
    response = bot.signer.event({"type": "app_home_opened", "user": "U_BOB", "tab": "home"})
    assert response.status == 200

    call = bot.slack.wait_for("views.publish")[0]
    assert call.args["user_id"] == "U_BOB"
    view = call.args["view"]
    View(**view).validate_json()  # slack_sdk's own validation, as Slack would
    text = str(view["blocks"])
    assert "Active operations" in text and "Recent history" in text
    assert "drill" in text


@pytest.mark.both_transports
def test_events_retried_by_slack_are_handled_once(bot):
    event = {"type": "app_home_opened", "user": "U_BOB", "tab": "home"}
    bot.signer.event(event, event_id="Ev0DUPLICATE")
    bot.signer.event(event, event_id="Ev0DUPLICATE", retry_num=1)
    bot.slack.wait_for("views.publish")
    time.sleep(0.5)
    assert len(bot.slack.calls_to("views.publish")) == 1


@pytest.mark.both_transports
def test_healthz(bot):
    with urllib.request.urlopen(f"{bot.url}/healthz", timeout=5) as response:
        assert response.status == 200
        assert b'"ok": true' in response.read()


def test_forged_and_stale_requests_are_counted_in_the_audit_log(bot):
    body = b"command=%2Frollback&text=drill&user_id=U_ALICE&channel_id=C_ENG&trigger_id=x"
    bot.signer.post(body, "application/x-www-form-urlencoded", forge=True)
    bot.signer.post(body, "application/x-www-form-urlencoded", timestamp=int(time.time()) - 400)
    location = bot.store.location  # a SQLite file or a PostgreSQL URL
    bot.stop()  # a minute's count is written when the minute ends, or at shutdown
    store = Store(location)
    refused = [a for a in store.audit() if a.event == "request_refused"]
    store.close()
    assert sum(int(a.message.split()[0]) for a in refused) == 2
    assert all("invalid signature or stale timestamp" in a.message for a in refused)


def test_a_replayed_request_is_refused_and_audited(bot):
    body = b"command=%2Frollback&text=history&user_id=U_ALICE&channel_id=C_ENG&trigger_id=x"
    stamp = int(time.time())
    first = bot.signer.post(body, "application/x-www-form-urlencoded", timestamp=stamp)
    assert first.status == 200
    # The same bytes, the same valid signature, captured and sent again.
    again = bot.signer.post(body, "application/x-www-form-urlencoded", timestamp=stamp)
    assert again.status == 401
    refused = [a for a in bot.store.audit() if a.event == "request_refused"]
    assert refused and "replayed" in refused[-1].message
