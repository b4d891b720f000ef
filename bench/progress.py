"""Live progress: 1,000 progress events from a running step through IncidentLog,
OperationFeed and Outbox to the fake Slack with Slack's rate limits (a drill whose slow step
reports 1,000 times in 10 s), counted from what the fake Slack received."""

from __future__ import annotations

import time
from collections import Counter, defaultdict
from pathlib import Path

from bench.inproc import InProcessBot, submit_checklist
from bot.slack.ids import Callback

EVENTS = 1000
SECONDS = 10

CONFIG = """
default_environment = "dev"
state_db = "{state_db}"

[drill]
slow_step_seconds = {seconds}
progress_events = {events}

[environments.dev]
database_url = "postgresql://unused@127.0.0.1/unused"
protected = false
"""


def _max_per_second(times: list[float]) -> int:
    """Most calls inside any window of one second (half-open, sliding)."""
    times, best, start = sorted(times), 0, 0
    for end, t in enumerate(times):
        while t - times[start] >= 1.0:
            start += 1
        best = max(best, end - start + 1)
    return best


def run(tmp: Path, log) -> dict:
    from tests.rig.fake_slack import FakeSlack

    slack = FakeSlack().start()
    bot = InProcessBot(
        slack,
        CONFIG.format(state_db=tmp / "progress.db", seconds=SECONDS, events=EVENTS),
        tmp,
    )
    try:
        began = time.monotonic()
        response = bot.signer.slash("drill --env dev")
        assert response.status == 200, response.body
        store = bot.services.store
        op = bot.wait_until(lambda: store.active_operation("dev"), what="the drill")
        opened = slack.wait_for(
            "views.open", where=lambda c: c.args["view"]["callback_id"] == Callback.CHECKLIST
        )[-1]
        submit_checklist(bot.signer, slack, opened.response["view"]["id"], "U_ALICE")
        bot.wait_until(
            lambda: store.operation(op.id).status in ("succeeded", "failed"),
            timeout=SECONDS + 60,
            what="the drill to finish",
        )
        idle = bot.services.incident.wait_idle(op.id, timeout=60)
        elapsed = time.monotonic() - began
        final = store.operation(op.id)
    finally:
        bot.stop()
    calls = slack.calls
    slack.stop()
    edits = defaultdict(list)
    for c in calls:
        if c.method == "chat.update" and c.ok:
            edits[(c.response.get("channel"), c.args.get("ts"))].append(c.at)
    status_key = (final.incident_channel, final.status_ts)
    status_edits = edits.get(status_key, [])
    message = next(m for m in slack.messages(final.incident_channel) if m["ts"] == final.status_ts)
    stops = [c for c in calls if c.method == "chat.stopStream" and c.ok]
    stopped = [chunk for c in stops for chunk in c.args.get("chunks") or []]
    steps_text = str(message.get("blocks"))
    delivered = (
        final.status == "succeeded"
        and idle
        and "Finished" in (message.get("text") or "")
        and steps_text.count(":white_check_mark: ") >= 4 + 1  # 4 steps + the status field
        and any(
            c.get("status") == "complete" and f"{EVENTS} progress updates" in c.get("details", "")
            for c in stopped
        )
    )
    by_method = Counter(c.method for c in calls)
    result = {
        "events": EVENTS,
        "web_api_calls": len(calls),
        "calls_by_method": dict(by_method.most_common()),
        "rate_limited": sum(1 for c in calls if c.status == 429),
        "status_edits": len(status_edits),
        "max_edits_per_second": max((_max_per_second(t) for t in edits.values()), default=0),
        "final_state_delivered": delivered,
        "elapsed_s": elapsed,
    }
    log(
        f"progress: {EVENTS} events -> {len(calls)} Web API calls"
        f" ({result['status_edits']} status edits), {result['rate_limited']} x 429, max"
        f" {result['max_edits_per_second']} edits/s per message, final state delivered:"
        f" {delivered}"
    )
    return result
