"""The sandbox's Slack look-alike page, served by the fake Slack server (FakeSlack.page).

The page (static/index.html, vanilla JS) polls ``GET /sandbox/state`` for what the acting
user sees (channels, messages as they stand after edits, their ephemerals, their modal
stack) and turns what they do into what Slack would send the bot: a signed slash command,
block_actions click or view_submission, made by the same Signer the test rig uses. The fake
applies the bot's answers (response_action, response_url posts) exactly as in the tests.
"""

from __future__ import annotations

import json
from importlib import resources
from urllib.parse import parse_qs

from bot.sandbox.fake_slack import FakeSlack
from bot.sandbox.signer import Response, Signer

JSON_TYPE = "application/json; charset=utf-8"
# Keys of a stored message the page does not need (earlier versions can be long).
_HIDDEN = ("history", "channel")
# Files the page is made of; browsers ask for /favicon.ico whatever the page links.
_STATIC = {
    "/": ("static/index.html", "text/html; charset=utf-8"),
    "/index.html": ("static/index.html", "text/html; charset=utf-8"),
    "/favicon.svg": ("static/favicon.svg", "image/svg+xml"),
    "/favicon.ico": ("static/favicon.svg", "image/svg+xml"),
}


class PageError(Exception):
    """Something the user asked for that Slack's client would not send; shown on the page."""


class SlackPage:
    def __init__(self, fake: FakeSlack, signer: Signer, team_name: str = "Sandbox") -> None:
        self.fake = fake
        self.signer = signer
        self.team_name = team_name
        self._routes = {
            ("GET", "/sandbox/state"): self.state,
            ("POST", "/sandbox/command"): self.command,
            ("POST", "/sandbox/message"): self.message,
            ("POST", "/sandbox/action"): self.action,
            ("POST", "/sandbox/submit"): self.submit,
            ("POST", "/sandbox/close"): self.close,
            ("POST", "/sandbox/home"): self.open_home,
        }

    # -- HTTP

    def serve(self, method: str, path: str, query: str, body: bytes) -> tuple[int, str, bytes]:
        if method == "GET" and path in _STATIC:
            name, content_type = _STATIC[path]
            return 200, content_type, resources.files("bot.sandbox").joinpath(name).read_bytes()
        route = self._routes.get((method, path))
        if route is None:
            return 404, "text/plain", b"not found"
        args = {k: v[-1] for k, v in parse_qs(query).items()}
        try:
            if body:
                args.update(json.loads(body))
            answer, status = route(args), 200
        except (PageError, AssertionError, ValueError, KeyError) as error:
            # The Signer raises AssertionError for what Slack's client would refuse to send
            # (an empty required input, an option the element does not have).
            answer, status = {"ok": False, "error": str(error) or type(error).__name__}, 400
        return status, JSON_TYPE, json.dumps(answer, default=str).encode()

    # -- what the acting user sees

    def state(self, args: dict) -> dict:
        user = self._user(args)
        channels = [self._channel_entry(c, user) for c in self.fake.channels()]
        channels = [c for c in channels if c is not None]
        channel = args.get("channel") or self.fake.channel_id("engineering")
        messages = [
            {k: v for k, v in m.items() if k not in _HIDDEN} for m in self.fake.messages(channel)
        ]
        ephemerals = self.fake.ephemerals(channel, user)
        return {
            "team": self.team_name,
            "me": user,
            "bot_user_id": self.fake.bot_user_id,
            "users": {u["id"]: _person(u) for u in self.fake.users()},
            "usergroups": {g["id"]: g["handle"] for g in self.fake.usergroups()},
            "channels": channels,
            "channel": channel,
            "messages": messages,
            "ephemerals": ephemerals,
            "views": self.fake.stack(user),
            "home": self.fake.home(user),
        }

    def _channel_entry(self, channel: dict, user: str) -> dict | None:
        if channel.get("is_im"):
            if channel["user"] != user:
                return None
            return {"id": channel["id"], "name": "rollback-bot", "is_im": True, "is_member": True}
        latest = self.fake.messages(channel["id"])
        return {
            "id": channel["id"],
            "name": channel["name"],
            "is_im": False,
            "is_private": channel["is_private"],
            "is_member": user in channel["members"],
            "latest": latest[-1]["ts"] if latest else "",
        }

    # -- what the acting user does

    def command(self, args: dict) -> dict:
        """A slash command typed in the message box: signed and POSTed like Slack does."""
        user, channel = self._user(args), self._channel(args)
        command, _, text = args["text"].strip().partition(" ")
        if command != "/rollback":
            raise PageError(f"{command} is not a valid command (this sandbox has /rollback)")
        response = self.signer.slash(text.strip(), user=user, channel=channel)
        self._show_ack(response, channel, user)
        return {"ok": response.status == 200, "status": response.status}

    def _show_ack(self, response: Response, channel: str, user: str) -> None:
        """Slack shows a slash command's ack body to the user; a failure as its error."""
        if response.status != 200:
            text = f"/rollback failed with the error “http_{response.status}”"
            self.fake.add_ephemeral(channel, user, text, None)
            return
        body = response.json() if response.body.strip() else None
        if isinstance(body, dict) and (body.get("text") or body.get("blocks")):
            if body.get("response_type") == "in_channel":
                self.fake.post_as_user(channel, self.fake.bot_user_id, body.get("text") or "")
            else:
                self.fake.add_ephemeral(channel, user, body.get("text"), body.get("blocks"))

    def message(self, args: dict) -> dict:
        """A plain message: shown in the channel; the bot subscribes to no message events."""
        user, channel = self._user(args), self._channel(args)
        text = (args.get("text") or "").strip()
        if not text:
            raise PageError("empty message")
        # Slack's client sends what a person typed with &, < and > escaped, so typed text
        # is never a link, a mention or markup (Slack: "Formatting text for app surfaces").
        return self.fake.post_as_user(channel, user, _slack_escaped(text), args.get("thread_ts"))

    def action(self, args: dict) -> dict:
        """A click (or a choice in a select) on a message, an ephemeral, a modal or Home."""
        user = self._user(args)
        kwargs = {"user": user, "block_id": args.get("block_id") or "b"}
        if args.get("selected_option") is not None:
            kwargs["selected_option"] = args["selected_option"]
        if args.get("view_id"):
            view = self._view(args["view_id"])
            response = self.signer.block_action(
                args["action_id"], args.get("value"), view=view, **kwargs
            )
        else:
            channel = self._channel(args)
            message, ephemeral = self._message(channel, user, args["message_ts"])
            response = self.signer.block_action(
                args["action_id"],
                args.get("value"),
                channel=channel,
                message=message,
                ephemeral=ephemeral,
                **kwargs,
            )
        return {"ok": response.status == 200, "status": response.status}

    def submit(self, args: dict) -> dict:
        """A modal's submit button: values are {block_id: {action_id: value}}."""
        user = self._user(args)
        self._view(args["view_id"])
        response = self.signer.submit_view(args["view_id"], user=user, values=args["values"])
        body = response.json() if response.body.strip() else None
        answer = {"ok": response.status == 200, "status": response.status}
        if isinstance(body, dict) and body.get("response_action") == "errors":
            answer["errors"] = body.get("errors") or {}
        return answer

    def close(self, args: dict) -> dict:
        """The modal's Cancel/close: the top view goes (all of them with clear_on_close)."""
        user = self._user(args)
        view = self._view(args["view_id"])
        if view.get("notify_on_close"):
            self.signer.view_closed(view["id"], user=user)
        closing = [v["id"] for v in self.fake.stack(user)] if view.get("clear_on_close") else []
        self.fake.close_views(user, closing or [view["id"]])
        return {"ok": True}

    def open_home(self, args: dict) -> dict:
        """Opening the app's Home tab: Slack sends app_home_opened; the bot publishes it."""
        user = self._user(args)
        response = self.signer.event({"type": "app_home_opened", "user": user, "tab": "home"})
        return {"ok": response.status == 200}

    # -- lookups

    def _user(self, args: dict) -> str:
        user = args.get("user") or "U_ALICE"
        if self.fake.user(user) is None:
            raise PageError(f"no user {user!r} in the sandbox workspace")
        return user

    def _channel(self, args: dict) -> str:
        channel = self.fake.channel_id(args.get("channel") or "")
        if channel is None:
            raise PageError(f"no channel {args.get('channel')!r}")
        return channel

    def _view(self, view_id: str) -> dict:
        view = self.fake.views().get(view_id)
        if view is None:
            raise PageError("that modal is no longer open")
        return view

    def _message(self, channel: str, user: str, ts: str) -> tuple[dict, bool]:
        for message in self.fake.messages(channel):
            if message["ts"] == ts:
                return message, False
        for ephemeral in self.fake.ephemerals(channel, user):
            if ephemeral["ts"] == ts:
                return ephemeral, True
        raise PageError("that message is gone")


def _slack_escaped(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _person(user: dict) -> dict:
    return {"name": user["name"], "real_name": user.get("real_name"), "is_bot": user["is_bot"]}
