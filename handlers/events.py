"""Events API plumbing: Slack retries an event up to 3 times (X-Slack-Retry-Num); the
store remembers event ids so each is handled once."""

from __future__ import annotations

from slack_bolt import App, BoltResponse

from bot.socket_mode import redelivery_key
from bot.store.records import EventKind


def _actor(body: dict) -> str:
    return body.get("user_id") or (body.get("user") or {}).get("id") or "unknown"


def register(app: App, services) -> None:
    @app.middleware
    def refuse_replays(request, body: dict, next) -> BoltResponse | None:
        """A signed request is accepted once: within Slack's 5-minute timestamp window a
        captured request could otherwise be sent again (Bolt checks the signature and the
        timestamp, not replays). Runs after Bolt's signature check."""
        signature = (request.headers.get("x-slack-signature") or [None])[0]
        if signature and not services.store.first_time_seen(f"sig:{signature}"):
            services.store.append_audit(
                None,
                _actor(body),
                EventKind.REQUEST_REFUSED,
                "replayed request (signature already used)",
            )
            return BoltResponse(status=401, body="replayed request")
        return next()

    @app.middleware
    def refuse_redeliveries(request, body: dict, next) -> BoltResponse | None:
        """Socket Mode's replay: an envelope Slack delivers again (it was not acked in time,
        or its connection went away) is acknowledged and not run twice. Recognised by what
        the payload keeps (bot/socket_mode.py redelivery_key), not by retry_attempt."""
        key = redelivery_key(body) if request.mode == "socket_mode" else None
        if key and not services.store.first_time_seen(key):
            services.store.append_audit(
                None,
                _actor(body),
                EventKind.REDELIVERY_IGNORED,
                "redelivered envelope (already handled)",
            )
            return BoltResponse(status=200, body="")
        return next()

    @app.middleware
    def deduplicate_events(body: dict, next) -> BoltResponse | None:
        event_id = body.get("event_id") if body.get("type") == "event_callback" else None
        if event_id and not services.store.first_time_seen(event_id):
            return BoltResponse(status=200, body="")
        return next()
