"""The bot itself, served for real: the app factory builds it from a config file and the
environment, exactly as ``rollback-bot serve`` does, in either of Slack's transports:

- ``http`` (the default): uvicorn serves it on 127.0.0.1; ``bot.signer`` sends signed
  HTTP requests.
- ``socket_mode``: it connects to the rig's Socket Mode server (tests/rig/socket_mode.py)
  through ``apps.connections.open`` on the fake, and serves /healthz and /readyz on
  ``bot.url``; ``bot.signer`` delivers the same user actions as envelopes.

A test does not care which: ``bot.signer.slash(...)`` answers with the ack either way. Mark
a test ``@pytest.mark.both_transports`` to run it in both (the ``bot_transport`` fixture).
"""

from __future__ import annotations

import json
import logging
import secrets
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import pytest

from bot import serving
from bot.app import Services, build_app, build_services
from bot.probes import Probes, probe_server
from bot.server import RollbackBotASGI, uvicorn_server
from bot.settings import Settings, load_config, slack_settings_from_env
from bot.socket_mode import SocketModeRunner, socket_mode_probes
from bot.store import Store
from tests.rig.fake_slack import FakeSlack
from tests.rig.signer import Signer
from tests.rig.socket_mode import SocketModeSigner

TRANSPORTS = ("http", "socket_mode")

DEFAULT_CONFIG = """
default_environment = "staging"
state_db = "{state_db}"
approval_expiry_minutes = {approval_expiry_minutes}
reminder_delay_minutes = {reminder_delay_minutes}
progress_edit_interval_seconds = {progress_edit_interval_seconds}
{top_extra}

[drill]
slow_step_seconds = {drill_seconds}
progress_events = {drill_events}

[environments.production]
database_url_env = "PRODUCTION_DATABASE_URL"
protected = true
approvers = ["@db-approvers"]
requesters = ["U_ALICE", "U_BOB", "U_CAROL"]
notify_channel = "#engineering"
{production_extra}

[environments.staging]
database_url_env = "STAGING_DATABASE_URL"
protected = true
approvers = ["@db-approvers", "U_CAROL"]
notify_channel = "#engineering"
{staging_extra}

[environments.development]
database_url_env = "DEVELOPMENT_DATABASE_URL"
protected = false
notify_channel = "#engineering"
{development_extra}

{tables_extra}
"""


def config_text(**overrides) -> str:
    """DEFAULT_CONFIG with the rig's defaults, some replaced."""
    values = {
        "approval_expiry_minutes": 30,
        "reminder_delay_minutes": 30,
        "progress_edit_interval_seconds": 1.0,
        "drill_seconds": 0.5,
        "drill_events": 5,
        "staging_extra": "",
        "production_extra": "",
        "development_extra": "",
        # Top-level keys only (no tables: they would swallow what follows).
        "top_extra": "",
        # Tables ([sql], [pitr], [[environments.x.verification_queries]]) go last.
        "tables_extra": "",
        **overrides,
    }
    return DEFAULT_CONFIG.format(**values)


def wait_until(predicate, timeout: float = 15, what: str = "condition"):
    """The first truthy value of ``predicate()``, polled; an AssertionError after ``timeout``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.02)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class BotRig:
    url: str
    signer: Signer
    services: Services
    slack: FakeSlack
    config_path: Path
    stop: Callable[[], None] = lambda: None  # stops this bot (HTTP server and services)
    transport: str = "http"
    socket: object = None  # the rig's SocketModeServer, in Socket Mode
    runner: SocketModeRunner | None = None  # the bot's Socket Mode connection manager

    @property
    def store(self):
        return self.services.store

    @property
    def engine(self):
        return self.services.engine

    def wait_until(self, predicate, timeout: float = 15, what: str = "condition"):
        return wait_until(predicate, timeout, what)

    def wait_status(self, op_id: str, *statuses: str, timeout: float = 15):
        return self.wait_until(
            lambda: (op := self.store.operation(op_id)) and op.status in statuses and op,
            timeout,
            f"operation {op_id} to reach {statuses}",
        )


class _ServerThread:
    def __init__(self, server):
        self.server = server
        self.thread = threading.Thread(target=self.server.run, name="bot-http", daemon=True)

    def start(self) -> None:
        self.thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("the bot's HTTP server did not start")
            time.sleep(0.01)

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(10)


class _LogCapture(logging.Handler):
    def __init__(self):
        super().__init__(level=logging.DEBUG)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        text = record.getMessage()
        if record.exc_info:
            text += "\n" + logging.Formatter().formatException(record.exc_info)
        self.lines.append(text)


def assert_no_secrets(secrets_: list[str], fake: FakeSlack, logs: list[str], store) -> None:
    """No database password, token or secret value in any Slack payload, log line or audit
    record (the standard 'Secrets never leave')."""
    payloads = [json.dumps(c.args, default=str) for c in fake.calls]
    payloads += [json.dumps(r, default=str) for r in fake.responses()]
    audit = [json.dumps(asdict(a), default=str) for a in store.audit()] if store else []
    for secret in filter(None, secrets_):
        for where, texts in (
            ("Slack payload", payloads),
            ("log line", logs),
            ("audit record", audit),
        ):
            leaked = [t for t in texts if secret in t]
            assert not leaked, f"a secret leaked into a {where}: {leaked[0][:300]}"


class _SocketModeBot:
    """The bot in Socket Mode as ``rollback-bot serve`` runs it: connect (the app token is
    checked), build the app, start the services, accept envelopes; probes on their own
    listener."""

    def __init__(self, settings: Settings, port: int):
        slack = settings.slack
        self.port = port
        self.runner = SocketModeRunner(slack.app_token.reveal(), api_url=slack.api_url)
        self.probes: _ServerThread | None = None
        self.runner.start()

    def accept(self, app, services: Services) -> None:
        self.runner.accept(app)
        probes = serving.instrument(socket_mode_probes(self.runner), services)
        self.probes = _ServerThread(probe_server(probes, "127.0.0.1", self.port, "warning"))
        self.probes.start()

    def stop(self) -> None:
        if self.probes:
            self.probes.stop()
        self.runner.stop()


def _slack_env(monkeypatch, fake: FakeSlack, transport: str, signing_secret: str) -> None:
    monkeypatch.setenv("SLACK_BOT_TOKEN", fake.token)
    monkeypatch.setenv("SLACK_API_URL", fake.url)
    if transport == "socket_mode":
        # Socket Mode needs no signing secret: Slack authenticates the socket.
        monkeypatch.setenv("SLACK_APP_TOKEN", fake.app_token)
        monkeypatch.delenv("SLACK_SIGNING_SECRET", raising=False)
    else:
        monkeypatch.setenv("SLACK_SIGNING_SECRET", signing_secret)
        monkeypatch.delenv("SLACK_APP_TOKEN", raising=False)


def _serve_http(settings: Settings, port: int) -> tuple[_ServerThread, Services]:
    services = build_services(settings)
    app = build_app(services)
    services.start()
    asgi = RollbackBotASGI(
        app,
        serving.instrument(Probes("http"), services),
        on_refused=services.refused_request,
        signing_secret=settings.slack.signing_secret.reveal(),
    )
    server = _ServerThread(uvicorn_server(asgi, "127.0.0.1", port, "warning"))
    server.start()
    return server, services


def _serve_socket_mode(settings: Settings, port: int) -> tuple[_SocketModeBot, Services]:
    server = _SocketModeBot(settings, port)  # connects first, as serve does
    services = build_services(settings)
    app = build_app(services)
    services.start()
    server.accept(app, services)
    return server, services


def pytest_generate_tests(metafunc) -> None:
    if metafunc.definition.get_closest_marker("both_transports") and (
        "bot_transport" in metafunc.fixturenames
    ):
        metafunc.parametrize("bot_transport", TRANSPORTS, indirect=True)


@pytest.fixture
def bot_transport(request) -> str:
    """http unless a test is marked both_transports (or parametrizes this fixture)."""
    return getattr(request, "param", "http")


@pytest.fixture
def bot_factory(
    fake_slack: FakeSlack, tmp_path: Path, monkeypatch, request, bot_transport, state_db: str
):
    started: list[tuple[_ServerThread, Services]] = []
    running: list[tuple[_ServerThread, Services]] = []
    capture = _LogCapture()
    logging.getLogger().addHandler(capture)
    socket_servers: list = []
    secrets_: list[str] = []

    def make(*, transport: str | None = None, **overrides) -> BotRig:
        transport = transport or bot_transport
        config_path = tmp_path / "rollback.toml"
        config_path.write_text(config_text(state_db=state_db, **overrides))
        signing_secret = secrets.token_hex(16)
        secrets_.append(signing_secret)
        _slack_env(monkeypatch, fake_slack, transport, signing_secret)
        if transport == "socket_mode":
            secrets_.append(fake_slack.app_token)
        settings = Settings(slack=slack_settings_from_env(), config=load_config(config_path))
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        if transport == "socket_mode":
            socket = request.getfixturevalue("socket_mode")  # reset once per test
            socket_servers.append(socket)
            server, services = _serve_socket_mode(settings, port)
            signer = SocketModeSigner(socket, fake_slack)
        else:
            server, services = _serve_http(settings, port)
            socket, signer = None, Signer(f"{url}/slack/events", signing_secret, fake_slack)
        started.append((server, services))

        def stop() -> None:
            # A restart: make(...) again on the same state_db starts the next bot.
            if (server, services) in running:
                running.remove((server, services))
                server.stop()
                services.stop()

        running.append((server, services))
        return BotRig(
            url,
            signer,
            services,
            fake_slack,
            config_path,
            stop,
            transport,
            socket,
            getattr(server, "runner", None),
        )

    yield make
    stores = []
    for server, services in started:
        stores.append(services.store)
        if (server, services) in running:
            server.stop()
            services.stop()
    logging.getLogger().removeHandler(capture)
    if socket_servers:
        # Every envelope the bots were sent got its ack in time, naming its envelope_id.
        socket_servers[0].assert_every_envelope_acked()
    if "pg_server" in request.fixturenames or "://" in state_db:
        secrets_.append(request.getfixturevalue("pg_server").password)
    for store in stores or [None]:
        reopened = Store(store.location) if store else None
        assert_no_secrets(secrets_, fake_slack, capture.lines, reopened)
        if reopened:
            reopened.close()


@pytest.fixture
def bot(bot_factory) -> BotRig:
    return bot_factory()
