"""HTTP mode: Bolt's ASGI adapter under uvicorn, plus GET /healthz.

Bolt's adapter calls the (synchronous) App.dispatch on the event loop; we run it in a
worker thread instead, so one slow request never delays another's 3-second ack.
"""

from __future__ import annotations

import asyncio
import json

import uvicorn
from slack_bolt import App
from slack_bolt.adapter.asgi import SlackRequestHandler
from slack_bolt.adapter.asgi.http_request import AsgiHttpRequest
from slack_bolt.adapter.asgi.http_response import AsgiHttpResponse
from slack_bolt.request import BoltRequest
from slack_bolt.response import BoltResponse

EVENTS_PATH = "/slack/events"
HEALTH_PATH = "/healthz"


class RollbackBotASGI(SlackRequestHandler):
    def __init__(self, app: App, health=lambda: {"ok": True}):
        super().__init__(app, path=EVENTS_PATH)
        self.health = health

    async def dispatch(self, request: AsgiHttpRequest) -> BoltResponse:
        bolt_request = BoltRequest(
            body=await request.get_raw_body(),
            query=request.query_string,
            headers=request.get_headers(),
        )
        return await asyncio.to_thread(self.app.dispatch, bolt_request)

    async def _get_http_response(self, method, path, request) -> AsgiHttpResponse:
        if path == HEALTH_PATH and method in ("GET", "HEAD"):
            body = self.health()
            return AsgiHttpResponse(
                status=200 if body.get("ok") else 503,
                headers={"content-type": ["application/json"]},
                body=json.dumps(body),
            )
        return await super()._get_http_response(method, path, request)


def uvicorn_server(asgi, host: str, port: int, log_level: str = "info") -> uvicorn.Server:
    config = uvicorn.Config(
        asgi, host=host, port=port, log_level=log_level, lifespan="on", access_log=False
    )
    return uvicorn.Server(config)
