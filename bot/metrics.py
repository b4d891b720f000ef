"""Prometheus metrics on ``GET /metrics`` (both modes), with the standard prometheus-client.

Counters and histograms are process-wide (AWS clients are built deep inside runbook steps;
Slack calls go through every WebClient the bot makes); each served bot has its own registry
holding them plus a collector that reads the store at scrape time, so operation and
approval counts are the store's truth, across restarts, not this process's memory.

- ``rollback_bot_operations{runbook,status}``: operations in the store, by runbook and status
- ``rollback_bot_approvals_pending``: approvals waiting for a decision
- ``rollback_bot_step_duration_seconds{runbook,step,outcome}``: steps that ended
- ``rollback_bot_slack_api_calls_total{method,outcome}``: every HTTP attempt at the Web API
  (outcome ``ok``, Slack's error code, ``http_<status>`` or ``connection_error``)
- ``rollback_bot_slack_retries_total{method}``, ``rollback_bot_slack_rate_limited_total{method}``
- ``rollback_bot_aws_call_errors_total{service,operation,code}``: AWS calls that failed
- ``rollback_bot_requests_refused_total{reason}``: HTTP requests refused before Bolt (also
  one audit row per minute that had any, bot/server.py)
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from datetime import datetime

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from prometheus_client.registry import Collector
from slack_sdk.http_retry import RetryHandler

from bot.engine.model import Event
from bot.store import Store
from bot.store.records import EventKind

log = logging.getLogger(__name__)

METRICS_PATH = "/metrics"
CONTENT_TYPE = CONTENT_TYPE_LATEST

# Runbook steps wait on RDS for up to an hour; the buckets reach that far.
_STEP_BUCKETS = (0.1, 0.5, 1, 2, 5, 10, 30, 60, 120, 300, 600, 1800, 3600, float("inf"))

STEP_DURATION = Histogram(
    "rollback_bot_step_duration_seconds",
    "How long runbook steps took, by runbook, step and outcome.",
    ["runbook", "step", "outcome"],
    buckets=_STEP_BUCKETS,
    registry=None,
)
SLACK_CALLS = Counter(
    "rollback_bot_slack_api_calls",
    "Slack Web API HTTP attempts, by method and outcome.",
    ["method", "outcome"],
    registry=None,
)
SLACK_RETRIES = Counter(
    "rollback_bot_slack_retries",
    "Slack Web API calls made again after a 429, a 5xx or a dropped connection.",
    ["method"],
    registry=None,
)
SLACK_RATE_LIMITED = Counter(
    "rollback_bot_slack_rate_limited",
    "Slack Web API answers 429 (rate limited).",
    ["method"],
    registry=None,
)
AWS_ERRORS = Counter(
    "rollback_bot_aws_call_errors",
    "AWS API calls that failed, by service, operation and error code.",
    ["service", "operation", "code"],
    registry=None,
)
REQUESTS_REFUSED = Counter(
    "rollback_bot_requests_refused",
    "HTTP requests refused before Bolt (bad or missing signature, stale timestamp), by reason.",
    ["reason"],
    registry=None,
)
_PROCESS_WIDE = (
    STEP_DURATION,
    SLACK_CALLS,
    SLACK_RETRIES,
    SLACK_RATE_LIMITED,
    AWS_ERRORS,
    REQUESTS_REFUSED,
)


class StoreCollector(Collector):
    """Operation and approval counts, read from the store at each scrape."""

    def __init__(self, store: Store):
        self.store = store

    def collect(self) -> Iterator[Metric]:
        operations = GaugeMetricFamily(
            "rollback_bot_operations",
            "Operations in the state store, by runbook and status.",
            labels=["runbook", "status"],
        )
        for runbook, status, count in self.store.operation_counts():
            operations.add_metric([runbook, status], count)
        yield operations
        yield GaugeMetricFamily(
            "rollback_bot_approvals_pending",
            "Approvals waiting for a decision.",
            value=self.store.pending_approval_count(),
        )


def registry_for(store: Store) -> CollectorRegistry:
    registry = CollectorRegistry(auto_describe=True)
    for metric in _PROCESS_WIDE:
        registry.register(metric)
    registry.register(StoreCollector(store))
    return registry


def exposition(registry: CollectorRegistry) -> bytes:
    return generate_latest(registry)


# --- step durations: an engine subscriber ---------------------------------------------

_STEP_ENDS = {
    EventKind.STEP_SUCCEEDED: "succeeded",
    EventKind.STEP_FAILED: "failed",
    EventKind.STEP_SKIPPED: "skipped",
}


def step_timer(store: Store):
    """An engine listener observing each step's duration when it ends (from the store's
    started_at/finished_at, so a step resumed after a restart counts from its claim)."""

    def on_event(event: Event) -> None:
        outcome = _STEP_ENDS.get(event.kind)
        if outcome is None or event.step_id is None:
            return
        step, op = (
            store.step(event.operation_id, event.step_id),
            store.operation(event.operation_id),
        )
        if not (step and op and step.started_at and step.finished_at):
            return
        seconds = _seconds_between(step.started_at, step.finished_at)
        STEP_DURATION.labels(op.runbook, event.step_id, outcome).observe(max(seconds, 0.0))

    return on_event


def _seconds_between(start: str, end: str) -> float:
    parse = datetime.fromisoformat
    return (parse(end.replace("Z", "+00:00")) - parse(start.replace("Z", "+00:00"))).total_seconds()


# --- Slack: a retry handler that never retries, only counts --------------------------


class SlackCallCounter(RetryHandler):
    """First in the WebClient's retry handlers, so slack_sdk shows it every HTTP answer
    (and every connection error) before a real handler decides to retry. It never asks for
    a retry itself."""

    def can_retry(self, *, state, request, response=None, error=None) -> bool:
        # can_retry, not _can_retry: the base class stops calling _can_retry after
        # max_retry_count attempts, and every attempt must be counted.
        method = request.url.rstrip("/").rsplit("/", 1)[-1]
        if state.current_attempt > 0:
            SLACK_RETRIES.labels(method).inc()
        SLACK_CALLS.labels(method, _outcome(response)).inc()
        if response is not None and response.status_code == 429:
            SLACK_RATE_LIMITED.labels(method).inc()
        return False


def _outcome(response) -> str:
    if response is None:
        return "connection_error"
    if response.status_code != 200:
        return f"http_{response.status_code}"
    body = response.body or {}
    if body.get("ok", True):
        return "ok"
    return str(body.get("error", "error"))


# --- AWS: botocore's event hooks on every client the bot builds ------------------------


def watch_aws(client) -> None:
    """Counts the client's failed calls (AWS's error code, or the exception's name when
    the call never got an answer)."""
    service = client.meta.service_model.service_name

    def after_call(http_response, parsed, model, **_) -> None:
        if http_response.status_code >= 400:
            code = (parsed or {}).get("Error", {}).get("Code", f"http_{http_response.status_code}")
            AWS_ERRORS.labels(service, model.name, code).inc()

    def after_call_error(exception, model=None, **_) -> None:
        operation = model.name if model is not None else "unknown"
        AWS_ERRORS.labels(service, operation, type(exception).__name__).inc()

    client.meta.events.register("after-call", after_call)
    client.meta.events.register("after-call-error", after_call_error)
