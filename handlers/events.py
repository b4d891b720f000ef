"""Events API plumbing: Slack retries an event up to 3 times (X-Slack-Retry-Num); the
store remembers event ids so each is handled once."""

from __future__ import annotations

from slack_bolt import App, BoltResponse


def register(app: App, services) -> None:
    @app.middleware
    def deduplicate_events(body: dict, next) -> BoltResponse | None:
        event_id = body.get("event_id") if body.get("type") == "event_callback" else None
        if event_id and not services.store.first_time_seen(event_id):
            return BoltResponse(status=200, body="")
        return next()
