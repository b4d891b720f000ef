"""Drive the bot the way Slack does: signed HTTP requests with Slack-shaped payloads.

Every request is real HTTP (urllib) to the app, signed as Slack signs it:
``X-Slack-Signature = "v0=" + HMAC-SHA256(signing_secret, f"v0:{ts}:{body}")``.
Trigger ids and response urls come from the FakeSlack, so what the bot does with them is
checked there (3 s / single use triggers, 5 uses per response_url).
"""

from __future__ import annotations

import copy
import json
import secrets
import time
from dataclasses import dataclass, field
from urllib.error import HTTPError
from urllib.parse import urlencode
from urllib.request import ProxyHandler, Request, build_opener

from slack_sdk.signature import SignatureVerifier

from bot.sandbox.fake_slack import FakeSlack, block_elements, public_message

FORM = "application/x-www-form-urlencoded"
JSON = "application/json"
SLACK_USER_AGENT = "Slackbot 1.0 (+https://api.slack.com/robots)"
# Slack gives up on a request that is not acknowledged within 3 s.
ACK_DEADLINE = 3.0
_opener = build_opener(ProxyHandler({}))  # 127.0.0.1 only: never through a proxy


@dataclass
class Response:
    status: int
    headers: dict
    body: str
    elapsed: float = 0.0  # seconds until the app answered (Slack's ack deadline is 3 s)
    sent: dict = field(default_factory=dict)  # the payload that was sent, for assertions

    def json(self) -> dict | None:
        try:
            return json.loads(self.body)
        except ValueError:
            return None

    @property
    def acked_in_time(self) -> bool:
        return self.status == 200 and self.elapsed < ACK_DEADLINE


class Signer:
    def __init__(self, app_url: str, signing_secret: str, fake_slack: FakeSlack):
        self.app_url = app_url
        self.signing_secret = signing_secret
        self.fake = fake_slack

    # -- low level

    def post(
        self,
        body: bytes,
        content_type: str,
        *,
        timestamp: int | None = None,
        forge: bool = False,
        signature: str | None = None,
        headers: dict | None = None,
    ) -> Response:
        """POST a signed body; timestamp= sends stale requests, forge= signs with a wrong secret."""
        timestamp = int(time.time()) if timestamp is None else timestamp
        secret = "not-the-" + self.signing_secret if forge else self.signing_secret
        if signature is None:
            verifier = SignatureVerifier(secret)
            signature = verifier.generate_signature(timestamp=str(timestamp), body=body.decode())
        sent_headers = {
            "Content-Type": content_type,
            "X-Slack-Request-Timestamp": str(timestamp),
            "X-Slack-Signature": signature,
            "User-Agent": SLACK_USER_AGENT,
            **(headers or {}),
        }
        return _send(Request(self.app_url, data=body, headers=sent_headers, method="POST"))

    def _form(self, fields: dict) -> Response:
        response = self.post(urlencode(fields).encode(), FORM)
        response.sent = fields
        return response

    def _interaction(self, payload: dict) -> Response:
        """Interactivity payloads arrive as a form with one field: payload=<json>."""
        response = self._form({"payload": json.dumps(payload)})
        response.sent = payload
        return response

    # -- what users do

    def slash(
        self,
        text: str,
        *,
        user: str = "U_ALICE",
        channel: str = "C_ENG",
        command: str = "/rollback",
    ) -> Response:
        channel_id = self._channel_id(channel)
        fields = {
            "token": self.fake.verification_token,
            "team_id": self.fake.team_id,
            "team_domain": self.fake.team_domain,
            "channel_id": channel_id,
            "channel_name": self._channel_name(channel_id),
            "user_id": user,
            "user_name": self._user_name(user),
            "command": command,
            "text": text,
            "api_app_id": self.fake.app_id,
            "is_enterprise_install": "false",
            "response_url": self.fake.new_response_url(channel=channel_id, user=user),
            "trigger_id": self.fake.new_trigger_id(user),
        }
        return self._form(fields)

    def block_action(
        self,
        action_id: str,
        value: str | None,
        *,
        user: str,
        block_id: str = "b",
        channel: str = "C_ENG",
        message: dict | None = None,
        view: dict | None = None,
        selected_option: dict | None = None,
        ephemeral: bool = False,
    ) -> Response:
        """A click on an element. In a modal/Home tab pass view=; otherwise the message is
        the one given, or the newest in `channel` (or the user's ephemerals) with that action.
        The element must be in those blocks (Slack only sends clicks on what it rendered);
        block_id picks among blocks reusing an action_id. value=None sends the button's own
        value; selects and checkboxes take option values (see element_state). ephemeral=True
        says the message given is an ephemeral one (Slack then sends no message body)."""
        if view is not None:
            payload = self._view_action_payload(view, user)
            blocks = payload["view"]["blocks"]
        else:
            payload, blocks = self._message_action_payload(
                action_id, user, channel, message, ephemeral
            )
        action = _action(blocks, action_id, block_id, value, selected_option)
        return self._interaction({**payload, "actions": [action]})

    def submit_view(self, view_id: str, *, user: str, values: dict[str, object]) -> Response:
        """Submit a modal: values maps block_id -> what the user entered (see state_values).

        Like Slack's client, refuses to submit while a required input is empty. Afterwards the
        app's answer (close, response_action update/push/errors/clear) is applied to the fake.
        """
        view = self._view(view_id)
        state = state_values(view["blocks"], values)
        _check_required(view["blocks"], state)
        served = {**_served(view), "state": {"values": state}}
        payload = {
            "type": "view_submission",
            **self._who(user),
            "trigger_id": self.fake.new_trigger_id(user),
            "view": served,
            "response_urls": [],
        }
        response = self._interaction(payload)
        if response.status == 200:
            body = response.json() if response.body.strip() else None
            self.fake.apply_view_response(view_id, user, body)
        return response

    def view_closed(self, view_id: str, *, user: str) -> Response:
        """The user closed a modal. Slack only tells the app when notify_on_close is true."""
        view = self._view(view_id)
        if not view.get("notify_on_close"):
            raise ValueError(
                f"view {view_id} has notify_on_close false: Slack sends no view_closed"
            )
        payload = {
            "type": "view_closed",
            **self._who(user),
            "view": _served(view),
            "is_cleared": False,
        }
        response = self._interaction(payload)
        self.fake.close_views(user, [view_id])
        return response

    def event(
        self, event: dict, *, event_id: str | None = None, retry_num: int | None = None
    ) -> Response:
        """An Events API event_callback; retries carry X-Slack-Retry-Num / -Reason."""
        now = time.time()
        envelope = {
            "token": self.fake.verification_token,
            "team_id": self.fake.team_id,
            "api_app_id": self.fake.app_id,
            "event": {"event_ts": f"{now:.6f}", **event},
            "type": "event_callback",
            "event_id": event_id or "Ev" + secrets.token_hex(5).upper(),
            "event_time": int(now),
            "authorizations": [self._authorization()],
            "is_ext_shared_channel": False,
            "event_context": "4-" + secrets.token_hex(16),
        }
        response = self._deliver_event(envelope, retry_num)
        response.sent = envelope
        return response

    def _deliver_event(self, envelope: dict, retry_num: int | None) -> Response:
        headers = {}
        if retry_num is not None:
            headers = {"X-Slack-Retry-Num": str(retry_num), "X-Slack-Retry-Reason": "http_timeout"}
        return self.post(json.dumps(envelope).encode(), JSON, headers=headers)

    # -- payload parts

    def _who(self, user: str) -> dict:
        return {
            "team": {"id": self.fake.team_id, "domain": self.fake.team_domain},
            "user": {
                "id": user,
                "username": self._user_name(user),
                "name": self._user_name(user),
                "team_id": self.fake.team_id,
            },
            "api_app_id": self.fake.app_id,
            "token": self.fake.verification_token,
            "enterprise": None,
            "is_enterprise_install": False,
        }

    def _authorization(self) -> dict:
        return {
            "enterprise_id": None,
            "team_id": self.fake.team_id,
            "user_id": self.fake.bot_user_id,
            "is_bot": True,
            "is_enterprise_install": False,
        }

    def _view_action_payload(self, view: dict, user: str) -> dict:
        served = _served(view)
        served["state"] = {"values": state_values(served["blocks"], {})}
        return {
            "type": "block_actions",
            **self._who(user),
            "container": {"type": "view", "view_id": served["id"]},
            "trigger_id": self.fake.new_trigger_id(user),
            "view": served,
        }

    def _message_action_payload(
        self, action_id: str, user: str, channel: str, message: dict | None, ephemeral: bool
    ) -> tuple[dict, list]:
        channel_id = self._channel_id(channel)
        if message is None:
            message, ephemeral = self._find_action(channel_id, user, action_id)
        blocks = message.get("blocks", [])
        message_ts = None if ephemeral else message["ts"]
        container = {"type": "message", "message_ts": message["ts"], "channel_id": channel_id}
        payload = {
            "type": "block_actions",
            **self._who(user),
            "container": {**container, "is_ephemeral": ephemeral},
            "trigger_id": self.fake.new_trigger_id(user),
            "channel": {"id": channel_id, "name": self._channel_name(channel_id)},
            "state": {"values": state_values(blocks, {})},
            "response_url": self.fake.new_response_url(
                channel=channel_id, user=user, message_ts=message_ts
            ),
        }
        if not ephemeral:  # Slack sends no message body for a click on an ephemeral message
            payload["message"] = public_message(message)
        return payload, blocks

    def _find_action(self, channel_id: str, user: str, action_id: str) -> tuple[dict, bool]:
        """The newest message (or the user's ephemeral) in the channel holding action_id."""
        candidates = [(m, False) for m in self.fake.messages(channel_id)]
        candidates += [(e, True) for e in self.fake.ephemerals(channel_id, user)]
        candidates.sort(key=lambda pair: float(pair[0]["ts"]), reverse=True)
        for candidate, ephemeral in candidates:
            if _find_element(candidate.get("blocks", []), action_id):
                return candidate, ephemeral
        raise AssertionError(f"no message in {channel_id} shows an element {action_id!r} to {user}")

    def _view(self, view_id: str) -> dict:
        view = self.fake.views().get(view_id)
        if view is None:
            raise AssertionError(f"view {view_id} is not open (open: {list(self.fake.views())})")
        return view

    def _channel_id(self, channel: str) -> str:
        channel_id = self.fake.channel_id(channel)
        if channel_id is None:
            raise AssertionError(f"the fake workspace has no channel {channel!r}")
        return channel_id

    def _channel_name(self, channel_id: str) -> str:
        info = self.fake.channel(channel_id) or {}
        return info.get("name") or "directmessage"  # Slack's channel_name for DMs

    def _user_name(self, user: str) -> str:
        found = self.fake.user(user)
        return found["name"] if found else user.lower()


# ---------------------------------------------------------------- state and actions


def _served(view: dict) -> dict:
    """A view from FakeSlack.views() as Slack puts it in payloads (without user/position)."""
    return {k: copy.deepcopy(v) for k, v in view.items() if k not in ("user", "stack_position")}


def _find_element(
    blocks: list[dict], action_id: str, block_id: str | None = None
) -> tuple[dict, dict] | None:
    """The element with action_id; block_id picks one when several blocks reuse the id."""
    found = [
        (block, element)
        for block in blocks
        for _, element in block_elements(block)
        if element.get("action_id") == action_id
    ]
    preferred = [pair for pair in found if pair[0].get("block_id") == block_id]
    return (preferred or found or [None])[0]


def _options(element: dict) -> list[dict]:
    groups = element.get("option_groups") or []
    return (element.get("options") or []) + [o for g in groups for o in g.get("options", [])]


def _option(element: dict, value: object) -> dict:
    for option in _options(element):
        if option.get("value") == value:
            return copy.deepcopy(option)
    raise AssertionError(f"{element.get('action_id')!r} has no option with value {value!r}")


# element type -> (state key, initial key, how a test's value becomes Slack's)
_STATE_FIELDS = {
    "plain_text_input": ("value", "initial_value", None),
    "number_input": ("value", "initial_value", None),
    "email_text_input": ("value", "initial_value", None),
    "url_text_input": ("value", "initial_value", None),
    "checkboxes": ("selected_options", "initial_options", "options"),
    "multi_static_select": ("selected_options", "initial_options", "options"),
    "static_select": ("selected_option", "initial_option", "option"),
    "radio_buttons": ("selected_option", "initial_option", "option"),
    "overflow": ("selected_option", None, "option"),
    "datepicker": ("selected_date", "initial_date", None),
    "timepicker": ("selected_time", "initial_time", None),
    "datetimepicker": ("selected_date_time", "initial_date_time", None),
    "users_select": ("selected_user", "initial_user", None),
    "multi_users_select": ("selected_users", "initial_users", None),
    "conversations_select": ("selected_conversation", "initial_conversation", None),
    "channels_select": ("selected_channel", "initial_channel", None),
}


def element_state(element: dict, value: object) -> dict:
    """What Slack reports for an element holding `value` (None: its initial state)."""
    kind = element.get("type")
    key, initial, convert = _STATE_FIELDS[kind]
    if value is None:
        picked = copy.deepcopy(element.get(initial)) if initial else None
    elif convert == "option":
        picked = _option(element, value)
    elif convert == "options":
        picked = [_option(element, v) for v in value]
    else:
        picked = value
    if picked is None and convert == "options":
        picked = []  # Slack reports no choice as an empty list
    return {"type": kind, key: picked}


def state_values(blocks: list[dict], values: dict[str, object]) -> dict:
    """view.state.values from {block_id: value} (or {block_id: {action_id: value}}).

    plain_text_input: str; checkboxes: list of option values; static_select/radio: an option
    value; datepicker "YYYY-MM-DD"; timepicker "HH:MM". Blocks not given keep their initial
    value, as Slack reports an untouched element.
    """
    known = {b.get("block_id") for b in blocks}
    unknown = sorted(set(values) - known)
    if unknown:
        raise AssertionError(f"the view has no block(s) {unknown}; it has {sorted(known)}")
    state: dict = {}
    for block in blocks:
        for _, element in block_elements(block):
            # Buttons and overflow menus keep no state (Slack omits them from state.values).
            if element.get("type") not in _STATE_FIELDS or element["type"] == "overflow":
                continue
            given = values.get(block["block_id"])
            if isinstance(given, dict) and element["action_id"] in given:
                given = given[element["action_id"]]
            entry = element_state(element, given)
            state.setdefault(block["block_id"], {})[element["action_id"]] = entry
    return state


def _is_empty(entry: dict) -> bool:
    picked = [v for k, v in entry.items() if k != "type"]
    return all(v in (None, "", []) for v in picked)


def _check_required(blocks: list[dict], state: dict) -> None:
    """Slack's client will not submit a modal while a required input is empty."""
    for block in blocks:
        if block.get("type") != "input" or block.get("optional"):
            continue
        entries = state.get(block["block_id"], {}).values()
        if not entries or all(_is_empty(e) for e in entries):
            raise AssertionError(
                f"required input {block['block_id']!r} is empty: Slack would not submit"
            )


def _action(blocks, action_id, block_id, value, selected_option) -> dict:
    """One entry of block_actions.actions, shaped by the element that was clicked."""
    found = _find_element(blocks, action_id, block_id)
    if found is None:
        # Slack only sends clicks on elements it rendered; say what the message does show.
        shown = [e.get("action_id") for b in blocks for _, e in block_elements(b)]
        raise AssertionError(f"no element {action_id!r} in the blocks given (they show {shown})")
    block, element = found
    kind = element.get("type", "button")
    action = {"action_id": element["action_id"], "block_id": block["block_id"], "type": kind}
    action["action_ts"] = f"{time.time():.6f}"
    if selected_option is not None:
        return {**action, "selected_option": selected_option}
    if kind in _STATE_FIELDS:
        return {**action, **element_state(element, value)}
    text = element.get("text") or {"type": "plain_text", "text": action_id}
    extra = {k: element[k] for k in ("style", "url") if k in element}
    # Slack sends the button's own value (a test may pass another to forge one), and omits
    # "value" for a button that has none.
    value = element.get("value") if value is None else value
    return {**action, "text": text, **extra, **({"value": value} if value is not None else {})}


def _send(request: Request) -> Response:
    started = time.monotonic()
    try:
        with _opener.open(request, timeout=30) as answer:
            status, headers, body = answer.status, answer.headers, answer.read()
    except HTTPError as error:
        status, headers, body = error.code, error.headers, error.read()
    elapsed = time.monotonic() - started
    lowered = {k.lower(): v for k, v in headers.items()}
    return Response(status, lowered, body.decode("utf-8", "replace"), elapsed)
