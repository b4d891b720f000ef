"""The rig's secret check can fail: a leaked value in a Slack payload, a log line or an
audit record is caught."""

from __future__ import annotations

import pytest
from slack_sdk import WebClient

from bot.store import Store
from tests.rig.bot_server import assert_no_secrets


def test_a_secret_in_a_slack_payload_is_caught(fake_slack):
    WebClient(token=fake_slack.token, base_url=fake_slack.url).chat_postMessage(
        channel="#general", text="url is postgresql://u:hunter2-secret@db/x"
    )
    with pytest.raises(AssertionError, match="Slack payload"):
        assert_no_secrets(["hunter2-secret"], fake_slack, [], None)


def test_a_secret_in_a_log_line_or_audit_record_is_caught(fake_slack, tmp_path):
    with pytest.raises(AssertionError, match="log line"):
        assert_no_secrets(["hunter2-secret"], fake_slack, ["connecting with hunter2-secret"], None)
    store = Store(tmp_path / "s.db")
    store.append_audit(None, "U_ALICE", "x", "password hunter2-secret")
    with pytest.raises(AssertionError, match="audit record"):
        assert_no_secrets(["hunter2-secret"], fake_slack, [], store)
    assert_no_secrets(["not-there-at-all"], fake_slack, ["clean"], store)
