"""The real app in this process, served by uvicorn on 127.0.0.1 against a fake Slack, as
tests/rig/bot_server.py builds it (for benchmarks that count calls rather than time acks)."""

from __future__ import annotations

import os
import secrets
import threading
import time
from pathlib import Path

from bot.app import build_app, build_services
from bot.server import RollbackBotASGI, uvicorn_server
from bot.settings import Settings, load_config, slack_settings_from_env
from tests.rig.bot_server import free_port, wait_until
from tests.rig.signer import Signer


class InProcessBot:
    def __init__(self, slack, config_text: str, tmp: Path, env: dict | None = None):
        config = tmp / "rollback.toml"
        config.write_text(config_text)
        secret = secrets.token_hex(16)
        os.environ.update(
            {
                "SLACK_BOT_TOKEN": slack.token,
                "SLACK_SIGNING_SECRET": secret,
                "SLACK_API_URL": slack.url,
                **(env or {}),
            }
        )
        os.environ.pop("SLACK_APP_TOKEN", None)
        settings = Settings(slack=slack_settings_from_env(), config=load_config(config))
        self.services = build_services(settings)
        app = build_app(self.services)
        self.services.start()
        port = free_port()
        self.server = uvicorn_server(
            RollbackBotASGI(app, on_refused=self.services.refused_request),
            "127.0.0.1",
            port,
            "warning",
        )
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.thread.start()
        while not self.server.started:
            time.sleep(0.01)
        self.signer = Signer(f"http://127.0.0.1:{port}/slack/events", secret, slack)
        self.slack = slack

    def wait_until(self, predicate, timeout: float = 60, what: str = "condition"):
        return wait_until(predicate, timeout, what)

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(10)
        self.services.stop()


def submit_checklist(signer, slack, view_id: str, user: str) -> None:
    """Tick every item a person ticks in the before-checklist modal, and submit it."""
    from bot.slack.ids import Block

    view = slack.views()[view_id]
    blocks = [b for b in view["blocks"] if b.get("block_id", "").startswith(Block.CHECKLIST_ITEMS)]
    values = {b["block_id"]: [o["value"] for o in b["element"]["options"]] for b in blocks}
    response = signer.submit_view(view_id, user=user, values=values)
    if response.status != 200:
        raise RuntimeError(f"checklist submission: HTTP {response.status} {response.body}")
