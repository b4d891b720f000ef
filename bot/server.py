"""HTTP mode: Bolt's ASGI adapter under uvicorn, plus /healthz, /readyz and /metrics
(bot/probes.py).

Bolt's adapter calls the (synchronous) App.dispatch on the event loop; we run it in a
worker thread instead, so one slow request never delays another's 3-second ack.
"""

from __future__ import annotations

import asyncio

from slack_bolt import App
from slack_bolt.adapter.asgi import SlackRequestHandler
from slack_bolt.adapter.asgi.http_request import AsgiHttpRequest
from slack_bolt.adapter.asgi.http_response import AsgiHttpResponse
from slack_bolt.request import BoltRequest
from slack_bolt.response import BoltResponse

from bot import ack_first
from bot.probes import HEALTH_PATH, Probes, uvicorn_server

EVENTS_PATH = "/slack/events"
__all__ = ["EVENTS_PATH", "HEALTH_PATH", "RollbackBotASGI", "uvicorn_server"]


class RollbackBotASGI(SlackRequestHandler):
    def __init__(self, app: App, probes: Probes | None = None, on_refused=None):
        super().__init__(app, path=EVENTS_PATH)
        self.probes = probes or Probes("http")
        self.on_refused = on_refused

    async def dispatch(self, request: AsgiHttpRequest) -> BoltResponse:
        bolt_request = BoltRequest(
            body=await request.get_raw_body(),
            query=request.query_string,
            headers=request.get_headers(),
        )
        with ack_first.awaiting_ack():
            response = await asyncio.to_thread(self.app.dispatch, bolt_request)
        if response.status == 401 and self.on_refused and response.body != "replayed request":
            # Bolt refused the signature or the timestamp; keep a record of the attempt.
            await asyncio.to_thread(self.on_refused, "invalid signature or stale timestamp")
        return response

    async def _get_http_response(self, method, path, request) -> AsgiHttpResponse:
        probe = await asyncio.to_thread(self.probes.respond, method, path)
        if probe is not None:
            status, content_type, body = probe
            return AsgiHttpResponse(
                status=status, headers={"content-type": [content_type]}, body=body.decode()
            )
        return await super()._get_http_response(method, path, request)
