"""manifest.yml declares exactly what the code registers: slash commands and events."""

from __future__ import annotations

from pathlib import Path

import yaml

import commands
import handlers

ROOT = Path(__file__).resolve().parent.parent


class RecordingApp:
    """Stands in for Bolt's App at registration time only, to list what the code
    registers; the scenario tests run the real App."""

    def __init__(self):
        self.commands: set[str] = set()
        self.events: set[str] = set()

    def _decorator(self, *args, **kwargs):
        return lambda fn: fn

    def command(self, name, *a, **kw):
        self.commands.add(name)
        return self._decorator()

    def event(self, name, *a, **kw):
        self.events.add(name if isinstance(name, str) else name["type"])
        return self._decorator()

    def action(self, *a, **kw):
        return self._decorator()

    view = action

    def middleware(self, fn):
        return fn

    def error(self, fn):
        return fn


def registered() -> RecordingApp:
    app = RecordingApp()
    commands.register(app, services=None)
    handlers.register(app, services=_NoServices())
    return app


class _NoServices:
    store = engine = config = None


def manifest() -> dict:
    return yaml.safe_load((ROOT / "manifest.yml").read_text())


def test_slash_commands_match_the_manifest():
    declared = {c["command"] for c in manifest()["features"]["slash_commands"]}
    assert registered().commands == declared


def test_events_match_the_manifest():
    declared = set(manifest()["settings"]["event_subscriptions"]["bot_events"])
    assert registered().events == declared


def test_manifest_has_the_scopes_and_settings_the_bot_needs():
    m = manifest()
    scopes = set(m["oauth_config"]["scopes"]["bot"])
    needed = {
        "commands",
        "chat:write",
        "chat:write.public",
        "channels:manage",
        "groups:write",
        "im:write",
        "users:read",
        "usergroups:read",
    }
    assert needed <= scopes
    # The fake Slack's bot token has exactly these, so a call needing another fails there.
    from bot.sandbox.fake_slack import BOT_SCOPES

    assert scopes == set(BOT_SCOPES)
    assert m["features"]["app_home"]["messages_tab_enabled"] is True  # approvers' DMs
    assert m["settings"]["interactivity"]["is_enabled"] is True
    assert m["settings"]["socket_mode_enabled"] is True
    assert m["features"]["app_home"]["home_tab_enabled"] is True
    usage = m["features"]["slash_commands"][0]["usage_hint"]
    assert "drill" in usage and "help" in usage
    # Slack shows the hint while one types: it lists every subcommand the bot answers.
    hinted = {part.split()[0] for part in usage.split("|")}
    assert hinted == set(commands.SUBCOMMANDS), set(commands.SUBCOMMANDS) ^ hinted
