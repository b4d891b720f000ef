"""The app factory: builds the services and the Bolt app, and registers the listeners."""

from __future__ import annotations

import logging
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import timedelta

from slack_bolt import App
from slack_sdk import WebClient
from slack_sdk.http_retry.builtin_handlers import (
    ConnectionErrorRetryHandler,
    RateLimitErrorRetryHandler,
)

import commands
import handlers
from bot.clock import utcnow
from bot.engine.engine import Engine
from bot.runbooks import RUNBOOKS
from bot.runbooks.pitr import cleanup_schedule as pitr_cleanup
from bot.scheduler import Scheduler
from bot.settings import Config, Settings
from bot.slack.directory import Directory
from bot.slack.incident import IncidentLog
from bot.slack.outbox import Outbox
from bot.store import Store

log = logging.getLogger(__name__)

LISTENER_THREADS = 64


@dataclass
class Services:
    settings: Settings
    config: Config
    store: Store
    engine: Engine
    client: WebClient
    outbox: Outbox
    directory: Directory
    incident: IncidentLog
    scheduler: Scheduler

    def start(self) -> None:
        """Rebuilds what was in flight from the store: jobs first, then operations."""
        self.store.forget_seen_before(utcnow() - timedelta(days=1))
        self.scheduler.start()
        self.engine.recover()

    def refused_request(self, reason: str) -> None:
        """An HTTP request that failed Slack's signature check: audited, nothing else."""
        self.store.append_audit(None, "unknown", "request_refused", reason)

    def stop(self) -> None:
        self.scheduler.shutdown()
        self.engine.shutdown()
        self.incident.close()
        self.store.close()


def web_client(settings: Settings) -> WebClient:
    # One quick retry on 429 (views.open must land within the trigger's 3 s) and on a
    # dropped connection; longer waits are the Outbox's job (bot/slack/outbox.py).
    kwargs = {
        "token": settings.slack.bot_token.reveal(),
        "retry_handlers": [ConnectionErrorRetryHandler(), RateLimitErrorRetryHandler(1)],
    }
    if settings.slack.api_url:
        kwargs["base_url"] = settings.slack.api_url
    return WebClient(**kwargs)


def build_services(settings: Settings) -> Services:
    config = settings.config
    store = Store(config.state_db)
    client = web_client(settings)
    directory = Directory(client, config.usergroup_cache_seconds)
    engine = Engine(store, config, RUNBOOKS, members_of=directory.members_of)
    outbox = Outbox(client)
    incident = IncidentLog(engine, store, config, outbox, directory)
    scheduler = Scheduler(
        store,
        {
            "approval_expiry": lambda op_id, payload: engine.expire_approval(
                payload["approval_id"]
            ),
            "after_checklist_reminder": lambda op_id, payload: engine.remind_after_checklist(op_id),
            pitr_cleanup.JOB_KIND: lambda op_id, payload: pitr_cleanup.cleanup_due(engine, payload),
        },
    )
    engine.subscribe(incident)
    engine.subscribe(scheduler.on_event)
    engine.subscribe(pitr_cleanup.after_switch(engine, scheduler.sync))
    return Services(settings, config, store, engine, client, outbox, directory, incident, scheduler)


def build_app(services: Services, *, token_verification: bool = True) -> App:
    slack = services.settings.slack
    app = App(
        client=services.client,
        signing_secret=slack.signing_secret.reveal() or None,
        # auth.test at start-up catches a wrong token before the first command does.
        token_verification_enabled=token_verification,
        # Slack allows 3 s to acknowledge; listeners ack first and work afterwards.
        process_before_response=False,
        # Bolt acks from the listener's thread, and its default pool has 5: with more
        # concurrent commands than that, an ack waited for another command's work (bench/).
        listener_executor=ThreadPoolExecutor(
            max_workers=LISTENER_THREADS, thread_name_prefix="bolt"
        ),
    )
    commands.register(app, services)
    handlers.register(app, services)
    return app
