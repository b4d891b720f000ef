"""The Slack front end's factory: the core (bot/core.py) plus Slack's output side (the incident
log, the outbox, the user-group directory), and the Bolt app with every listener registered."""

from __future__ import annotations

import logging
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from slack_bolt import App
from slack_sdk import WebClient
from slack_sdk.http_retry.builtin_handlers import (
    ConnectionErrorRetryHandler,
    RateLimitErrorRetryHandler,
)

import commands
import handlers
from bot.core import Core, build_core
from bot.engine.engine import Engine
from bot.metrics import SlackCallCounter
from bot.redaction import scrub_payload
from bot.scheduler import Scheduler
from bot.settings import Config, Settings
from bot.slack.directory import Directory
from bot.slack.incident import IncidentLog
from bot.slack.outbox import Outbox
from bot.store import Store
from bot.store.records import EventKind, JobKind
from handlers.error_reporter import unwrapped_listeners

log = logging.getLogger(__name__)

LISTENER_THREADS = 64


@dataclass
class Services:
    """The core (bot/core.py) plus the Slack front end's output side."""

    settings: Settings
    core: Core
    client: WebClient
    outbox: Outbox
    directory: Directory
    incident: IncidentLog

    @property
    def config(self) -> Config:
        return self.core.config

    @property
    def store(self) -> Store:
        return self.core.store

    @property
    def engine(self) -> Engine:
        return self.core.engine

    @property
    def scheduler(self) -> Scheduler:
        return self.core.scheduler

    def start(self) -> None:
        self.core.start()

    def refused_request(self, reason: str) -> None:
        """An HTTP request that failed Slack's signature check: audited, nothing else."""
        self.store.append_audit(None, "unknown", EventKind.REQUEST_REFUSED, reason)

    def stop(self) -> None:
        self.core.stop(flush=self.incident.close)


class ScrubbingWebClient(WebClient):
    """Every Web API call's arguments scrubbed (bot/redaction.py) on the way out: the last
    line of defence for a password in a message, a modal or a file."""

    def api_call(self, api_method, *, json=None, data=None, params=None, **kwargs):
        return super().api_call(
            api_method,
            json=_scrubbed(json),
            data=_scrubbed(data),
            params=_scrubbed(params),
            **kwargs,
        )


def _scrubbed(arguments):
    """Every argument but ``token`` (the credential itself, sent where it belongs)."""
    if not isinstance(arguments, dict) or not arguments:
        return arguments
    clean = scrub_payload({k: v for k, v in arguments.items() if k != "token"})
    if "token" in arguments:
        clean["token"] = arguments["token"]
    return clean


def web_client(settings: Settings) -> WebClient:
    # One quick retry on 429 (views.open must land within the trigger's 3 s) and on a
    # dropped connection; longer waits are the Outbox's job (bot/slack/outbox.py).
    kwargs = {
        "token": settings.slack.bot_token.reveal(),
        "retry_handlers": [
            SlackCallCounter(),  # first: it sees every answer, counts it, never retries
            ConnectionErrorRetryHandler(),
            RateLimitErrorRetryHandler(1),
        ],
    }
    if settings.slack.api_url:
        kwargs["base_url"] = settings.slack.api_url
    return ScrubbingWebClient(**kwargs)


def build_services(settings: Settings) -> Services:
    client = web_client(settings)
    directory = Directory(client, settings.config.usergroup_cache_seconds)
    core = build_core(settings.config, members_of=directory.members_of)
    outbox = Outbox(client)
    incident = IncidentLog(core.engine, core.store, core.config, outbox, directory)
    core.engine.subscribe(incident)
    # Slack's own scheduled work: archiving the channels the bot made.
    incident.channels.sync = core.scheduler.sync
    core.scheduler.handle(JobKind.ARCHIVE_CHANNEL, incident.channels.archive_due)
    return Services(settings, core, client, outbox, directory, incident)


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
    unwrapped = unwrapped_listeners(app)
    if unwrapped:
        raise TypeError(f"listeners not wrapped in reports_errors: {', '.join(unwrapped)}")
    return app
