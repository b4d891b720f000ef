"""Buttons, modal submissions, App Home and events; one ``register(app)``."""

from __future__ import annotations

from typing import TYPE_CHECKING

from handlers import (
    app_home,
    approvals,
    check,
    checklists,
    decisions,
    events,
    operations,
    pitr,
    resolve,
    revert,
    sql,
)

if TYPE_CHECKING:
    from slack_bolt import App

    from bot.app import Services


def register(app: App, services: Services) -> None:
    for module in (
        events,
        app_home,
        approvals,
        checklists,
        decisions,
        operations,
        resolve,
        revert,
        sql,
        pitr,
        check,
    ):
        module.register(app, services)
