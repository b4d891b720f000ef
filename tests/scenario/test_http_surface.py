"""The HTTP surface as an attacker without the signing secret meets it: `rollback-bot serve`
as a real process at the log level production uses (info), plus the rig's bot.

Each test reproduces what was found against the bot: unsigned bodies that stalled it (its
log filter backtracked over the body Bolt logged), no body limit, a body parsed before its
signature was checked (non-JSON: HTTP 500), half-open connections held for ever, one
append-only audit row per forged request.
"""

from __future__ import annotations

import hashlib
import hmac
import http.client
import os
import resource
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import urlencode

import pytest

from bot.server import HEAD_SECONDS, MAX_BODY_BYTES
from bot.store import Store
from bot.store.records import EventKind
from tests.rig.bot_server import config_text, free_port, wait_until
from tests.rig.signer import Signer

FORM = "application/x-www-form-urlencoded"
# The shape that made the old redaction pattern backtrack: a scheme, a user and a colon,
# then a long run with no '@' (4,000 characters 0.5 s, growing with the square).
HOSTILE = b"text=a://b:" + b"c" * 32_000


class ServedBot:
    """`rollback-bot serve` on 127.0.0.1 at --log-level info, its output collected."""

    def __init__(self, tmp_path, fake_slack):
        self.secret = "http-surface-signing-secret"
        config = tmp_path / "rollback.toml"
        config.write_text(config_text(state_db=tmp_path / "state.db"))
        env = {k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "ROLLBACK_"))}
        env.update(
            SLACK_BOT_TOKEN=fake_slack.token,
            SLACK_SIGNING_SECRET=self.secret,
            SLACK_API_URL=fake_slack.url,
            ROLLBACK_BOT_CONFIG=str(config),
        )
        self.port = free_port()
        self.log = tmp_path / "bot.log"
        self._out = self.log.open("w")
        args = ["serve", "--host", "127.0.0.1", "--port", str(self.port), "--log-level", "info"]
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "bot.main", *args],
            env=env,
            stdout=self._out,
            stderr=subprocess.STDOUT,
        )
        self.signer = Signer(f"http://127.0.0.1:{self.port}/slack/events", self.secret, fake_slack)
        wait_until(self._listening, 30, "the bot to listen")

    def _listening(self) -> bool:
        assert self.proc.poll() is None, self.log.read_text()
        try:
            socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
            return True
        except OSError:
            return False

    def connection(self, timeout: float = 10) -> http.client.HTTPConnection:
        return http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)

    def post(self, body: bytes, headers: dict, timeout: float = 10) -> tuple[int, bytes]:
        conn = self.connection(timeout)
        try:
            conn.request(
                "POST", "/slack/events", body=body, headers={"Content-Type": FORM, **headers}
            )
            response = conn.getresponse()
            return response.status, response.read()
        finally:
            conn.close()

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._out.close()


@pytest.fixture
def served(tmp_path, fake_slack):
    bot = ServedBot(tmp_path, fake_slack)
    yield bot
    bot.stop()


def unsigned(body: bytes, served: ServedBot, timeout: float = 10) -> int:
    stamp = str(int(time.time()))
    headers = {"X-Slack-Request-Timestamp": stamp, "X-Slack-Signature": "v0=" + "0" * 64}
    try:
        return served.post(body, headers, timeout)[0]
    except (TimeoutError, ConnectionError):
        return 0


def test_unsigned_bodies_do_not_keep_the_bot_from_acking(served):
    # Eight unsigned 32 KB POSTs once left the bot unable to ack for ~55 s.
    with ThreadPoolExecutor(8) as pool:
        statuses = list(pool.map(lambda _: unsigned(HOSTILE, served), range(8)))
    assert statuses == [401] * 8
    # Slack gives up on an ack after 3 s: a signed command right after is answered.
    started = time.monotonic()
    response = served.signer.slash("help")
    assert response.status == 200 and time.monotonic() - started < 3
    with urllib.request.urlopen(f"http://127.0.0.1:{served.port}/metrics", timeout=10) as got:
        exposition = got.read().decode()
    assert (
        'rollback_bot_requests_refused_total{reason="invalid signature or stale timestamp"} 8.0'
        in exposition
    )
    served.stop()
    log = served.log.read_text()
    assert "cccccccc" not in log  # no body of a refused request is logged


def test_a_megabyte_unsigned_body_is_refused_at_once(served):
    started = time.monotonic()
    assert unsigned(b"text=a://b:" + b"c" * 1_000_000, served, timeout=30) == 401
    # Generous: signature first costs one HMAC; the old filter would take hours.
    assert time.monotonic() - started < 10
    assert served.signer.slash("help").status == 200


def test_a_body_over_the_limit_is_refused_before_it_is_read(served):
    with socket.create_connection(("127.0.0.1", served.port), timeout=10) as sock:
        sock.sendall(
            b"POST /slack/events HTTP/1.1\r\nHost: bot\r\nContent-Type: " + FORM.encode()
            + b"\r\nContent-Length: " + str(50 * 1024 * 1024).encode() + b"\r\n\r\n"
        )  # fmt: skip
        # Nothing of the 50 MB is sent: the answer comes from the header alone.
        assert sock.recv(100).startswith(b"HTTP/1.1 413")


def test_a_chunked_body_is_cut_off_at_the_limit(served):
    conn = served.connection(30)
    chunks = (b"x" * 65536 for _ in range(MAX_BODY_BYTES // 65536 + 8))
    try:
        conn.request(
            "POST",
            "/slack/events",
            body=chunks,
            headers={"Content-Type": FORM},
            encode_chunked=True,
        )
        status = conn.getresponse().status
    except (BrokenPipeError, ConnectionResetError):
        status = 413  # the server answered and closed while we were still sending
    finally:
        conn.close()
    assert status == 413
    assert served.signer.slash("help").status == 200


def signed_bytes(served: ServedBot, body: bytes) -> int:
    """Signed over the raw bytes, as Slack signs, whether or not they are UTF-8."""
    stamp = str(int(time.time()))
    digest = hmac.new(served.secret.encode(), f"v0:{stamp}:".encode() + body, hashlib.sha256)
    headers = {"X-Slack-Request-Timestamp": stamp, "X-Slack-Signature": f"v0={digest.hexdigest()}"}
    return served.post(body, headers)[0]


def test_a_signed_body_that_does_not_parse_is_a_400_not_a_500(served):
    for body in (b"payload=not-json", b"payload=%7B%22type%22%3A", b"\xff\xfe\x00payload"):
        assert signed_bytes(served, body) == 400, body
    stamp = {"X-Slack-Request-Timestamp": "yesterday", "X-Slack-Signature": "v0=00"}
    assert served.post(b"text=help", stamp)[0] == 401
    served.stop()
    log = served.log.read_text()
    assert "Traceback" not in log, log


def test_half_open_connections_are_closed(served):
    sockets = []
    for _ in range(50):
        sock = socket.create_connection(("127.0.0.1", served.port), timeout=HEAD_SECONDS + 10)
        sock.sendall(b"POST /slack/events HTTP/1.1\r\nHost: bot\r\n")  # and never the rest
        sockets.append(sock)
    try:
        assert served.signer.slash("help").status == 200  # the others are still served
        for sock in sockets:
            assert sock.recv(100) == b""  # closed by the bot, not by our timeout
    finally:
        for sock in sockets:
            sock.close()


IDLE_CONNECTIONS = 260  # above the 200 that once made uvicorn answer every request 503


def test_idle_connections_do_not_shut_the_bot_out(served):
    # uvicorn's limit_concurrency counted idle connections: 200 that never sent a byte made
    # Slack's events and /healthz alike a 503 until the head timeout (and a reconnect).
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < IDLE_CONNECTIONS + 256:  # ours, plus what the test process has open
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(IDLE_CONNECTIONS + 1024, hard), hard))
    held = []
    try:
        for n in range(IDLE_CONNECTIONS):
            sock = socket.create_connection(("127.0.0.1", served.port), timeout=HEAD_SECONDS)
            if n % 2:  # half of them half-open: a request head begun, never finished
                sock.sendall(b"POST /slack/events HTTP/1.1\r\nHost: bot\r\n")
            held.append(sock)
        wait_until(lambda: _accepted(served, IDLE_CONNECTIONS), 10, "the bot to accept them")
        response = served.signer.slash("help")
        assert response.status == 200, response.body
        url = f"http://127.0.0.1:{served.port}/healthz"
        with urllib.request.urlopen(url, timeout=10) as health:
            assert health.status == 200
        assert _accepted(served, IDLE_CONNECTIONS)  # all still held while we were served
    finally:
        for sock in held:
            sock.close()


def _accepted(served: ServedBot, count: int) -> bool:
    """The bot holds at least ``count`` established connections on its port (Linux's
    /proc/net/tcp: the local port is the bot's and the state 01, ESTABLISHED)."""
    port = f"{served.port:04X}"
    with open("/proc/net/tcp") as table:
        rows = [line.split() for line in table.readlines()[1:]]
    return sum(1 for r in rows if r[1].endswith(":" + port) and r[3] == "01") >= count


@pytest.mark.parametrize(
    "timestamp",
    ["\u00b2", "1" * 5000, "\u0661\u0662", "+1700000000", "-1", "1_700_000_000"],
    ids=["superscript-two", "5000-digits", "arabic-indic", "plus", "minus", "underscores"],
)
def test_a_malformed_timestamp_is_a_401_not_a_500(served, timestamp):
    # str.isdigit() took '\u00b2' and int() then raised; 5,000 digits exceed int()'s limit.
    raw = (
        b"POST /slack/events HTTP/1.1\r\nHost: bot\r\nContent-Type: " + FORM.encode()
        + b"\r\nContent-Length: 9\r\nX-Slack-Signature: v0=" + b"0" * 64
        + b"\r\nX-Slack-Request-Timestamp: " + timestamp.encode()
        + b"\r\nConnection: close\r\n\r\ntext=help"
    )  # fmt: skip
    assert _raw_status(served, raw) == 401
    _assert_counted_and_no_traceback(served, "missing signature or timestamp")


def test_a_header_that_is_not_utf8_is_a_401_not_a_500(served):
    # Bolt decodes every header as UTF-8, before any check: \xff broke it (HTTP 500).
    stamp = str(int(time.time())).encode()
    for name, value in ((b"X-Slack-Signature", b"v0=\xff"), (b"User-Agent", b"Slackbot \xfe")):
        raw = (
            b"POST /slack/events HTTP/1.1\r\nHost: bot\r\nContent-Type: " + FORM.encode()
            + b"\r\nContent-Length: 9\r\nX-Slack-Request-Timestamp: " + stamp
            + b"\r\n" + name + b": " + value + b"\r\nConnection: close\r\n\r\ntext=help"
        )  # fmt: skip
        assert _raw_status(served, raw) == 401, name
    _assert_counted_and_no_traceback(served, "malformed headers", 2)


def _raw_status(served: ServedBot, raw: bytes) -> int:
    with socket.create_connection(("127.0.0.1", served.port), timeout=10) as sock:
        sock.sendall(raw)
        answer = b""
        while chunk := sock.recv(4096):
            answer += chunk
    return int(answer.split(b" ", 2)[1])


def _assert_counted_and_no_traceback(served: ServedBot, reason: str, count: int = 1) -> None:
    with urllib.request.urlopen(f"http://127.0.0.1:{served.port}/metrics", timeout=10) as got:
        exposition = got.read().decode()
    assert f'rollback_bot_requests_refused_total{{reason="{reason}"}} {count}.0' in exposition
    assert served.signer.slash("help").status == 200
    served.stop()
    log = served.log.read_text()
    assert "Traceback" not in log, log


def test_refused_requests_are_counted_not_audited_one_by_one(bot):
    body = urlencode({"command": "/rollback", "text": "drill", "user_id": "U_ALICE"}).encode()
    with ThreadPoolExecutor(8) as pool:
        statuses = list(
            pool.map(lambda _: bot.signer.post(body, FORM, forge=True).status, range(300))
        )
    assert statuses == [401] * 300
    bot.signer.post(body, FORM, timestamp=int(time.time()) - 400)
    location = bot.store.location  # a SQLite file or a PostgreSQL URL
    bot.stop()  # the minute's count is written at shutdown at the latest
    store = Store(location)
    try:
        rows = [a for a in store.audit() if a.event == EventKind.REQUEST_REFUSED]
    finally:
        store.close()
    assert 1 <= len(rows) <= 2, [r.message for r in rows]  # a minute may turn meanwhile
    assert sum(int(r.message.split()[0]) for r in rows) == 301
    assert all("invalid signature or stale timestamp" in r.message for r in rows)
