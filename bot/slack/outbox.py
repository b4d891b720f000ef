"""Every Web API call the bot makes on its own initiative goes through here.

Slack answers 429 with Retry-After when a method's limit is hit (chat.postMessage: about
one message per second per channel; chat.update: Tier 3), 5xx and time-outs happen.
The outbox paces posts per channel, honours Retry-After and backs off on server errors,
in the calling thread only, so one operation's wait never stalls another's.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from urllib.error import URLError

from slack_sdk.errors import SlackApiError
from slack_sdk.web import SlackResponse

from bot import metrics

log = logging.getLogger(__name__)


class SlackUnavailable(Exception):
    """Slack kept failing past the retry budget."""


class TokenBucket:
    """rate tokens per second, up to burst; wait() blocks until one is free."""

    def __init__(self, rate: float, burst: int):
        self.rate, self.burst = rate, burst
        self._tokens: dict[str, float] = {}
        self._stamp: dict[str, float] = {}
        self._lock = threading.Lock()

    def wait(self, key: str) -> None:
        while True:
            with self._lock:
                now = time.monotonic()
                tokens = min(
                    self.burst,
                    self._tokens.get(key, self.burst)
                    + (now - self._stamp.get(key, now)) * self.rate,
                )
                self._stamp[key] = now
                if tokens >= 1:
                    self._tokens[key] = tokens - 1
                    return
                self._tokens[key] = tokens
                delay = (1 - tokens) / self.rate
            time.sleep(delay)


def retry_after(error: SlackApiError) -> float:
    for key, value in (error.response.headers or {}).items():
        if key.lower() == "retry-after":
            value = value[0] if isinstance(value, list) else value
            try:
                return max(1.0, float(value))
            except ValueError:
                return 1.0
    return 1.0


class Outbox:
    def __init__(
        self,
        client,
        *,
        post_rate: float = 1.0,
        post_burst: int = 6,
        max_attempts: int = 12,
        max_backoff: float = 30.0,
    ):
        self.client = client
        self.max_attempts = max_attempts
        self.max_backoff = max_backoff
        self._posts = TokenBucket(post_rate, post_burst)

    def call(self, fn: Callable[[], SlackResponse], what: str) -> SlackResponse:
        backoff = 0.5
        for attempt in range(1, self.max_attempts + 1):
            try:
                return fn()
            except SlackApiError as error:
                status = error.response.status_code
                if status == 429:
                    delay = retry_after(error)
                elif status >= 500:
                    delay, backoff = backoff, min(backoff * 2, self.max_backoff)
                else:
                    raise
            except (URLError, TimeoutError, ConnectionError) as error:
                log.warning("%s: network error %s", what, type(error).__name__)
                delay, backoff = backoff, min(backoff * 2, self.max_backoff)
            log.info("%s: retrying in %.1fs (attempt %d)", what, delay, attempt)
            metrics.SLACK_RETRIES.labels(what.split(" ", 1)[0]).inc()
            time.sleep(delay)
        raise SlackUnavailable(f"{what}: Slack did not answer after {self.max_attempts} tries")

    def post(self, channel: str, message: dict, thread_ts: str | None = None) -> SlackResponse:
        def send() -> SlackResponse:
            self._posts.wait(channel)
            return self.client.chat_postMessage(channel=channel, thread_ts=thread_ts, **message)

        return self.call(send, f"chat.postMessage {channel}")

    def ephemeral(
        self, channel: str, user: str, message: dict, thread_ts: str | None = None
    ) -> SlackResponse:
        """A message only ``user`` sees, in ``channel``; Slack keeps no copy for others."""
        return self.call(
            lambda: self.client.chat_postEphemeral(
                channel=channel, user=user, thread_ts=thread_ts, **message
            ),
            f"chat.postEphemeral {channel}",
        )

    def update(self, channel: str, ts: str, message: dict) -> SlackResponse:
        return self.call(
            lambda: self.client.chat_update(channel=channel, ts=ts, **message),
            f"chat.update {channel}",
        )
