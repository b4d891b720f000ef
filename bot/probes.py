"""``GET /healthz`` and ``GET /readyz`` for both modes: one registry of checks, answered by
bot/server.py in HTTP mode and by a small uvicorn listener of its own in Socket Mode (where
no other HTTP port is open for a load balancer or Kubernetes to probe).

- ``/healthz``: liveness. 200 while every liveness check passes (restarting the process
  would not help otherwise), 503 when one fails.
- ``/readyz``: readiness. 200 only when every check passes, liveness and readiness alike;
  503 otherwise, so traffic (or a rollout) waits for a bot that can serve.

- ``/metrics``: Prometheus's text format (bot/metrics.py), when ``probes.metrics`` is set.

Checks run in a worker thread (one reads the state database), never on the event loop.
A check is a function returning a dict with at least ``"ok": bool``; its other keys are
shown as they are. Add one with ``probes.add("name", check)`` (readiness) or
``probes.add("name", check, liveness=True)``. Socket Mode adds ``socket_mode`` (a
connection to Slack that said hello) and ``socket_mode_supervisor`` (the thread that keeps
one open is alive).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable

import uvicorn

HEALTH_PATH = "/healthz"
READY_PATH = "/readyz"
METRICS_PATH = "/metrics"

Check = Callable[[], dict]


class Probes:
    def __init__(self, mode: str):
        self.mode = mode  # "http" or "socket_mode": shown in every answer
        self._checks: dict[str, tuple[Check, bool]] = {}
        # (content type, body) of /metrics; None: no /metrics (bot/metrics.py sets it).
        self.metrics: Callable[[], tuple[str, bytes]] | None = None

    def add(self, name: str, check: Check, *, liveness: bool = False) -> None:
        self._checks[name] = (check, liveness)

    def health(self) -> tuple[int, dict]:
        return self._answer(liveness_only=True)

    def ready(self) -> tuple[int, dict]:
        return self._answer(liveness_only=False)

    def answer(self, method: str, path: str) -> tuple[int, dict] | None:
        """(status, body) for a probe request; None when the path is not a probe."""
        if method not in ("GET", "HEAD"):
            return None
        if path == HEALTH_PATH:
            return self.health()
        if path == READY_PATH:
            return self.ready()
        return None

    def respond(self, method: str, path: str) -> tuple[int, str, bytes] | None:
        """(status, content type, body) for a probe or /metrics; None for any other path."""
        if method in ("GET", "HEAD") and path == METRICS_PATH and self.metrics is not None:
            content_type, body = self.metrics()
            return 200, content_type, body
        found = self.answer(method, path)
        if found is None:
            return None
        status, body = found
        return status, "application/json", json.dumps(body).encode()

    def _answer(self, *, liveness_only: bool) -> tuple[int, dict]:
        results = {
            name: check()
            for name, (check, liveness) in self._checks.items()
            if liveness or not liveness_only
        }
        ok = all(result.get("ok") for result in results.values())
        return (200 if ok else 503), {"ok": ok, "mode": self.mode, "checks": results}


class ProbeApp:
    """An ASGI app that answers the probes and nothing else (Socket Mode's listener)."""

    def __init__(self, probes: Probes):
        self.probes = probes

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] == "lifespan":
            await _lifespan(receive, send)
            return
        if scope["type"] != "http":
            return
        found = await asyncio.to_thread(self.probes.respond, scope["method"], scope["path"])
        status, content_type, payload = found or (404, "application/json", _NOT_FOUND)
        headers = [
            (b"content-type", content_type.encode()),
            (b"content-length", b"%d" % len(payload)),
        ]
        await send({"type": "http.response.start", "status": status, "headers": headers})
        if scope["method"] == "HEAD":
            payload = b""
        await send({"type": "http.response.body", "body": payload})


_NOT_FOUND = json.dumps({"ok": False, "error": "not found"}).encode()


async def _lifespan(receive, send) -> None:
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return


def probe_server(probes: Probes, host: str, port: int, log_level: str = "info") -> uvicorn.Server:
    return uvicorn_server(ProbeApp(probes), host, port, log_level)


def uvicorn_server(
    asgi, host: str, port: int, log_level: str = "info", **options
) -> uvicorn.Server:
    """An ASGI app under uvicorn (HTTP mode's app, or the probes alone in Socket Mode);
    ``options``: more of uvicorn.Config's (bot/server.py's limits and timeouts)."""
    # log_config=None: uvicorn's lines go through the root logger (bot/logs.py: the secret
    # filter and --log-format) instead of handlers of its own.
    config = uvicorn.Config(
        asgi,
        host=host,
        port=port,
        log_level=log_level,
        lifespan="on",
        access_log=False,
        log_config=None,
        **options,
    )
    return uvicorn.Server(config)
