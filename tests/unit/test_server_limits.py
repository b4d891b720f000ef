"""bot/server.py's cap on work: a 503 comes only when Bolt is truly busy with that many
signed requests, never because connections are open (tests/scenario/test_http_surface.py
holds the idle ones against `rollback-bot serve`)."""

from __future__ import annotations

import resource
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from urllib.error import HTTPError
from urllib.parse import urlencode
from urllib.request import ProxyHandler, Request, build_opener

import pytest
from slack_bolt import App
from slack_sdk import WebClient
from slack_sdk.signature import SignatureVerifier

from bot.server import RollbackBotASGI, ensure_descriptors, uvicorn_server
from tests.rig.bot_server import free_port, wait_until

SECRET = "server-limits-signing-secret"
_opener = build_opener(ProxyHandler({}))  # 127.0.0.1 only


@pytest.fixture
def blocking_bot(fake_slack):
    """A Bolt app whose /rollback handler waits for ``release`` before it acks, under the
    bot's own ASGI adapter and uvicorn settings, capped at two requests in hand."""
    release = threading.Event()
    client = WebClient(token=fake_slack.token, base_url=fake_slack.url)  # Bolt's auth.test
    app = App(client=client, signing_secret=SECRET)

    @app.command("/rollback")
    def _slow(ack):
        release.wait(30)
        ack("done")

    asgi = RollbackBotASGI(app, signing_secret=SECRET, max_handling=2)
    port = free_port()
    server = uvicorn_server(asgi, "127.0.0.1", port, "warning")
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    wait_until(lambda: server.started, 10, "uvicorn to start")
    yield asgi, port, release
    release.set()
    server.should_exit = True
    thread.join(10)


def _status(port: int, path: str, body: bytes | None = None) -> int:
    headers = {}
    if body is not None:
        stamp = str(int(time.time()))
        signature = SignatureVerifier(SECRET).generate_signature(timestamp=stamp, body=body)
        headers = {
            "Content-Type": "application/x-www-form-urlencoded",
            "X-Slack-Request-Timestamp": stamp,
            "X-Slack-Signature": signature,
        }
    request = Request(f"http://127.0.0.1:{port}{path}", data=body, headers=headers)
    try:
        with _opener.open(request, timeout=30) as response:
            return response.status
    except HTTPError as error:
        return error.code


COMMAND = urlencode({"command": "/rollback", "text": "help", "user_id": "U1"}).encode()


def test_a_503_only_when_the_handlers_are_busy(blocking_bot):
    asgi, port, release = blocking_bot
    with ThreadPoolExecutor(2) as pool:
        held = [pool.submit(_status, port, "/slack/events", COMMAND) for _ in range(2)]
        wait_until(lambda: asgi.handling == 2, 10, "two requests in hand")
        assert _status(port, "/slack/events", COMMAND) == 503  # a third: truly busy
        assert _status(port, "/healthz") == 200  # the probes are not behind the cap
        release.set()
        assert [f.result(30) for f in held] == [200, 200]
    assert asgi.handling == 0
    assert _status(port, "/slack/events", COMMAND) == 200  # the slots came back


def test_refused_requests_take_no_slot(blocking_bot):
    asgi, port, release = blocking_bot
    release.set()
    forged = Request(
        f"http://127.0.0.1:{port}/slack/events",
        data=COMMAND,
        headers={"X-Slack-Request-Timestamp": str(int(time.time())), "X-Slack-Signature": "v0=0"},
    )
    for _ in range(5):
        with pytest.raises(HTTPError) as refused:
            _opener.open(forged, timeout=10)
        assert refused.value.code == 401
    assert asgi.handling == 0
    assert _status(port, "/slack/events", COMMAND) == 200


def test_the_descriptor_limit_is_raised_towards_the_connection_cap():
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    try:
        lowered = min(soft, 512)
        resource.setrlimit(resource.RLIMIT_NOFILE, (lowered, hard))
        wanted = lowered + 100
        expected = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
        assert ensure_descriptors(wanted) == expected
        assert resource.getrlimit(resource.RLIMIT_NOFILE)[0] == expected
        assert ensure_descriptors(lowered - 1) == expected  # never lowered
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
