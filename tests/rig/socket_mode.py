"""Slack's side of Socket Mode, on 127.0.0.1, for the rig.

``apps.connections.open`` on the fake Web API (bot/sandbox/fake_slack.py) hands out a
single-use ``ws://127.0.0.1:PORT/link/?ticket=...&app_id=...`` URL from this server. A
connection that presents a valid ticket is sent ``hello``; envelopes (``slash_commands``,
``interactive``, ``events_api``) go to one of the open connections; the app must answer each
with ``{"envelope_id": ..., "payload": ...}`` within 3 s, else the envelope is delivered
again with ``retry_attempt``/``retry_reason`` (up to 3 times). Tests can send ``disconnect``
(reasons ``warning``, ``refresh_requested``, ``too_many_websockets``), drop a socket without
a closing handshake, and read every ack with its latency.

The shapes follow Slack's Socket Mode docs (docs.slack.dev "Using Socket Mode") and the
fixtures of slackapi/node-slack-sdk's socket-mode client tests:
- hello: ``{"type": "hello", "num_connections": 1, "debug_info": {"host": ...,
  "build_number": ..., "approximate_connection_time": ...}, "connection_info": {"app_id"}}``
- an envelope: ``{"envelope_id", "payload", "type", "accepts_response_payload"}``; Events API
  envelopes also carry ``retry_attempt`` (0 first) and ``retry_reason`` ("" first).
- disconnect: ``{"type": "disconnect", "reason": ..., "debug_info": {"host": ...}}``; Slack
  sends ``too_many_websockets`` to a connection past the 10 it allows per app, and closes it.
A redelivery gets a new envelope_id (others have seen Slack do so; gugu91/pinet#226), so an
app can only recognise one by what the payload keeps (event_id, trigger_id).

Built on ``websockets``' asyncio server in a thread of its own; every public method is
thread-safe and synchronous. ``SocketModeSigner`` drives the bot through it with the same
user actions as the signed-HTTP ``Signer``; a Response is then the ack.

Pytest plugin: ``socket_mode_server`` (session, attached to the fake Web API) and
``socket_mode`` (per test, reset).
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
import uuid
from dataclasses import dataclass, field
from urllib.parse import parse_qs, urlsplit

import pytest
from websockets.asyncio.server import ServerConnection, serve
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Response as HandshakeResponse

from bot.sandbox.fake_slack import FakeSlack
from bot.sandbox.signer import Response, Signer

ACK_DEADLINE = 3.0  # Slack: every envelope must be acknowledged within 3 s
MAX_RETRIES = 3  # Slack retries an unacknowledged Events API delivery up to 3 times
MAX_CONNECTIONS = 10  # Slack: at most 10 open Socket Mode connections per app
DEBUG_HOST = "applink-rig"
DISCONNECT_REASONS = ("warning", "refresh_requested", "too_many_websockets", "link_disabled")
# Types whose envelopes say the app may answer in the ack (response_action, a message body).
ACCEPTS_RESPONSE_PAYLOAD = {"slash_commands": True, "interactive": True, "events_api": False}


@dataclass
class Ack:
    envelope_id: str
    payload: dict | None
    latency: float  # seconds from sending the envelope to receiving this ack
    connection: int  # the connection the ack came over
    at: float = 0.0  # time.monotonic() when it arrived


@dataclass
class Envelope:
    """One attempt at delivering something: Slack's envelope, where it went, its ack."""

    envelope_id: str
    type: str
    payload: dict
    retry_attempt: int = 0
    retry_reason: str = ""
    connection: int | None = None
    sent_at: float | None = None
    ack: Ack | None = None

    def message(self) -> dict:
        message = {
            "envelope_id": self.envelope_id,
            "payload": self.payload,
            "type": self.type,
            "accepts_response_payload": ACCEPTS_RESPONSE_PAYLOAD[self.type],
        }
        # Events API envelopes always say which attempt they are; others only when retried.
        if self.type == "events_api" or self.retry_attempt:
            message |= {"retry_attempt": self.retry_attempt, "retry_reason": self.retry_reason}
        return message


@dataclass
class Delivery:
    """Something Slack must get acknowledged: the first envelope and any redeliveries."""

    type: str
    payload: dict
    attempts: list[Envelope] = field(default_factory=list)
    done: threading.Event = field(default_factory=threading.Event)
    gave_up: bool = False
    first_attempt: int = 0

    @property
    def ack(self) -> Ack | None:
        acked = [a.ack for a in self.attempts if a.ack]
        return acked[0] if acked else None

    def wait(self, timeout: float) -> Ack | None:
        self.done.wait(timeout)
        return self.ack


@dataclass
class Connection:
    id: int
    socket: ServerConnection
    opened_at: float
    hello_at: float | None = None
    closed_at: float | None = None
    close_reason: str | None = None
    disconnect_sent: str | None = None

    @property
    def open(self) -> bool:
        return self.closed_at is None and self.hello_at is not None


class SocketModeServer:
    def __init__(self, app_id: str = "A0TEST") -> None:
        self.app_id = app_id
        self._lock = threading.RLock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._server = None
        self._next_id = 0
        self._round_robin = 0
        self.reset()

    # -- lifecycle

    def start(self) -> SocketModeServer:
        ready = threading.Event()
        self._loop = asyncio.new_event_loop()

        async def listen() -> None:
            self._server = await serve(
                self._connection,
                "127.0.0.1",
                0,
                process_request=self._check_ticket,
                compression=None,
                ping_interval=None,  # the app pings; Slack answers with pongs
            )

        def run() -> None:
            asyncio.set_event_loop(self._loop)
            self._loop.run_until_complete(listen())
            ready.set()
            self._loop.run_forever()

        self._thread = threading.Thread(target=run, name="socket-mode-server", daemon=True)
        self._thread.start()
        ready.wait(10)
        return self

    def stop(self) -> None:
        if self._loop is None:
            return
        self._call(self._close_all("server stopped"))

        async def shutdown() -> None:
            self._server.close()
            await self._server.wait_closed()

        self._call(shutdown())
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
        self._loop = None

    @property
    def port(self) -> int:
        return self._server.sockets[0].getsockname()[1]

    def reset(self) -> None:
        """Between tests: close every connection, forget envelopes, acks and tickets."""
        if self._loop is not None:
            self._call(self._close_all("reset"))
        with self._lock:
            self.ack_deadline = ACK_DEADLINE
            self.max_retries = MAX_RETRIES
            self.max_connections = MAX_CONNECTIONS
            self._tickets: set[str] = set()
            self._connections: dict[int, Connection] = {}
            self.deliveries: list[Delivery] = []
            self.unexpected: list[str] = []  # what apps sent that acks no envelope
            self.refused_tickets = 0
            self.lose_acks = 0  # the next N acks are lost on the way (Slack never sees them)
            self.lost_acks: list[str] = []
            self.late_acks: list[str] = []  # acks after the deadline: Slack had given up

    # -- apps.connections.open (called by the fake Web API)

    def open_url(self) -> str:
        ticket = str(uuid.uuid4())
        with self._lock:
            self._tickets.add(ticket)
        return f"ws://127.0.0.1:{self.port}/link/?ticket={ticket}&app_id={self.app_id}"

    # -- what tests read

    def connections(self, *, open_only: bool = True) -> list[Connection]:
        with self._lock:
            found = list(self._connections.values())
        return [c for c in found if c.open] if open_only else found

    def envelopes(self) -> list[Envelope]:
        with self._lock:
            return [e for d in self.deliveries for e in d.attempts]

    def acks(self) -> list[Ack]:
        return [e.ack for e in self.envelopes() if e.ack]

    def wait_connected(self, count: int = 1, timeout: float = 10, after: float = 0.0) -> list:
        """Blocks until `count` connections that said hello after `after` are open."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            fresh = [c for c in self.connections() if c.hello_at and c.hello_at >= after]
            if len(fresh) >= count:
                return fresh
            time.sleep(0.01)
        states = [(c.id, c.hello_at, c.close_reason) for c in self.connections(open_only=False)]
        raise AssertionError(f"no {count} open Socket Mode connection(s) in {timeout}s: {states}")

    def assert_every_envelope_acked(self) -> None:
        """Every delivery was acknowledged, each ack within 3 s and naming its own
        envelope_id (an ack for an unknown or already-acked envelope is `unexpected`)."""
        assert not self.unexpected, f"acks for no pending envelope: {self.unexpected[:3]}"
        for delivery in list(self.deliveries):
            ack = delivery.ack
            assert ack is not None, f"{delivery.type} envelope never acknowledged: {delivery}"
            assert ack.latency < self.ack_deadline, f"acked after {ack.latency:.2f}s: {ack}"

    # -- what tests do

    def deliver(self, type_: str, payload: dict, *, first_attempt: int = 0) -> Delivery:
        """Sends an envelope to one open connection; redelivers it while unacknowledged.
        first_attempt > 0 starts as a retry (an event Slack already tried elsewhere)."""
        if type_ not in ACCEPTS_RESPONSE_PAYLOAD:
            raise ValueError(f"unknown envelope type {type_!r}")
        delivery = Delivery(type_, payload, first_attempt=first_attempt)
        with self._lock:
            self.deliveries.append(delivery)
        asyncio.run_coroutine_threadsafe(self._deliver(delivery), self._loop)
        return delivery

    def disconnect(
        self, reason: str, *, connection: int | None = None, close_after: float = 0.5
    ) -> int:
        """Sends ``disconnect`` to a connection (default: the newest open one) and closes it
        `close_after` seconds later, as Slack does when it refreshes or moves a link."""
        if reason not in DISCONNECT_REASONS:
            raise ValueError(f"Slack sends no disconnect reason {reason!r}")
        target = self._target(connection)
        sent = self._call(self._send_disconnect(target, reason))
        if sent:
            asyncio.run_coroutine_threadsafe(
                self._close_later(target, reason, close_after), self._loop
            )
        return target.id

    def drop(self, *, connection: int | None = None, reset: bool = True) -> int:
        """Tears a connection down with no closing handshake, as a load balancer or a
        network fault does: a TCP reset, or (reset=False) a plain end of stream."""
        target = self._target(connection)

        async def abort() -> None:
            self._closed(target, "dropped" if reset else "ended without a close frame")
            if reset:
                target.socket.transport.abort()
            else:
                target.socket.transport.close()

        self._call(abort())
        return target.id

    # -- inside the server's loop

    def _call(self, coroutine, timeout: float = 10):
        return asyncio.run_coroutine_threadsafe(coroutine, self._loop).result(timeout)

    def _target(self, connection: int | None) -> Connection:
        with self._lock:
            if connection is not None:
                return self._connections[connection]
            open_ = [c for c in self._connections.values() if c.open]
        if not open_:
            raise AssertionError("no open Socket Mode connection")
        return open_[-1]

    def _check_ticket(self, socket: ServerConnection, request) -> HandshakeResponse | None:
        query = parse_qs(urlsplit(request.path).query)
        ticket = (query.get("ticket") or [""])[0]
        with self._lock:
            if ticket in self._tickets:
                self._tickets.discard(ticket)  # a ticket opens one connection
                return None
            self.refused_tickets += 1
        return socket.respond(401, "invalid or used ticket\n")

    async def _connection(self, socket: ServerConnection) -> None:
        with self._lock:
            self._next_id += 1
            record = Connection(self._next_id, socket, time.monotonic())
            self._connections[record.id] = record
            too_many = len([c for c in self._connections.values() if c.open]) >= (
                self.max_connections
            )
        try:
            if too_many:
                if await self._send_disconnect(record, "too_many_websockets"):
                    await self._close_later(record, "too_many_websockets", 0.0)
                return
            await socket.send(json.dumps(self._hello()))
            record.hello_at = time.monotonic()
            async for text in socket:
                self._on_message(record, text)
        except ConnectionClosed:
            pass
        finally:
            self._closed(record, record.close_reason or "closed by the app")

    def _hello(self) -> dict:
        return {
            "type": "hello",
            "num_connections": len(self.connections()) + 1,
            "debug_info": {
                "host": DEBUG_HOST,
                "build_number": 1,
                "approximate_connection_time": 18060,
            },
            "connection_info": {"app_id": self.app_id},
        }

    def _on_message(self, record: Connection, text: str | bytes) -> None:
        received = time.monotonic()
        try:
            message = json.loads(text)
        except ValueError:
            message = None
        envelope_id = message.get("envelope_id") if isinstance(message, dict) else None
        with self._lock:
            envelope = next((e for e in self.envelopes() if e.envelope_id == envelope_id), None)
            if envelope is None or envelope.ack is not None or envelope.sent_at is None:
                self.unexpected.append(text if isinstance(text, str) else text.decode())
                return
            if self.lose_acks > 0:
                self.lose_acks -= 1
                self.lost_acks.append(envelope_id)
                return
            if received - envelope.sent_at >= self.ack_deadline:
                self.late_acks.append(envelope_id)
                return
            envelope.ack = Ack(
                envelope_id,
                message.get("payload"),
                received - envelope.sent_at,
                record.id,
                received,
            )
            delivery = next(d for d in self.deliveries if envelope in d.attempts)
        delivery.done.set()

    def _closed(self, record: Connection, reason: str) -> None:
        with self._lock:
            if record.closed_at is None:
                record.closed_at, record.close_reason = time.monotonic(), reason

    async def _send_disconnect(self, record: Connection, reason: str) -> bool:
        record.disconnect_sent = reason
        message = {"type": "disconnect", "reason": reason, "debug_info": {"host": DEBUG_HOST}}
        try:
            await record.socket.send(json.dumps(message))
        except ConnectionClosed:
            return False
        return True

    async def _close_later(self, record: Connection, reason: str, close_after: float) -> None:
        await asyncio.sleep(close_after)
        self._closed(record, f"disconnect: {reason}")
        await record.socket.close(1000, reason)

    async def _close_all(self, reason: str) -> None:
        for record in self.connections(open_only=False):
            if record.closed_at is None:
                self._closed(record, reason)
                await record.socket.close(1001, reason)

    async def _deliver(self, delivery: Delivery) -> None:
        for attempt in range(delivery.first_attempt, self.max_retries + 1):
            envelope = Envelope(
                str(uuid.uuid4()),
                delivery.type,
                delivery.payload,
                retry_attempt=attempt,
                retry_reason="timeout" if attempt else "",
            )
            with self._lock:
                delivery.attempts.append(envelope)
            if await self._send_envelope(envelope) and await self._acked(delivery):
                return
            if delivery.ack:
                return
        delivery.gave_up = True
        delivery.done.set()

    async def _send_envelope(self, envelope: Envelope) -> bool:
        """Waits up to the ack deadline for an open connection; False if none came."""
        deadline = time.monotonic() + self.ack_deadline
        while time.monotonic() < deadline:
            target = self._pick_connection()
            if target is not None:
                envelope.connection, envelope.sent_at = target.id, time.monotonic()
                try:
                    await target.socket.send(json.dumps(envelope.message()))
                    return True
                except ConnectionClosed:
                    envelope.connection = envelope.sent_at = None
            await asyncio.sleep(0.01)
        return False

    def _pick_connection(self) -> Connection | None:
        """Round robin over open connections that were not told to go away."""
        with self._lock:
            candidates = [c for c in self._connections.values() if c.open]
            fresh = [c for c in candidates if c.disconnect_sent is None]
            pool = fresh or candidates
            if not pool:
                return None
            self._round_robin += 1
            return pool[self._round_robin % len(pool)]

    async def _acked(self, delivery: Delivery) -> bool:
        sent_at = delivery.attempts[-1].sent_at or time.monotonic()
        while time.monotonic() - sent_at < self.ack_deadline:
            if delivery.ack:
                return True
            await asyncio.sleep(0.005)
        return delivery.ack is not None


# How long a driver waits for an ack: the first attempt and every redelivery.
ACK_WAIT = ACK_DEADLINE * (MAX_RETRIES + 1) + 2


class SocketModeSigner(Signer):
    """The Signer's user actions (slash, block_action, submit_view, view_closed, event)
    delivered as Socket Mode envelopes. The Response is the ack: status 200 once acked
    (0 if never), the ack's payload as the body, elapsed from the first delivery attempt."""

    def __init__(self, server: SocketModeServer, fake_slack: FakeSlack):
        super().__init__("socket-mode:", "", fake_slack)
        self.server = server

    def post(self, *args, **kwargs) -> Response:
        raise AssertionError("Socket Mode has no signed HTTP requests: that test is HTTP-only")

    def _form(self, fields: dict) -> Response:
        return self.envelope("slash_commands", fields)

    def _interaction(self, payload: dict) -> Response:
        return self.envelope("interactive", payload)

    def _deliver_event(self, envelope: dict, retry_num: int | None) -> Response:
        return self.envelope("events_api", envelope, first_attempt=retry_num or 0)

    def envelope(self, kind: str, payload: dict, *, first_attempt: int = 0) -> Response:
        delivery = self.server.deliver(kind, payload, first_attempt=first_attempt)
        ack = delivery.wait(ACK_WAIT)
        response = Response(0, {}, "", sent=payload)
        if ack is not None:
            first_sent = next(a.sent_at for a in delivery.attempts if a.sent_at is not None)
            body = json.dumps(ack.payload) if ack.payload else ""
            response = Response(200, {}, body, ack.at - first_sent, payload)
        response.delivery = delivery
        return response


@pytest.fixture(scope="session")
def socket_mode_server(fake_slack_server: FakeSlack):
    server = SocketModeServer(fake_slack_server.app_id).start()
    fake_slack_server.attach_socket_mode(server)
    yield server
    fake_slack_server.attach_socket_mode(None)
    server.stop()


@pytest.fixture
def socket_mode(socket_mode_server: SocketModeServer) -> SocketModeServer:
    socket_mode_server.reset()
    return socket_mode_server
