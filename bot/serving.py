"""What ``rollback-bot serve`` puts around the Slack app, in both modes: the checks made
before it starts (a missing migrations directory is refused, naming the environment), the
readiness checks behind ``/readyz`` and Prometheus's ``/metrics`` (bot/metrics.py)."""

from __future__ import annotations

import gc
import logging
import sqlite3
import threading
import time
from pathlib import Path

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError, SlackClientError
from slack_sdk.http_retry.builtin_handlers import ConnectionErrorRetryHandler

from bot import metrics
from bot.errors import ConfigError
from bot.probes import Probes
from bot.redaction import Secret
from bot.settings import Config
from bot.store.postgres import writable as postgres_writable

# A probe must answer within a load balancer's few seconds, whatever holds the state file.
STATE_LOCK_WAIT_SECONDS = 2
# auth.test (Tier 4-ish, "special") is asked at most this often; a failure is asked again
# sooner, so readiness comes back as soon as Slack does.
SLACK_AUTH_OK_SECONDS = 60
SLACK_AUTH_FAILED_SECONDS = 5


def check_before_start(settings) -> None:
    """Refuses settings that would only fail in the middle of an incident: a missing
    migrations directory, a bot token Slack refuses, a Slack the bot cannot reach."""
    check_migrations_dirs(settings.config)
    slack_accepts_token(settings)


def slack_accepts_token(settings) -> None:
    """auth.test before anything starts, on a client that logs nothing: the person starting
    the bot sees one line, not slack_sdk's retries."""
    client = WebClient(
        token=settings.slack.bot_token.reveal(),
        base_url=settings.slack.api_url or WebClient.BASE_URL,
        timeout=10,
        logger=quiet_logger(),
        retry_handlers=[ConnectionErrorRetryHandler(max_retry_count=2)],
    )
    try:
        client.auth_test()
    except SlackApiError as error:
        code = error.response.get("error", "auth.test failed")
        raise ConfigError(
            f"Slack rejected SLACK_BOT_TOKEN at start-up ({code}); check the token"
            " and SLACK_API_URL."
        ) from None
    except (SlackClientError, OSError) as error:
        where = settings.slack.api_url or "https://slack.com/api/"
        reason = getattr(error, "reason", None) or error
        raise ConfigError(
            f"cannot reach Slack at {where} ({type(error).__name__}: {reason}): the bot needs"
            " HTTPS to slack.com (check DNS, proxy and egress rules) or a correct SLACK_API_URL."
        ) from None


def settle_heap() -> None:
    """Once everything is loaded, before the first request: what start-up allocated (Bolt,
    boto3, pglast, psycopg, the runbooks) moves out of the cyclic collector's reach.

    Why: a full (generation 2) collection walks every live object; with the modules a
    running bot holds that took 60-85 ms, and one landing in a burst of commands delayed
    the acks queued behind it (bench/results.md, Socket Mode p99). Objects alive at start
    live as long as the process, so the collector loses nothing by skipping them
    (gc.freeze, Python's documentation; refcounting still frees what can be freed).
    """
    gc.collect()
    gc.freeze()


def quiet_logger() -> logging.Logger:
    """For a WebClient whose failures the caller reports itself, in one line."""
    quiet = logging.getLogger("bot.serving.quiet")
    quiet.propagate = False
    quiet.handlers[:] = [logging.NullHandler()]
    return quiet


def check_migrations_dirs(config: Config) -> None:
    for env in config.environments.values():
        directory = env.migrations_dir
        if directory is not None and not Path(directory).is_dir():
            raise ConfigError(
                f"{config.path}: [environments.{env.name}]: migrations_dir {directory} is not a"
                " directory: mount the project's prisma/migrations there or fix the path."
            )


def instrument(probes: Probes, services) -> Probes:
    """/readyz: the state database takes writes, Slack accepts the bot token, the scheduler
    runs; /metrics: the store's counts, the process's counters and step durations."""
    services.engine.subscribe(metrics.step_timer(services.store))
    probes.add("state_db", lambda: state_db_writable(services.store.location))
    probes.add("slack_auth", SlackAuth(services.settings).check)
    probes.add("scheduler", services.scheduler.status)
    registry = metrics.registry_for(services.store)
    probes.metrics = lambda: (metrics.CONTENT_TYPE, metrics.exposition(registry))
    return probes


def state_db_writable(path: Path | Secret) -> dict:
    """Takes the state file's write lock on a connection of its own and lets it go: a
    read-only file, a full lock or a missing file shows here, not at the next Approve.
    (A PostgreSQL state: bot/store/postgres.py writable.)"""
    if isinstance(path, Secret):
        return postgres_writable(path)
    try:
        conn = sqlite3.connect(
            f"{Path(path).resolve().as_uri()}?mode=rw", uri=True, timeout=STATE_LOCK_WAIT_SECONDS
        )
        try:
            conn.execute("BEGIN IMMEDIATE")
            conn.execute("ROLLBACK")
        finally:
            conn.close()
    except sqlite3.Error as error:
        return {"ok": False, "path": str(path), "error": str(error)}
    return {"ok": True, "path": str(path)}


class SlackAuth:
    """auth.test with the bot token, remembered for a while (a probe every few seconds must
    not become Slack traffic every few seconds)."""

    def __init__(self, settings):
        self._client = WebClient(
            token=settings.slack.bot_token.reveal(),
            base_url=settings.slack.api_url or WebClient.BASE_URL,
            timeout=5,
            retry_handlers=[metrics.SlackCallCounter()],
        )
        self._lock = threading.Lock()
        self._answer: dict = {}
        self._until = 0.0

    def check(self) -> dict:
        with self._lock:
            if time.monotonic() >= self._until:
                self._answer = self._ask()
                keep = SLACK_AUTH_OK_SECONDS if self._answer["ok"] else SLACK_AUTH_FAILED_SECONDS
                self._until = time.monotonic() + keep
            return dict(self._answer)

    def _ask(self) -> dict:
        try:
            response = self._client.auth_test()
        except SlackApiError as error:
            return {"ok": False, "error": error.response.get("error", "auth.test failed")}
        except (SlackClientError, OSError) as error:
            return {"ok": False, "error": f"cannot reach Slack ({type(error).__name__})"}
        return {"ok": True, "bot_user": response.get("user_id")}
