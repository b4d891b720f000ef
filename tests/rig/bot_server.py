"""The bot itself, served for real: the app factory builds it from a config file and the
environment, exactly as ``rollback-bot serve`` does, and uvicorn serves it on 127.0.0.1.
Tests talk to it only through signed HTTP requests (``bot.signer``)."""

from __future__ import annotations

import secrets
import socket
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from bot.app import Services, build_app, build_services
from bot.server import RollbackBotASGI, uvicorn_server
from bot.settings import Settings, load_config, slack_settings_from_env
from tests.rig.fake_slack import FakeSlack
from tests.rig.signer import Signer

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

    @property
    def store(self):
        return self.services.store

    @property
    def engine(self):
        return self.services.engine

    def wait_until(self, predicate, timeout: float = 15, what: str = "condition"):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            value = predicate()
            if value:
                return value
            time.sleep(0.02)
        raise AssertionError(f"timed out after {timeout}s waiting for {what}")

    def wait_status(self, op_id: str, *statuses: str, timeout: float = 15):
        return self.wait_until(
            lambda: (op := self.store.operation(op_id)) and op.status in statuses and op,
            timeout,
            f"operation {op_id} to reach {statuses}",
        )


class _ServerThread:
    def __init__(self, app, port: int):
        self.server = uvicorn_server(RollbackBotASGI(app), "127.0.0.1", port, "warning")
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


@pytest.fixture
def bot_factory(fake_slack: FakeSlack, tmp_path: Path, monkeypatch):
    started: list[tuple[_ServerThread, Services]] = []

    def make(**overrides) -> BotRig:
        values = {
            "state_db": str(tmp_path / "state.db"),
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
        }
        values.update(overrides)
        config_path = tmp_path / "rollback.toml"
        config_path.write_text(DEFAULT_CONFIG.format(**values))
        signing_secret = secrets.token_hex(16)
        monkeypatch.setenv("SLACK_BOT_TOKEN", fake_slack.token)
        monkeypatch.setenv("SLACK_SIGNING_SECRET", signing_secret)
        monkeypatch.setenv("SLACK_API_URL", fake_slack.url)
        monkeypatch.delenv("SLACK_APP_TOKEN", raising=False)
        settings = Settings(slack=slack_settings_from_env(), config=load_config(config_path))
        services = build_services(settings)
        app = build_app(services)
        services.start()
        port = free_port()
        server = _ServerThread(app, port)
        server.start()
        started.append((server, services))
        url = f"http://127.0.0.1:{port}"
        return BotRig(
            url,
            Signer(f"{url}/slack/events", signing_secret, fake_slack),
            services,
            fake_slack,
            config_path,
        )

    yield make
    for server, services in started:
        server.stop()
        services.stop()


@pytest.fixture
def bot(bot_factory) -> BotRig:
    return bot_factory()
