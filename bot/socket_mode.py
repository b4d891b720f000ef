"""Socket Mode: Slack's envelopes over WebSocket into the same Bolt app HTTP mode serves.

Slack's side (docs.slack.dev, "Using Socket Mode"): ``apps.connections.open`` with the
app-level token gives a one-use WebSocket URL; Slack says ``hello``, then sends envelopes
(``slash_commands``, ``interactive``, ``events_api``) that the app acknowledges with
``{"envelope_id": ..., "payload": ...}`` within 3 s, else Slack delivers them again. Before
it closes a connection Slack sends ``disconnect`` (``warning``, ``refresh_requested``; also
``too_many_websockets`` past 10 connections per app, ``link_disabled``); connections are
recycled routinely, so a refresh is normal operation, not an incident.

Why a connection manager of our own on ``websockets`` instead of slack_sdk's clients is in
ARCHITECTURE.md ("Socket Mode client"); in short, what this one does that they do not:
- every connection is read until it closes and every envelope is acknowledged over the
  connection that brought it, so a refresh neither stalls nor loses an ack;
- on ``warning``/``refresh_requested`` the new connection is opened (and has said hello)
  before the old one is closed, and the old one is closed only once its envelopes are acked;
- a dropped socket is replaced at once; ``too_many_websockets``, refused and failed
  connections back off (1 s doubling to 30 s) instead of looping on apps.connections.open;
- the state (connected, since when, reconnects, last disconnect) is there for /readyz.

Envelopes are dispatched to Bolt's ``App.dispatch`` on a thread pool, as Bolt's own
Socket Mode adapters do, and answered the way they answer (an empty ack, a JSON payload,
or ``{"text": ...}``; nothing for a non-200, so Slack delivers again).
"""

from __future__ import annotations

import hashlib
import json
import logging
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor
from urllib.error import URLError

from slack_bolt import App
from slack_bolt.request import BoltRequest
from slack_bolt.response import BoltResponse
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from websockets.exceptions import ConnectionClosed, InvalidHandshake, WebSocketException
from websockets.sync.client import ClientConnection, connect

from bot import ack_first
from bot.errors import ConfigError
from bot.probes import Probes

log = logging.getLogger(__name__)

HELLO_TIMEOUT = 10.0  # seconds for a new connection to say hello
# websockets' keepalive: a socket that died silently is noticed within about 20 s.
PING_INTERVAL = 10.0
PING_TIMEOUT = 10.0
BACKOFF_FIRST, BACKOFF_MAX = 1.0, 30.0
DISPATCH_THREADS = 32  # envelopes in dispatch at once (each waits only for its ack)
MAX_MESSAGE_BYTES = 4 * 2**20  # a view_submission carries the whole view (up to 250 KB)
RETIRING = ("warning", "refresh_requested")

# apps.connections.open's errors for a token Slack will not take, and what to do about it.
TOKEN_ERRORS = {
    "invalid_auth": "Slack does not accept SLACK_APP_TOKEN (invalid_auth): copy the app-level"
    " token from the app's Basic Information > App-Level Tokens (and check SLACK_API_URL).",
    "not_authed": "Slack received no SLACK_APP_TOKEN (not_authed): export the app-level token.",
    "not_allowed_token_type": "SLACK_APP_TOKEN is not an app-level token"
    " (not_allowed_token_type): use the xapp- token from Basic Information > App-Level Tokens.",
    "missing_scope": "SLACK_APP_TOKEN lacks the connections:write scope (missing_scope):"
    " create an app-level token with connections:write under Basic Information >"
    " App-Level Tokens.",
    "token_revoked": "SLACK_APP_TOKEN was revoked (token_revoked): create a new app-level"
    " token with connections:write.",
    "account_inactive": "The app's workspace or owner is inactive (account_inactive).",
}


class SocketModeError(ConfigError):
    """Slack refused the app token: ``rollback-bot serve`` prints it and exits 2."""


def redelivery_key(payload: dict) -> str | None:
    """What stays the same when Slack delivers an envelope again, so a redelivery is
    recognised (and acknowledged without running twice) like a replayed HTTP request.

    Not the envelope: a redelivery comes under a new envelope_id (seen by gugu91/pinet#226),
    and Bolt's adapter drops retry_attempt/retry_reason (bolt-python#1484). The payload is
    sent again as it was: Events API callbacks keep their event_id (deduplicated by
    handlers/events.py as over HTTP), commands and interactions keep the trigger_id Slack
    issued for that one user action; anything without one is known by its digest.
    """
    if payload.get("type") == "event_callback":
        return None
    if payload.get("trigger_id"):
        return f"trigger:{payload['trigger_id']}"
    canonical = json.dumps(payload, sort_keys=True, separators=(",", ":"))
    return "payload:" + hashlib.sha256(canonical.encode()).hexdigest()


def ack_message(envelope_id: str, response: BoltResponse) -> dict | None:
    """The ack Bolt's Socket Mode adapters send for a Bolt response (slack_bolt
    adapter/socket_mode/internals.py): None for a non-200, which Slack will redeliver."""
    if response.status != 200:
        return None
    if not response.body:
        return {"envelope_id": envelope_id}
    content_type = (response.headers.get("content-type") or [""])[0]
    if content_type.startswith("application/json"):
        return {"envelope_id": envelope_id, "payload": json.loads(response.body)}
    return {"envelope_id": envelope_id, "payload": {"text": response.body}}


class _Link:
    """One WebSocket connection to Slack."""

    def __init__(self, number: int):
        self.number = number
        self.ws: ClientConnection | None = None
        self.failure: BaseException | None = None  # why it never opened
        self.hello = threading.Event()
        self.retiring: str | None = None  # the disconnect reason Slack gave
        self.in_flight = 0
        self.closed = False
        self._send_lock = threading.Lock()

    def send(self, message: dict) -> bool:
        try:
            with self._send_lock:
                self.ws.send(json.dumps(message))
            return True
        except (ConnectionClosed, OSError):
            return False

    def close(self) -> None:
        if self.ws is not None:
            self.ws.close()


class SocketModeRunner:
    """Keeps one connection to Slack serving the app; see the module docstring."""

    def __init__(
        self,
        app_token: str,
        *,
        api_url: str | None = None,
        dispatch_threads: int = DISPATCH_THREADS,
    ):
        self.app: App | None = None  # set by accept()
        self._app_token = app_token
        self._web = WebClient(base_url=api_url) if api_url else WebClient()
        self._pool = ThreadPoolExecutor(dispatch_threads, thread_name_prefix="socket-dispatch")
        self._lock = threading.Lock()
        self._links: list[_Link] = []
        self._opened = 0
        self._stopping = threading.Event()
        self._wake = threading.Event()
        # Envelopes wait here until accept(app): serve connects first (proving the token),
        # then builds the app and recovers the engine, and dispatches only after.
        self._accepting = threading.Event()
        self._supervisor: threading.Thread | None = None
        self._hold_until = 0.0
        self._backoff = 0.0
        self._connected_since: float | None = None
        self.reconnects = 0
        self.last_disconnect: str | None = None
        self.last_error: str | None = None

    # -- lifecycle

    def start(self) -> None:
        """Opens the first connection, then keeps one open until stop(). Raises
        SocketModeError when Slack refuses the app token; any other failure (network,
        too_many_websockets) is retried in the background and shows in status()."""
        try:
            self._open_link()
        except SlackApiError as error:
            code = error.response.get("error", "")
            if code in TOKEN_ERRORS:
                raise SocketModeError(TOKEN_ERRORS[code]) from None
            self._hold(_describe(error), _retry_after(error))
        except (OSError, URLError, WebSocketException, TimeoutError) as error:
            self._hold(_describe(error))
        self._supervisor = threading.Thread(target=self._supervise, name="socket-mode", daemon=True)
        self._supervisor.start()

    def accept(self, app: App) -> None:
        self.app = app
        self._accepting.set()

    def stop(self) -> None:
        self._stopping.set()
        self._accepting.set()
        self._wake.set()
        for link in self._snapshot():
            link.close()
        if self._supervisor:
            self._supervisor.join(10)
        self._pool.shutdown(wait=True, cancel_futures=False)

    def status(self) -> dict:
        """For /readyz: ready while a connection that said hello is serving."""
        with self._lock:
            serving = [link for link in self._links if link.hello.is_set() and not link.closed]
            since = self._connected_since
        return {
            "ok": bool(serving),
            "connections": len(serving),
            "connected_for_seconds": round(time.monotonic() - since, 1) if since else None,
            "reconnects": self.reconnects,
            "last_disconnect": self.last_disconnect,
            "last_error": self.last_error,
        }

    def supervisor_status(self) -> dict:
        """For /healthz: the thread that reconnects is alive (if not, nothing will)."""
        alive = self._supervisor is not None and self._supervisor.is_alive()
        return {"ok": alive and not self._stopping.is_set()}

    # -- keeping a connection open

    def _supervise(self) -> None:
        while not self._stopping.is_set():
            self._wake.wait(1.0)
            self._wake.clear()
            if self._stopping.is_set() or self._serving() or time.monotonic() < self._hold_until:
                continue
            try:
                self._open_link()
                self.reconnects += 1
            except SlackApiError as error:
                self._hold(_describe(error), _retry_after(error))
            except (OSError, URLError, WebSocketException, TimeoutError) as error:
                self._hold(_describe(error))

    def _hold(self, reason: str, at_least: float = 0.0) -> None:
        """No new connection for a while: 1 s, doubling to 30 s while attempts fail."""
        self._backoff = min(max(self._backoff * 2, BACKOFF_FIRST), BACKOFF_MAX)
        wait = max(self._backoff, at_least)
        self.last_error = reason
        self._hold_until = time.monotonic() + wait
        log.warning("Socket Mode: no connection (%s); trying again in %.0f s", reason, wait)

    def _serving(self) -> _Link | None:
        with self._lock:
            for link in self._links:
                if not link.closed and not link.retiring:
                    return link
        return None

    def _snapshot(self) -> list[_Link]:
        with self._lock:
            return list(self._links)

    def _open_link(self) -> _Link:
        url = self._web.apps_connections_open(app_token=self._app_token)["url"]
        with self._lock:
            self._opened += 1
            link = _Link(self._opened)
        reader = threading.Thread(
            target=self._read, args=(link, url), name=f"socket-{link.number}", daemon=True
        )
        reader.start()
        if not link.hello.wait(HELLO_TIMEOUT + 1):
            link.close()
            raise TimeoutError(f"Slack did not say hello within {HELLO_TIMEOUT:.0f} s")
        if link.failure is not None:
            raise link.failure
        if link.retiring:  # too_many_websockets instead of hello
            raise _Refused(link.retiring)
        return link

    # -- one connection

    def _read(self, link: _Link, url: str) -> None:
        """Connects, then reads until the connection ends (one thread per connection)."""
        reason = "closed"
        try:
            with connect(
                url,
                open_timeout=HELLO_TIMEOUT,
                ping_interval=PING_INTERVAL,
                ping_timeout=PING_TIMEOUT,
                compression=None,
                max_size=MAX_MESSAGE_BYTES,
            ) as ws:
                link.ws = ws
                with self._lock:
                    self._links.append(link)
                for text in ws:
                    self._on_message(link, text)
        except (ConnectionClosed, OSError, WebSocketException, TimeoutError) as error:
            if link.ws is None:
                link.failure = error
                link.hello.set()  # wakes _open_link, which raises it
                return
            reason = f"dropped ({_describe(error)})"
        if link.ws is not None:
            self._closed(link, reason)

    def _on_message(self, link: _Link, text: str | bytes) -> None:
        try:
            message = json.loads(text)
        except ValueError:
            log.warning("Socket Mode: a message that is not JSON was ignored")
            return
        kind = message.get("type")
        if kind == "hello":
            self._said_hello(link)
        elif kind == "disconnect":
            self._on_disconnect(link, message.get("reason") or "unknown")
        elif message.get("envelope_id"):
            ack_first.awaiting()  # counted from arrival: queued envelopes need acks too
            with self._lock:
                link.in_flight += 1
            future = self._pool.submit(self._dispatch, link, message)
            future.add_done_callback(_log_failure)

    def _said_hello(self, link: _Link) -> None:
        with self._lock:
            link.hello.set()
            if self._connected_since is None:
                self._connected_since = time.monotonic()
        self._backoff = 0.0
        self.last_error = None
        self._close_drained()

    def _on_disconnect(self, link: _Link, reason: str) -> None:
        """Slack will close this connection: open the next one first (refresh), or back
        off (too_many_websockets: every reconnect would add to the count)."""
        log.info("Socket Mode: Slack sent disconnect (%s) on connection %d", reason, link.number)
        self.last_disconnect = reason
        link.retiring = reason
        if reason in RETIRING:
            self._wake.set()
            return
        if link.hello.is_set():
            self._hold(f"Slack sent disconnect ({reason})")
        else:
            link.hello.set()  # wakes _open_link, which reports the refusal
        link.close()

    def _closed(self, link: _Link, reason: str) -> None:
        with self._lock:
            link.closed = True
            self._links.remove(link)
            if not any(x.hello.is_set() and not x.closed for x in self._links):
                self._connected_since = None
        if not link.retiring and not self._stopping.is_set():
            self.last_disconnect = reason
            log.warning("Socket Mode: connection %d %s; reconnecting", link.number, reason)
        self._wake.set()

    def _close_drained(self) -> None:
        """Closes retiring connections once a fresh one serves and their acks are sent."""
        serving = self._serving()
        if serving is None or not serving.hello.is_set():
            return
        for link in self._snapshot():
            if link.retiring in RETIRING and link.in_flight == 0 and not link.closed:
                link.close()

    # -- one envelope

    def _dispatch(self, link: _Link, message: dict) -> None:
        try:
            self._accepting.wait()
            if self.app is None:  # stopped before it ever accepted
                return
            request = BoltRequest(mode="socket_mode", body=message.get("payload") or {})
            ack = ack_message(message["envelope_id"], self.app.dispatch(request))
            if ack is None:
                log.info("Socket Mode: envelope %s not acknowledged", message["envelope_id"])
            elif not link.send(ack):
                self._ack_elsewhere(link, ack)
        finally:
            ack_first.acked()
            with self._lock:
                link.in_flight -= 1
            self._close_drained()

    def _ack_elsewhere(self, link: _Link, ack: dict) -> None:
        """The connection went away under the envelope: the ack goes over the serving one
        (Slack may or may not take it there; if not, it redelivers, and the redelivery is
        recognised by redelivery_key)."""
        serving = self._serving()
        sent = serving is not None and serving.send(ack)
        log.warning(
            "Socket Mode: connection %d closed before envelope %s was acked; %s",
            link.number,
            ack["envelope_id"],
            f"acked on connection {serving.number}" if sent else "Slack will deliver it again",
        )


def socket_mode_probes(runner: SocketModeRunner) -> Probes:
    """/healthz: the reconnecting thread lives; /readyz: a connection to Slack serves."""
    probes = Probes("socket_mode")
    probes.add("socket_mode_supervisor", runner.supervisor_status, liveness=True)
    probes.add("socket_mode", runner.status)
    return probes


class _Refused(WebSocketException):
    """Slack closed a new connection with a disconnect instead of hello."""


def _retry_after(error: SlackApiError) -> float:
    try:
        return float(error.response.headers.get("Retry-After", 0))
    except (TypeError, ValueError):
        return 0.0


def _describe(error: BaseException) -> str:
    if isinstance(error, SlackApiError):
        return f"apps.connections.open: {error.response.get('error')}"
    if isinstance(error, InvalidHandshake):
        return f"handshake refused: {error}"
    return f"{type(error).__name__}: {error}" if str(error) else type(error).__name__


def _log_failure(future: Future) -> None:
    error = future.exception()
    if error is not None:
        log.error("Socket Mode: dispatching an envelope failed", exc_info=error)
