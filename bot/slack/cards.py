"""Renderers for the rich results steps publish with ``ctx.card(kind, title, data)``.

A runbook module registers how its cards look in Slack:

    @card_renderer(CardKind.SQL_DRY_RUN)
    def dry_run_card(op, title, data) -> dict:   # {"text": ..., "blocks": [...]}

Cards are posted in the operation's incident thread. A kind registered with
``notify=True`` is posted in the environment's notify channel (#engineering) instead, for
what the whole team must know (traffic switched to another database). A kind with no
renderer is shown as its title (never dropped).
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable

from bot.slack.blocks import escape, section
from bot.store.records import CardKind, Operation

Renderer = Callable[[Operation, str, dict], dict]
RENDERERS: dict[str, Renderer] = {}
NOTIFY_KINDS: set[str] = set()
_loaded = False


def card_renderer(kind: CardKind, *, notify: bool = False):
    def register(fn: Renderer) -> Renderer:
        RENDERERS[kind] = fn
        if notify:
            NOTIFY_KINDS.add(kind)
        return fn

    return register


def load_renderers() -> None:
    """Imports every bot/slack/*_views.py module, which registers its renderers."""
    import bot.slack

    global _loaded
    for module in pkgutil.iter_modules(bot.slack.__path__):
        if module.name.endswith("_views"):
            importlib.import_module(f"bot.slack.{module.name}")
    _loaded = True


def is_notify_card(kind: str) -> bool:
    if not _loaded:
        load_renderers()
    return kind in NOTIFY_KINDS


def render_card(op: Operation, kind: str, title: str, data: dict) -> dict:
    """Every string a step put in the card (names, values, a database's errors, SQL) is
    escaped for mrkdwn before a renderer lays it out, so no renderer can forget to."""
    if not _loaded:
        load_renderers()
    renderer = RENDERERS.get(kind)
    title = escape(title)
    if renderer is None:
        return {"text": title, "blocks": [section(title)]}
    return renderer(op, title, escaped(data))


def escaped(value):
    """Every string in ``value`` (a card's data, however nested) escaped for mrkdwn."""
    if isinstance(value, str):
        return escape(value)
    if isinstance(value, dict):
        return {k: escaped(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [escaped(v) for v in value]
    return value
