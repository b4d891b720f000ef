"""App Home: active operations and recent history (app_home_opened -> views.publish)."""

from __future__ import annotations

from slack_bolt import App

from bot.slack import views
from handlers.error_reporter import reports_errors


def register(app: App, services) -> None:
    @app.event("app_home_opened")
    @reports_errors
    def on_home_opened(event: dict, client) -> None:
        if event.get("tab", "home") != "home":
            return
        store = services.store
        active = store.operations(active=True, limit=20)
        recent = store.operations(active=False, limit=15)
        approvers = store.approvers_by_operation([o.id for o in active + recent])
        client.views_publish(user_id=event["user"], view=views.home_view(active, recent, approvers))
