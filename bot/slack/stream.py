"""A long step's detail streamed into the incident thread with Slack's streaming API
(chat.startStream / appendStream / stopStream with task_update chunks).

A stream goes stale after about 5 minutes (``message_not_in_streaming_state``;
docs/reference/slack-platform.md), and an RDS restore takes longer, so a stream is only
ever a nicety on top of the live status message (chat.update), which always carries the
truth. Once a stream fails or gets old, it is dropped for that step and never retried.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

from slack_sdk.errors import SlackApiError

from bot.slack.outbox import Outbox, SlackUnavailable

log = logging.getLogger(__name__)

# Stop using a stream a little before Slack's ~300 s staleness.
STREAM_MAX_AGE = 240.0


@dataclass
class _Stream:
    step_id: str
    ts: str | None
    started: float
    dead: bool = False
    last_details: str = ""


class StepStreams:
    def __init__(self, outbox: Outbox, team_id: callable):
        self.outbox = outbox
        self.team_id = team_id
        self._streams: dict[str, _Stream] = {}

    def update(self, op, step_id: str, title: str, details: str) -> None:
        """Called from the operation's feed thread, at most once per status edit."""
        stream = self._streams.get(op.id)
        if stream is None or stream.step_id != step_id:
            stream = self._start(op, step_id, title, details)
            return
        if stream.dead or details == stream.last_details:
            return
        if time.monotonic() - stream.started > STREAM_MAX_AGE:
            self._stop(op, stream, title, "in_progress", "continued in the status message")
            return
        self._call(
            stream,
            "chat.appendStream",
            lambda: self.outbox.client.chat_appendStream(
                channel=op.incident_channel,
                ts=stream.ts,
                chunks=[_task(step_id, title, "in_progress", details)],
            ),
        )
        stream.last_details = details

    def finish(self, op, step_id: str, title: str, ok: bool, details: str) -> None:
        # The feed may already stream the next step (edits run ahead of queued events).
        stream = self._streams.get(op.id)
        if stream is None or stream.step_id != step_id:
            return
        del self._streams[op.id]
        if not stream.dead:
            self._stop(op, stream, title, "complete" if ok else "error", details)

    def _start(self, op, step_id: str, title: str, details: str) -> _Stream:
        stream = _Stream(step_id, None, time.monotonic())
        self._streams[op.id] = stream
        resp = self._call(
            stream,
            "chat.startStream",
            lambda: self.outbox.client.chat_startStream(
                channel=op.incident_channel,
                thread_ts=op.status_ts,
                recipient_user_id=op.requester,
                recipient_team_id=self.team_id(),
                task_display_mode="timeline",
                chunks=[_task(step_id, title, "in_progress", details)],
            ),
        )
        if resp is not None:
            stream.ts = resp["ts"]
            stream.last_details = details
        return stream

    def _stop(self, op, stream: _Stream, title: str, status: str, details: str) -> None:
        self._call(
            stream,
            "chat.stopStream",
            lambda: self.outbox.client.chat_stopStream(
                channel=op.incident_channel,
                ts=stream.ts,
                chunks=[_task(stream.step_id, title, status, details)],
            ),
        )
        stream.dead = True

    def _call(self, stream: _Stream, what: str, fn):
        if stream.dead or (stream.ts is None and what != "chat.startStream"):
            return None
        try:
            return self.outbox.call(fn, what)
        except (SlackApiError, SlackUnavailable) as error:
            # Streams are optional: the status message keeps the truth.
            log.info("%s failed (%s); falling back to chat.update only", what, error)
            stream.dead = True
            return None


def _task(step_id: str, title: str, status: str, details: str) -> dict:
    chunk = {"type": "task_update", "id": step_id, "title": title[:256], "status": status}
    if details:
        chunk["details"] = details[:1000]
    return chunk
