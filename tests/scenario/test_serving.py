"""Served like a service, in both transports: /readyz names what it checked and fails when
the state file cannot take writes, Slack refuses the token or the scheduler stopped;
/metrics counts what really happened (operations, steps, Slack calls and 429s)."""

from __future__ import annotations

import json
import sqlite3

import pytest
from prometheus_client.parser import text_string_to_metric_families

from bot.slack.ids import Action
from tests.rig.http_get import get
from tests.scenario.test_drill import (
    CHANNEL_PER_DRILL,
    approval_message,
    complete_before_checklist,
    start_drill,
)


def ready(bot) -> tuple[int, dict]:
    status, _, body = get(f"{bot.url}/readyz")
    return status, json.loads(body)


def samples(bot) -> dict[tuple[str, tuple], float]:
    status, content_type, text = get(f"{bot.url}/metrics")
    assert status == 200 and content_type.startswith("text/plain")
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def value(found: dict, name: str, **labels) -> float:
    """The sample's value; a missing sample fails (a gauge the bot stopped exporting must
    not read as 0)."""
    key = (name, tuple(sorted(labels.items())))
    assert key in found, f"no sample {name}{labels} in /metrics"
    return found[key]


def value_or_zero(found: dict, name: str, **labels) -> float:
    """For a "before" reading only: a labelled counter has no sample until first counted."""
    return found.get((name, tuple(sorted(labels.items()))), 0.0)


@pytest.mark.both_transports
def test_readyz_fails_while_the_state_file_cannot_take_writes(bot):
    if bot.store.path is None:
        pytest.skip("a SQLite state file's write lock; the state is on PostgreSQL here")
    status, body = ready(bot)
    assert status == 200, body
    assert {"state_db", "slack_auth", "scheduler"} <= set(body["checks"])
    holder = sqlite3.connect(bot.store.path, timeout=1)
    holder.execute("BEGIN IMMEDIATE")  # another process holding the write lock
    try:
        status, body = ready(bot)
        assert status == 503
        assert body["checks"]["state_db"]["ok"] is False
        assert "locked" in body["checks"]["state_db"]["error"]
        assert get(f"{bot.url}/healthz")[0] == 200  # alive: restarting would not help
    finally:
        holder.rollback()
        holder.close()
    assert ready(bot)[0] == 200


@pytest.mark.both_transports
def test_readyz_fails_when_slack_refuses_the_token_then_recovers(bot):
    bot.slack.fail_next("auth.test", error="token_revoked")
    status, body = ready(bot)
    assert status == 503
    assert body["checks"]["slack_auth"] == {"ok": False, "error": "token_revoked"}
    # A failure is asked again within seconds, not held for a minute.
    bot.wait_until(lambda: ready(bot)[0] == 200, timeout=15, what="ready again")


def test_readyz_fails_when_the_scheduler_stopped(bot):
    assert ready(bot)[1]["checks"]["scheduler"] == {"ok": True}
    bot.services.scheduler.shutdown()
    status, body = ready(bot)
    assert status == 503 and body["checks"]["scheduler"] == {"ok": False}


@pytest.mark.both_transports
def test_metrics_count_operations_steps_and_slack_calls(bot):
    before = samples(bot)
    op = start_drill(bot, env="development")
    complete_before_checklist(bot, op.id)
    bot.wait_status(op.id, "succeeded")
    assert bot.services.incident.wait_idle(op.id)
    after = samples(bot)

    assert value(after, "rollback_bot_operations", runbook="drill", status="succeeded") == 1
    assert value(after, "rollback_bot_approvals_pending") == 0
    for step in bot.store.steps(op.id):
        labels = {"runbook": "drill", "step": step.step_id, "outcome": "succeeded"}
        name = "rollback_bot_step_duration_seconds_count"
        assert value(after, name, **labels) - value_or_zero(before, name, **labels) == 1, (
            step.step_id
        )
    posted = len(bot.slack.calls_to("chat.postMessage", ok=True))
    name, labels = "rollback_bot_slack_api_calls_total", {"method": "chat.postMessage"}
    counted = value(after, name, outcome="ok", **labels) - value_or_zero(
        before, name, outcome="ok", **labels
    )
    assert counted == posted > 0


def test_metrics_count_429s_and_retries(bot):
    before = samples(bot)
    bot.slack.set_rate_limit("chat.postMessage", per_second=1, burst=1)
    op = start_drill(bot, env="development")
    complete_before_checklist(bot, op.id)
    bot.wait_status(op.id, "succeeded")
    assert bot.services.incident.wait_idle(op.id)
    after = samples(bot)
    limited = bot.slack.rate_limited["chat.postMessage"]
    assert limited > 0, "the drill did not hit the limit: nothing to count"
    for name in ("rollback_bot_slack_rate_limited_total", "rollback_bot_slack_retries_total"):
        delta = value(after, name, method="chat.postMessage") - value_or_zero(
            before, name, method="chat.postMessage"
        )
        assert delta >= limited if "retries" in name else delta == limited, name
    approvals = value(after, "rollback_bot_approvals_pending")
    assert approvals == 0


def test_metrics_count_an_approval_while_it_waits_and_not_after(bot_factory):
    bot = bot_factory(tables_extra=CHANNEL_PER_DRILL)
    assert value(samples(bot), "rollback_bot_approvals_pending") == 0
    op = start_drill(bot)  # staging: its destructive step waits for a second person
    complete_before_checklist(bot, op.id)
    channel = approval_message(bot, op)
    bot.wait_status(op.id, "waiting_approval")
    assert value(samples(bot), "rollback_bot_approvals_pending") == 1
    bot.signer.block_action(Action.APPROVE, None, user="U_BOB", channel=channel)
    bot.wait_status(op.id, "succeeded")
    assert value(samples(bot), "rollback_bot_approvals_pending") == 0
