"""HTTP mode: Bolt's ASGI adapter under uvicorn, plus /healthz, /readyz and /metrics
(bot/probes.py).

Bolt's adapter calls the (synchronous) App.dispatch on the event loop; we run it in a
worker thread instead, so one slow request never delays another's 3-second ack.

Before Bolt sees a request: its body is read only up to ``MAX_BODY_BYTES`` (Content-Length
first, then while reading) and within ``BODY_SECONDS``; Slack's signature is checked on the
raw bytes (docs/reference/slack-platform.md, "Verifying requests"); only then is the body
parsed, and a body that does not parse is a 400. A refused request costs a counter, not an
audit row (``RefusalTally``: one row per minute), and its body is never logged.

Open connections are not what is capped: uvicorn's limit_concurrency counts idle ones too,
so 200 connections that never sent a byte once made every request a 503 (the head timeout
closes them after 10 s, and they simply reconnect). What is capped is the requests Bolt is
handling (``MAX_HANDLING``); idle and half-open connections cost a file descriptor until the
head timeout closes them.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import logging
import re
import resource
import time
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime

import uvicorn
from slack_bolt import App
from slack_bolt.adapter.asgi import SlackRequestHandler
from slack_bolt.adapter.asgi.http_request import AsgiHttpRequest
from slack_bolt.adapter.asgi.http_response import AsgiHttpResponse
from slack_bolt.request import BoltRequest
from slack_bolt.response import BoltResponse
from uvicorn.protocols.http.h11_impl import H11Protocol

from bot import ack_first, metrics, probes
from bot.probes import HEALTH_PATH, Probes
from bot.text import plural

EVENTS_PATH = "/slack/events"
__all__ = ["EVENTS_PATH", "HEALTH_PATH", "RollbackBotASGI", "uvicorn_server"]
log = logging.getLogger(__name__)

# Slack's largest payloads are interactions that carry a whole message or modal (50 or 100
# blocks of up to 3,000 characters), form-encoded JSON: well under 2 MiB.
MAX_BODY_BYTES = 2 * 1024 * 1024
BODY_SECONDS = 10  # a body trickled in slower than this is dropped (408)
HEAD_SECONDS = 10  # a connection that has not sent a request's head by then is closed
# uvicorn answers 503 beyond this many open connections or request tasks, idle ones
# included: far above what Slack opens, and below the descriptors uvicorn_server ensures.
MAX_CONNECTIONS = 10_000
MAX_HANDLING = 200  # signed requests Bolt is handling at once; beyond this, 503
KEEP_ALIVE_SECONDS = 5


class _Refused(Exception):
    def __init__(self, status: int, text: str):
        self.status, self.text = status, text


class RollbackBotASGI(SlackRequestHandler):
    def __init__(
        self,
        app: App,
        probes: Probes | None = None,
        on_refused: Callable[[str], None] | None = None,
        *,
        signing_secret: str | None = None,
        max_handling: int = MAX_HANDLING,
    ):
        super().__init__(app, path=EVENTS_PATH)
        self.max_handling, self.handling = max_handling, 0  # on the event loop only: no lock
        self.probes = probes or Probes("http")
        secret = signing_secret or getattr(app, "_signing_secret", None)
        self.signing_key = secret.encode() if secret else None
        self.refusals = RefusalTally(on_refused)

    async def dispatch(self, request: AsgiHttpRequest) -> BoltResponse:
        try:
            headers = _headers(request)
            raw = await _read_body(request, headers)
            self._verify(raw, headers)
            bolt_request = _parse(raw, request.query_string, headers)
        except _Refused as refused:
            if refused.status == 401:
                self.refusals.count(refused.text)
            return BoltResponse(status=refused.status, body=refused.text)
        if self.handling >= self.max_handling:
            log.warning("%d requests already being handled: answered 503", self.handling)
            return BoltResponse(status=503, body="busy: too many requests at once, retry")
        self.handling += 1
        try:
            with ack_first.awaiting_ack():
                return await asyncio.to_thread(self.app.dispatch, bolt_request)
        finally:
            self.handling -= 1

    def _verify(self, raw: bytes, headers: dict) -> None:
        """Slack's v0 signature: HMAC-SHA256 of b"v0:<timestamp>:<body>", the body's bytes as
        they came, before anything decodes them; a timestamp over 5 minutes off is stale."""
        if self.signing_key is None:
            return
        timestamp = headers.get("x-slack-request-timestamp") or ""
        signature = (headers.get("x-slack-signature") or "").encode()
        # ASCII digits only: str.isdigit() takes '²' and int() takes 5,000 digits, both 500s.
        if not _TIMESTAMP.fullmatch(timestamp) or not signature:
            raise _Refused(401, "missing signature or timestamp")
        expected = (
            b"v0="
            + hmac.new(self.signing_key, b"v0:" + timestamp.encode() + b":" + raw, hashlib.sha256)
            .hexdigest()
            .encode()
        )
        if abs(time.time() - int(timestamp)) > 300 or not hmac.compare_digest(expected, signature):
            raise _Refused(401, "invalid signature or stale timestamp")

    async def _get_http_response(self, method, path, request) -> AsgiHttpResponse:
        probe = await asyncio.to_thread(self.probes.respond, method, path)
        if probe is not None:
            status, content_type, body = probe
            return AsgiHttpResponse(
                status=status, headers={"content-type": [content_type]}, body=body.decode()
            )
        return await super()._get_http_response(method, path, request)

    async def _handle_lifespan(self, receive, send) -> None:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
            message = await receive()
        if message["type"] == "lifespan.shutdown":
            self.refusals.flush()  # the last minute's count is kept
            await send({"type": "lifespan.shutdown.complete"})


_TIMESTAMP = re.compile(r"[0-9]{1,12}")
_CONTENT_LENGTH = re.compile(r"[0-9]{1,15}")


def _headers(request: AsgiHttpRequest) -> dict:
    """Bolt's header dict; a header that is not UTF-8 (Bolt decodes every one) is a request
    that cannot be verified."""
    try:
        return request.get_headers()
    except UnicodeDecodeError:
        raise _Refused(401, "malformed headers") from None


async def _read_body(request: AsgiHttpRequest, headers: dict) -> bytes:
    length = headers.get("content-length") or "0"
    if not _CONTENT_LENGTH.fullmatch(length):
        raise _Refused(400, "bad Content-Length")
    if int(length) > MAX_BODY_BYTES:
        raise _Refused(413, "body too large")
    body = bytearray()
    try:
        async with asyncio.timeout(BODY_SECONDS):
            while True:
                message = await request.receive()
                if message["type"] != "http.request":
                    raise _Refused(400, "connection closed before the body was complete")
                body += message.get("body", b"")
                if len(body) > MAX_BODY_BYTES:
                    raise _Refused(413, "body too large")
                if not message.get("more_body", False):
                    return bytes(body)
    except TimeoutError:
        raise _Refused(408, "body not received in time") from None


def _parse(raw: bytes, query: str, headers: dict) -> BoltRequest:
    """Bolt parses the body when the request is built (JSON, or a form whose ``payload`` is
    JSON); what does not parse is the sender's error, 400, not our 500."""
    try:
        return BoltRequest(body=raw.decode("utf-8"), query=query, headers=headers)
    except (UnicodeDecodeError, ValueError, TypeError, KeyError, AttributeError):
        raise _Refused(400, "malformed body") from None


class RefusalTally:
    """Requests refused before Bolt (bad signature, stale timestamp): counted by minute and
    reason, one audit row per minute that had any (3,000 forged requests once made 3,000
    append-only rows). Runs on the event loop only: no lock."""

    def __init__(self, record: Callable[[str], None] | None):
        self.record = record
        self.minute: str | None = None
        self.reasons: Counter[str] = Counter()

    def count(self, reason: str) -> None:
        minute = datetime.now(UTC).strftime("%Y-%m-%d %H:%M")
        loop = asyncio.get_running_loop()
        if minute != self.minute:
            self.flush()
            self.minute = minute
            loop.call_later(61 - datetime.now(UTC).second, self.flush)
        self.reasons[reason] += 1
        metrics.REQUESTS_REFUSED.labels(reason).inc()

    def flush(self) -> None:
        """One audit row for the minute (a single SQLite insert, on the loop: once a minute
        at most)."""
        reasons, minute = self.reasons, self.minute
        self.reasons = Counter()
        if not reasons or self.record is None:
            return
        total = sum(reasons.values())
        detail = ", ".join(f"{n} {reason}" for reason, n in reasons.most_common())
        text = f"{plural(total, 'request')} refused in the minute {minute} UTC: {detail}"
        self.record(text)


class _H11WithHeadTimeout(H11Protocol):
    """uvicorn (0.54) waits for a request's head for as long as the client likes: 400
    half-open connections were held for ever. This closes a connection that has not sent a
    request head ``HEAD_SECONDS`` after it opened or after its last response."""

    def connection_made(self, transport) -> None:
        super().connection_made(transport)
        self._arm_head_timeout()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        self._arm_head_timeout()

    def _arm_head_timeout(self) -> None:
        self.loop.call_later(HEAD_SECONDS, self._head_timeout, self.cycle)

    def _head_timeout(self, cycle) -> None:
        if self.cycle is cycle and not self.transport.is_closing():
            self.transport.close()


def uvicorn_server(asgi, host: str, port: int, log_level: str = "info") -> uvicorn.Server:
    """HTTP mode's app under uvicorn (bot/probes.py), with the limits above."""
    ensure_descriptors(MAX_CONNECTIONS + 1024)
    return probes.uvicorn_server(
        asgi,
        host,
        port,
        log_level,
        http=_H11WithHeadTimeout,
        limit_concurrency=MAX_CONNECTIONS,
        timeout_keep_alive=KEEP_ALIVE_SECONDS,
        h11_max_incomplete_event_size=64 * 1024,  # the request line and headers
    )


def ensure_descriptors(wanted: int) -> int:
    """Raise the soft open-files limit towards ``wanted`` (never past the hard limit): out of
    descriptors, accept() fails and everyone is shut out, as with a connection cap (the
    common soft default is 1,024). Returns the soft limit now in force."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
    if soft != resource.RLIM_INFINITY and soft < target:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
        return target
    return soft
