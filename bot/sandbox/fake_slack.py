"""A fake Slack Web API on 127.0.0.1 that records and validates every call.

Point the bot at it with ``WebClient(base_url=fake.url)`` (or SLACK_API_URL). It answers the
methods the bot uses with Slack-shaped payloads, rejects what Slack would reject (Block Kit
limits, trigger_id and response_url rules, channel names, modal stack depth, stale streams),
rate-limits per method like Slack's tiers, and can inject faults. Facts and numbers come from
the team's Slack platform notes (docs/reference/slack-platform.md) unless a comment names
another source.

It also serves the sandbox's Slack look-alike page (``rollback-bot sandbox``) when one is
attached with :meth:`FakeSlack.attach_page`: the test rig and the sandbox share this one fake.
The pytest fixtures live in tests/rig/fake_slack.py.
"""

from __future__ import annotations

import copy
import json
import math
import re
import secrets
import string
import threading
import time
from collections import Counter, defaultdict, deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

from slack_sdk.errors import SlackObjectFormationError
from slack_sdk.models.blocks import Block
from slack_sdk.models.messages.chunk import Chunk, TaskUpdateChunk
from slack_sdk.models.views import View

MESSAGE_BLOCK_LIMIT = 50  # Slack: 50 blocks per message
VIEW_BLOCK_LIMIT = 100  # Slack: 100 blocks per modal / Home tab
VIEW_MAX_BYTES = 250_000  # Slack: a view must be under 250 KB
MODAL_STACK_LIMIT = 3  # Slack: at most 3 views in a modal stack
TEXT_MAX = 40_000  # Slack truncates/refuses message text past 40,000 chars (msg_too_long)
MARKDOWN_TEXT_MAX = 12_000  # Slack: markdown_text of streams limited to 12,000 chars
# Slack documents these element limits but slack_sdk 3.48 does not check them.
OPTIONS_MAX = {"checkboxes": 10, "radio_buttons": 10}
PLAIN_TEXT_INPUT_MAX_LENGTH = 3000
TASK_STATUSES = {"pending", "in_progress", "complete", "error"}
CHANNEL_NAME_MAX = 80
CHANNEL_NAME_RE = re.compile(r"^[a-z0-9_-]+$")
JSON_FIELDS = ("blocks", "view", "attachments", "chunks", "metadata")
# What slack_sdk raises for a malformed model: its own error, or a constructor TypeError.
MODEL_ERRORS = (SlackObjectFormationError, TypeError, ValueError, AttributeError, KeyError)
INTERNAL_MESSAGE_KEYS = ("channel", "edit_count", "history", "stream")
_ALNUM = string.ascii_uppercase + string.digits
_MIXED = string.ascii_letters + string.digits


def _new_id(prefix: str, length: int = 10, alphabet: str = _ALNUM) -> str:
    return prefix + "".join(secrets.choice(alphabet) for _ in range(length))


def _flag(value: object) -> bool:
    """Form bodies carry booleans as "1"/"true" (slack_sdk converts True to "1")."""
    return value in (True, 1, "1", "true", "True")


# The bot token's scopes as manifest.yml asks for them (tests/test_manifest.py compares).
BOT_SCOPES = (
    "commands",
    "chat:write",
    "chat:write.public",
    "channels:manage",
    "channels:join",
    "channels:read",
    "groups:write",
    "im:write",
    "users:read",
    "usergroups:read",
    "app_mentions:read",
)


@dataclass
class Call:
    """One request the fake received, and what it answered."""

    method: str
    args: dict
    status: int
    response: dict
    at: float

    @property
    def ok(self) -> bool:
        return self.status == 200 and bool(self.response.get("ok"))

    @property
    def error(self) -> str | None:
        return self.response.get("error")


class SlackError(Exception):
    """An answer Slack gives as {"ok": false, "error": ...} (HTTP 200 unless told)."""

    def __init__(self, error: str, *messages: str, status: int = 200, **extra: object):
        super().__init__(error)
        self.error, self.messages, self.status, self.extra = error, list(messages), status, extra

    def body(self) -> dict:
        body = {"ok": False, "error": self.error, **self.extra}
        if self.messages:
            body["response_metadata"] = {"messages": self.messages}
        return body


# ---------------------------------------------------------------- Block Kit validation


def check_blocks(blocks: object, *, limit: int, pointer: str = "/blocks") -> list[dict]:
    """Validate blocks like Slack; return them with the block_ids Slack fills in."""
    if not isinstance(blocks, list):
        raise SlackError(
            "invalid_blocks_format", f"[ERROR] must be an array [json-pointer:{pointer}]"
        )
    problems = [f"[ERROR] no more than {limit} items allowed [json-pointer:{pointer}]"]
    problems = problems if len(blocks) > limit else []
    for index, block in enumerate(blocks):
        problems += block_problems(block, f"{pointer}/{index}")
    problems += _duplicate_block_ids(blocks, pointer)
    if problems:
        raise SlackError("invalid_blocks", *problems)
    return [_with_generated_ids(block) for block in blocks]


def block_problems(block: object, pointer: str) -> list[str]:
    """slack_sdk's validators for one block, plus the checks slack_sdk lacks."""
    if not isinstance(block, dict):
        return [f"[ERROR] must be an object [json-pointer:{pointer}]"]
    try:
        model = Block.parse(copy.deepcopy(block))
        if model is None:
            return [
                f"[ERROR] unsupported block type {block.get('type')!r} [json-pointer:{pointer}]"
            ]
        model.validate_json()
        # validate_json() checks only the block itself; to_dict() validates nested elements too.
        rendered = model.to_dict()
    except MODEL_ERRORS as exc:
        return [f"[ERROR] {exc} [json-pointer:{pointer}]"]
    found = list(_dropped_fields(block, rendered)) + list(_element_problems(block))
    return [f"[ERROR] {message} [json-pointer:{pointer}{sub}]" for sub, message in found]


def _dropped_fields(given: object, rendered: object, pointer: str = "") -> Iterator[tuple]:
    """Fields slack_sdk ignored (typos, unknown keys) or strings where Slack wants objects."""
    if isinstance(given, dict) and isinstance(rendered, dict):
        for key, value in given.items():
            if value in (None, [], "", {}):
                continue
            if key not in rendered:
                yield f"{pointer}/{key}", "unsupported field"
            else:
                yield from _dropped_fields(value, rendered[key], f"{pointer}/{key}")
    elif isinstance(given, list) and isinstance(rendered, list):
        for index, (inner, out) in enumerate(zip(given, rendered, strict=False)):
            yield from _dropped_fields(inner, out, f"{pointer}/{index}")
    elif isinstance(given, str) and isinstance(rendered, dict):
        yield pointer, "expected a text object, got a string"


def block_elements(block: dict) -> list[tuple[str, dict]]:
    """(json sub-pointer, element) for the interactive elements of a block."""
    if block.get("type") == "actions":
        elements = block.get("elements") or []
        return [(f"/elements/{i}", e) for i, e in enumerate(elements) if isinstance(e, dict)]
    return [
        (f"/{key}", block[key])
        for key in ("accessory", "element")
        if isinstance(block.get(key), dict)
    ]


def _element_problems(block: dict) -> Iterator[tuple[str, str]]:
    seen: set[str] = set()
    for sub, element in block_elements(block):
        limit = OPTIONS_MAX.get(element.get("type"))
        if limit and len(element.get("options") or []) > limit:
            yield f"{sub}/options", f"no more than {limit} items allowed"
        if (element.get("max_length") or 0) > PLAIN_TEXT_INPUT_MAX_LENGTH:
            yield f"{sub}/max_length", f"must be at most {PLAIN_TEXT_INPUT_MAX_LENGTH}"
        action_id = element.get("action_id")
        if action_id and action_id in seen:
            yield f"{sub}/action_id", f"duplicate action_id {action_id!r}"
        seen.add(action_id)


def _duplicate_block_ids(blocks: list, pointer: str) -> list[str]:
    ids = [b.get("block_id") for b in blocks if isinstance(b, dict) and b.get("block_id")]
    duplicates = sorted({i for i in ids if ids.count(i) > 1})
    return [f"[ERROR] duplicate block_id {i!r} [json-pointer:{pointer}]" for i in duplicates]


def _with_generated_ids(block: dict) -> dict:
    """Slack stores a random block_id / action_id where the app gave none."""
    block = copy.deepcopy(block)
    block.setdefault("block_id", _new_id("", 5, _MIXED))
    for _, element in block_elements(block):
        element.setdefault("action_id", _new_id("", 5, _MIXED))
    return block


def check_view(view: object) -> dict:
    """Validate a view like views.open/push/update/publish; return it with block ids filled."""
    if not isinstance(view, dict):
        raise SlackError("invalid_arguments", "[ERROR] view must be a JSON object")
    if len(json.dumps(view)) >= VIEW_MAX_BYTES:
        raise SlackError("view_too_large")
    blocks = check_blocks(view.get("blocks", []), limit=VIEW_BLOCK_LIMIT, pointer="/view/blocks")
    problems = _view_model_problems(view) + _view_shape_problems(view)
    if problems:
        raise SlackError("invalid_arguments", *problems)
    return {**copy.deepcopy(view), "blocks": blocks}


def _view_model_problems(view: dict) -> list[str]:
    try:
        View(**copy.deepcopy(view)).validate_json()
    except MODEL_ERRORS as exc:
        return [f"[ERROR] {exc} [json-pointer:/view]"]
    return []


def _view_shape_problems(view: dict) -> list[str]:
    kind = view.get("type")
    if kind not in ("modal", "home"):
        return [f"[ERROR] unsupported view type {kind!r} [json-pointer:/view/type]"]
    if kind == "modal" and not view.get("title"):
        return ["[ERROR] missing required field: title [json-pointer:/view]"]
    has_inputs = any(b.get("type") == "input" for b in view.get("blocks", []))
    if kind == "modal" and has_inputs and not view.get("submit"):
        # Slack: "submit" is required when a modal contains input blocks.
        return ["[ERROR] must provide a submit property when using input blocks"]
    return []


def check_chunks(chunks: object) -> list[dict]:
    if not isinstance(chunks, list):
        raise SlackError("invalid_chunks", "[ERROR] chunks must be an array")
    for index, chunk in enumerate(chunks):
        problem = _chunk_problem(chunk)
        if problem:
            raise SlackError("invalid_chunks", f"[ERROR] {problem} [json-pointer:/chunks/{index}]")
    return chunks


def _chunk_problem(chunk: object) -> str | None:
    try:
        model = Chunk.parse(copy.deepcopy(chunk)) if isinstance(chunk, dict) else None
        if model is None:
            return "unsupported chunk"
        model.to_dict()
    except MODEL_ERRORS as exc:
        return str(exc)
    if isinstance(model, TaskUpdateChunk) and model.status not in TASK_STATUSES:
        return f"status must be one of {sorted(TASK_STATUSES)}"
    return None


# ---------------------------------------------------------------- rate limits and faults


@dataclass(frozen=True)
class RateLimit:
    per_second: float
    burst: int
    per_channel: bool = False


# Slack's tiers, per method per app per workspace; chat.postMessage ~1/s per channel with bursts.
DEFAULT_RATE_LIMITS = {
    "chat.postMessage": RateLimit(1.0, 10, per_channel=True),
    "chat.update": RateLimit(50 / 60, 10, per_channel=True),
    "chat.postEphemeral": RateLimit(100 / 60, 20),
    "views.open": RateLimit(100 / 60, 20),
    "views.push": RateLimit(100 / 60, 20),
    "views.update": RateLimit(100 / 60, 20),
    "views.publish": RateLimit(100 / 60, 20),
    "conversations.create": RateLimit(20 / 60, 5),
    "usergroups.users.list": RateLimit(20 / 60, 5),
    "conversations.invite": RateLimit(50 / 60, 10),
    "conversations.join": RateLimit(50 / 60, 10),
    "conversations.open": RateLimit(50 / 60, 10),
    "conversations.archive": RateLimit(20 / 60, 5),
    "chat.startStream": RateLimit(20 / 60, 5),
    "chat.stopStream": RateLimit(20 / 60, 5),
    "chat.appendStream": RateLimit(100 / 60, 20),
    # Tier 1: a client that reconnects in a tight loop is throttled, as on Slack.
    "apps.connections.open": RateLimit(1 / 60, 20),
}
# Methods called with the app-level token (xapp-), not the bot token.
APP_TOKEN_METHODS = {"apps.connections.open"}


@dataclass
class _Bucket:
    limit: RateLimit
    tokens: float
    stamp: float

    def take(self, now: float) -> float:
        """0 when a call may go through, else seconds until one token is back."""
        refill = (now - self.stamp) * self.limit.per_second
        self.tokens, self.stamp = min(self.limit.burst, self.tokens + refill), now
        if self.tokens >= 1:
            self.tokens -= 1
            return 0.0
        return (1 - self.tokens) / self.limit.per_second


@dataclass
class _Fault:
    status: int | None
    error: str | None
    times: int
    delay: float

    @property
    def fails(self) -> bool:
        return self.status is not None or self.error is not None


# ---------------------------------------------------------------- the fake


class FakeSlack:
    token = "xoxb-test-token"
    team_id = "T0TEST"
    team_domain = "rollback-test"
    bot_user_id = "U0BOT"
    bot_id = "B0BOT"
    app_id = "A0TEST"
    verification_token = "fake-verification-token"  # the legacy "token" field in payloads
    app_token = "xapp-1-A0TEST-1-rigapptoken"  # app-level token for Socket Mode

    def __init__(self) -> None:
        self._lock = threading.RLock()
        self._calls: list[Call] = []
        self._server: ThreadingHTTPServer | None = None
        self._last_micros = 0
        # The sandbox's Slack look-alike page (bot/sandbox/page.py), served from "/".
        self.page = None
        # Slack's Socket Mode side (tests/rig/socket_mode.py) per app-level token: where
        # apps.connections.open's URLs lead. Another app's token may be added (bench/).
        self._socket_servers: dict[str, object] = {}
        self._app_token_in_use: str | None = None
        self.reset()

    # -- lifecycle

    def attach_page(self, page) -> None:
        """Serve a page object's routes (``page.serve``) next to the Web API."""
        self.page = page

    def attach_socket_mode(self, server, app_token: str | None = None) -> None:
        """apps.connections.open with `app_token` (default: the fake app's) answers with
        ``server.open_url()``; None detaches."""
        token = app_token or self.app_token
        if server is None:
            self._socket_servers.pop(token, None)
        else:
            self._socket_servers[token] = server

    def start(self, port: int = 0) -> FakeSlack:
        """Serve on 127.0.0.1:port (0: a free port the OS picks)."""
        handler = type("FakeSlackHandler", (_Handler,), {"fake": self})
        self._server = _Server(("127.0.0.1", port), handler)
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    @property
    def root(self) -> str:
        assert self._server, "FakeSlack is not started"
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    @property
    def url(self) -> str:
        return self.root + "/api/"

    def reset(self) -> None:
        with self._lock:
            self._calls.clear()
            self._clock_offset = 0.0
            self.trigger_ttl = 3.0  # Slack: trigger_id valid 3 s, once
            self.response_url_ttl = 1800.0  # Slack: response_url usable 5 times within 30 min
            self.response_url_max_uses = 5
            self.stream_stale_after = 300.0  # Slack: a stream goes stale after ~5 minutes
            self._limits = dict(DEFAULT_RATE_LIMITS)
            self._buckets: dict[tuple, _Bucket] = {}
            self._faults: dict[str, deque[_Fault]] = defaultdict(deque)
            self.rate_limited: Counter[str] = Counter()
            # What the app-level token was created with (Basic Information > App-Level Tokens).
            self.app_token_scopes = {"connections:write"}
            # What the bot token was installed with (manifest.yml's bot scopes); Slack names
            # them in every answer's x-oauth-scopes header.
            self.bot_token_scopes = set(BOT_SCOPES)
            self._reset_workspace()

    def _reset_workspace(self) -> None:
        self._users: dict[str, dict] = {}
        self._channels: dict[str, dict] = {}
        self._usergroups: dict[str, dict] = {}
        self._messages: dict[str, list[dict]] = defaultdict(list)
        self._ephemerals: list[dict] = []
        self._views: dict[str, dict] = {}
        self._view_users: dict[str, str | None] = {}
        self._stacks: dict[str | None, list[str]] = defaultdict(list)
        self._homes: dict[str, str] = {}
        self._triggers: dict[str, dict] = {}
        self._response_urls: dict[str, dict] = {}
        self._responses: list[tuple[str, dict]] = []
        self._seed_workspace()

    def _seed_workspace(self) -> None:
        self._users[self.bot_user_id] = self._user_record(self.bot_user_id, "rollback-bot", True)
        for user_id, name in [
            ("U_ALICE", "alice"),
            ("U_BOB", "bob"),
            ("U_CAROL", "carol"),
            ("U_DAVE", "dave"),
        ]:
            self.add_user(user_id, name)
        self.add_usergroup("db-approvers", ["U_BOB", "U_DAVE"], group_id="S_DBA")
        everyone = set(self._users)
        self.add_channel("engineering", "C_ENG", members=everyone)
        self.add_channel("general", "C_GEN", members=everyone)

    # -- time: tests may advance the fake's clock instead of sleeping

    def now(self) -> float:
        return time.monotonic() + self._clock_offset

    def advance(self, seconds: float) -> None:
        """Move the fake's clock (trigger/response_url expiry, streams, rate limit refill)."""
        with self._lock:
            self._clock_offset += seconds

    def _next_ts(self) -> str:
        """Slack ts: epoch seconds and microseconds, strictly increasing."""
        micros = max(int(time.time() * 1_000_000), self._last_micros + 1)
        self._last_micros = micros
        return f"{micros // 1_000_000}.{micros % 1_000_000:06d}"

    # -- recorded calls

    @property
    def calls(self) -> list[Call]:
        with self._lock:
            return list(self._calls)

    def calls_to(self, method: str, ok: bool | None = True) -> list[Call]:
        return [c for c in self.calls if c.method == method and (ok is None or c.ok == ok)]

    def wait_for(
        self,
        method: str,
        count: int = 1,
        timeout: float = 10,
        where: Callable[[Call], bool] | None = None,
    ) -> list[Call]:
        """Poll until at least `count` ok calls to `method` (matching `where`) arrived."""
        deadline = time.monotonic() + timeout
        while True:
            found = [c for c in self.calls_to(method) if where is None or where(c)]
            if len(found) >= count:
                return found
            if time.monotonic() > deadline:
                raise AssertionError(self._wait_summary(method, count, len(found), timeout, where))
            time.sleep(0.02)

    def _wait_summary(self, method, count, found, timeout, where) -> str:
        matching = " matching `where`" if where else ""
        lines = [
            f"expected >= {count} ok {method} call(s){matching} within {timeout}s, got {found}"
        ]
        failed = self.calls_to(method, ok=False)
        lines += [f"  failed {method}: HTTP {c.status} {c.error}" for c in failed[-5:]]
        tally = Counter((c.method, "ok" if c.ok else c.error or c.status) for c in self.calls)
        lines.append(
            "all calls: " + (", ".join(f"{m} [{r}] x{n}" for (m, r), n in tally.items()) or "none")
        )
        return "\n".join(lines)

    # -- faults and limits

    def set_rate_limit(
        self, method: str, per_second: float, burst: int, per_channel: bool = False
    ) -> None:
        """Replace a method's limit; per_second=math.inf lifts it."""
        with self._lock:
            self._limits[method] = RateLimit(per_second, burst, per_channel)
            self._buckets = {k: b for k, b in self._buckets.items() if k[0] != method}

    def fail_next(
        self,
        method: str,
        *,
        status: int | None = None,
        error: str | None = None,
        times: int = 1,
        delay: float = 0.0,
    ) -> None:
        """Make the next `times` calls fail.

        status (500/502/503) serves that HTTP error; error serves HTTP 200 {"ok": false, error};
        delay alone answers normally after `delay` s: the call takes effect, so a client that
        timed out and retries posts twice, as with real Slack. With neither, status 500.
        """
        if status is None and error is None and not delay:
            status = 500
        with self._lock:
            self._faults[method].append(_Fault(status, error, times, delay))

    def _take_fault(self, method: str) -> _Fault | None:
        queue = self._faults.get(method)
        if not queue:
            return None
        fault = queue[0]
        fault.times -= 1
        if fault.times <= 0:
            queue.popleft()
        return fault

    def _retry_after(self, method: str, args: dict) -> int:
        limit = self._limits.get(method)
        if limit is None or math.isinf(limit.per_second):
            return 0
        channel = args.get("channel")
        key = (method, self.channel_id(channel) or channel if limit.per_channel else None)
        now = self.now()
        bucket = self._buckets.setdefault(key, _Bucket(limit, float(limit.burst), now))
        wait = bucket.take(now)
        return max(1, math.ceil(wait)) if wait else 0

    # -- workspace model

    def _user_record(self, user_id: str, name: str, is_bot: bool = False) -> dict:
        profile = {"real_name": name.title(), "display_name": name, "email": f"{name}@example.com"}
        return {
            "id": user_id,
            "team_id": self.team_id,
            "name": name,
            "real_name": name.title(),
            "deleted": False,
            "is_bot": is_bot,
            "tz": "UTC",
            "profile": profile,
        }

    def add_user(self, user_id: str, name: str) -> None:
        with self._lock:
            self._users[user_id] = self._user_record(user_id, name)

    def user(self, user_id: str) -> dict | None:
        with self._lock:
            return copy.deepcopy(self._users.get(user_id))

    def add_usergroup(self, handle: str, users: list[str], group_id: str | None = None) -> str:
        group_id = group_id or _new_id("S")
        with self._lock:
            self._usergroups[group_id] = {
                "id": group_id,
                "team_id": self.team_id,
                "is_usergroup": True,
                "name": handle.replace("-", " ").title(),
                "handle": handle,
                "date_create": int(time.time()),
                "users": list(users),
            }
        return group_id

    def add_channel(
        self,
        name: str,
        channel_id: str | None = None,
        *,
        is_private: bool = False,
        members: set[str] | None = None,
    ) -> str:
        """A channel; by default everyone including the bot is a member."""
        channel_id = channel_id or _new_id("C")
        with self._lock:
            self._channels[channel_id] = {
                "id": channel_id,
                "name": name,
                "is_private": is_private,
                "is_im": False,
                "archived": False,
                "created": int(time.time()),
                "creator": "U_ALICE",
                "members": set(self._users) if members is None else set(members),
            }
        return channel_id

    def channel_id(self, name_or_id: str) -> str | None:
        """Resolve an id, "name" or "#name"; a user id resolves to the app's DM with them."""
        ref = (name_or_id or "").removeprefix("#")
        with self._lock:
            if ref in self._channels:
                return ref
            if ref in self._users:
                return self._dm_channel(ref)
            return next((c["id"] for c in self._channels.values() if c["name"] == ref), None)

    def _dm_channel(self, user_id: str) -> str:
        existing = [c for c in self._channels.values() if c["is_im"] and c["user"] == user_id]
        if existing:
            return existing[0]["id"]
        channel_id = _new_id("D")
        self._channels[channel_id] = {
            "id": channel_id,
            "name": None,
            "is_private": True,
            "is_im": True,
            "archived": False,
            "user": user_id,
            "created": int(time.time()),
            "members": {user_id, self.bot_user_id},
        }
        return channel_id

    def _channel_object(self, channel: dict) -> dict:
        if channel["is_im"]:
            keys = ("id", "is_im", "user", "created")
            return {k: channel[k] for k in keys}
        return {
            "id": channel["id"],
            "name": channel["name"],
            "name_normalized": channel["name"],
            "is_channel": not channel["is_private"],
            "is_group": channel["is_private"],
            "is_im": False,
            "is_private": channel["is_private"],
            "is_archived": channel["archived"],
            "is_general": channel["name"] == "general",
            "created": channel["created"],
            "creator": channel["creator"],
            "is_member": self.bot_user_id in channel["members"],
            "num_members": len(channel["members"]),
            "topic": {"value": "", "creator": "", "last_set": 0},
            "purpose": {"value": "", "creator": "", "last_set": 0},
        }

    def channel(self, name_or_id: str) -> dict | None:
        """A channel as conversations.info shows it, plus its members."""
        with self._lock:
            channel_id = self.channel_id(name_or_id)
            if channel_id is None:
                return None
            channel = self._channels[channel_id]
            return {**self._channel_object(channel), "members": sorted(channel["members"])}

    def members(self, channel: str) -> set[str]:
        with self._lock:
            channel_id = self.channel_id(channel)
            return set(self._channels[channel_id]["members"]) if channel_id else set()

    # -- what the workspace shows

    def messages(self, channel: str) -> list[dict]:
        """Messages in a channel as they stand now (after updates), in post order.

        Each has Slack's fields (ts, text, blocks, user, bot_id, thread_ts on replies and on
        parents that have replies, edited) plus edit_count, history (earlier versions) and
        stream (state and chunks of a streamed message).
        """
        with self._lock:
            channel_id = self.channel_id(channel)
            return copy.deepcopy(self._messages.get(channel_id, [])) if channel_id else []

    def thread(self, channel: str, thread_ts: str) -> list[dict]:
        """Like conversations.replies: the parent first, then its replies."""
        found = self.messages(channel)
        return [m for m in found if m["ts"] == thread_ts or m.get("thread_ts") == thread_ts]

    def views(self) -> dict[str, dict]:
        """Open views (modal stacks and published Home tabs) with user and stack_position."""
        with self._lock:
            return {view_id: self._view_snapshot(view_id) for view_id in self._views}

    def _view_snapshot(self, view_id: str) -> dict:
        user = self._view_users[view_id]
        stack = self._stacks.get(user, [])
        position = stack.index(view_id) + 1 if view_id in stack else None
        return {**copy.deepcopy(self._views[view_id]), "user": user, "stack_position": position}

    def home(self, user_id: str) -> dict | None:
        with self._lock:
            view_id = self._homes.get(user_id)
            return self._view_snapshot(view_id) if view_id else None

    def users(self) -> list[dict]:
        with self._lock:
            return copy.deepcopy(list(self._users.values()))

    def usergroups(self) -> list[dict]:
        with self._lock:
            return copy.deepcopy(list(self._usergroups.values()))

    def channels(self) -> list[dict]:
        """Every channel (DMs included) as conversations.info shows it, plus its members."""
        with self._lock:
            return [self.channel(channel_id) for channel_id in self._channels]

    def stack(self, user: str) -> list[dict]:
        """The user's open modals, bottom first (what Slack shows is the last)."""
        with self._lock:
            return [self._view_snapshot(view_id) for view_id in self._stacks.get(user, [])]

    def post_as_user(self, channel: str, user: str, text: str, thread_ts=None) -> dict:
        """A person's own message (the sandbox page's message box); the bot never sees it."""
        with self._lock:
            channel_id = self._chat_channel({"channel": channel})
            message = self._post(channel_id, text, None, {"thread_ts": thread_ts})
            message.update(user=user, bot_id=None, app_id=None)
            return public_message(message)

    def add_ephemeral(
        self, channel: str, user: str, text: str | None, blocks: list | None, thread_ts=None
    ) -> dict:
        """What Slack shows for a slash command's ack body: a message only `user` sees."""
        with self._lock:
            channel_id = self._chat_channel({"channel": channel})
            return self._add_ephemeral(channel_id, user, text, blocks, thread_ts)

    def ephemerals(self, channel: str | None = None, user: str | None = None) -> list[dict]:
        with self._lock:
            channel_id = self.channel_id(channel) if channel else None
            found = [e for e in self._ephemerals if channel is None or e["channel"] == channel_id]
            return copy.deepcopy([e for e in found if user is None or e["user"] == user])

    # -- trigger ids and response urls handed out by the signer

    def new_trigger_id(self, user: str | None = None) -> str:
        trigger_id = f"{int(time.time() * 1000)}.{secrets.randbelow(10**9)}.{secrets.token_hex(16)}"
        with self._lock:
            self._triggers[trigger_id] = {"issued": self.now(), "used": False, "user": user}
        return trigger_id

    def _exchange_trigger(self, trigger_id: str | None) -> str | None:
        """The user a trigger was issued for; Slack accepts each trigger once within 3 s."""
        trigger = self._triggers.get(trigger_id or "")
        if trigger is None:
            raise SlackError("invalid_trigger_id")
        if trigger["used"]:
            raise SlackError("exchanged_trigger_id")
        trigger["used"] = True
        if self.now() - trigger["issued"] > self.trigger_ttl:
            raise SlackError("expired_trigger_id")
        return trigger["user"]

    def new_response_url(
        self, *, channel: str | None = None, user: str | None = None, message_ts: str | None = None
    ) -> str:
        """A response_url; with channel/user/message_ts its posts show up in the workspace."""
        url_id = secrets.token_hex(12)
        entry = {"issued": self.now(), "uses": 0, "channel": channel, "user": user}
        with self._lock:
            self._response_urls[url_id] = {**entry, "message_ts": message_ts}
        return f"{self.root}/response/{url_id}"

    def responses(self, url: str | None = None) -> list[dict]:
        """Accepted JSON bodies posted to response urls, all or for one url.

        Rejected posts are calls: calls_to("response_url", ok=False).
        """
        with self._lock:
            return copy.deepcopy([body for u, body in self._responses if url is None or u == url])

    # -- serving (called from the HTTP handler threads)

    def serve_api(self, method: str, query: str, body: bytes, headers: dict) -> tuple:
        """(status, json text, extra headers) for one Web API request."""
        received = time.monotonic()
        with self._lock:
            fault = self._take_fault(method)
            args, status, response, extra = self._answer(method, query, body, headers, fault)
            self._calls.append(Call(method, args, status, response, received))
        if fault and fault.delay:
            time.sleep(fault.delay)
        return status, response, extra

    def _answer(self, method, query, body, headers, fault) -> tuple:
        args: dict = {}
        try:
            args = parse_args(query, body, headers.get("Content-Type", ""))
            answer = {"ok": True, **self._dispatch(method, args, headers, fault)}
            scopes = {} if method in APP_TOKEN_METHODS else self._scope_header()
            return (args, 200, answer, scopes)
        except _Throttled as throttled:
            self.rate_limited[method] += 1
            # Slack: HTTP 429, Retry-After in seconds, body {"ok": false, "error": "ratelimited"}
            retry = {"Retry-After": str(throttled.retry_after)}
            return args, 429, {"ok": False, "error": "ratelimited"}, retry
        except SlackError as exc:
            return args, exc.status, exc.body(), {}

    def _scope_header(self) -> dict:
        return {"x-oauth-scopes": ",".join(sorted(self.bot_token_scopes))}

    def _dispatch(self, method: str, args: dict, headers: dict, fault: _Fault | None) -> dict:
        if fault and fault.fails:
            raise SlackError(fault.error or f"http_{fault.status}", status=fault.status or 200)
        handler = self._handlers().get(method)
        if handler is None:
            raise SlackError("unknown_method", req_method=method)
        if method in APP_TOKEN_METHODS:
            self._authenticate_app(args, headers.get("Authorization", ""))
        else:
            self._authenticate(args, headers.get("Authorization", ""))
        retry_after = self._retry_after(method, args)
        if retry_after:
            raise _Throttled(retry_after)
        decode_json_fields(args)
        return handler(args)

    def _authenticate(self, args: dict, authorization: str) -> None:
        token = _presented_token(args, authorization)
        if token == self.app_token:
            raise SlackError("not_allowed_token_type")
        if token != self.token:
            raise SlackError("invalid_auth")

    def _authenticate_app(self, args: dict, authorization: str) -> None:
        """Socket Mode's methods take the app-level token with connections:write."""
        token = _presented_token(args, authorization)
        if token == self.token:
            raise SlackError("not_allowed_token_type")
        if token != self.app_token and token not in self._socket_servers:
            raise SlackError("invalid_auth")
        self._app_token_in_use = token
        if "connections:write" not in self.app_token_scopes:
            provided = ",".join(sorted(self.app_token_scopes))
            raise SlackError("missing_scope", needed="connections:write", provided=provided)

    def _handlers(self) -> dict[str, Callable[[dict], dict]]:
        return {
            "auth.test": self._auth_test,
            "apps.connections.open": self._apps_connections_open,
            "chat.postMessage": self._chat_post_message,
            "chat.update": self._chat_update,
            "chat.postEphemeral": self._chat_post_ephemeral,
            "chat.delete": self._chat_delete,
            "chat.getPermalink": self._chat_get_permalink,
            "chat.startStream": self._chat_start_stream,
            "chat.appendStream": self._chat_append_stream,
            "chat.stopStream": self._chat_stop_stream,
            "views.open": self._views_open,
            "views.push": self._views_push,
            "views.update": self._views_update,
            "views.publish": self._views_publish,
            "conversations.create": self._conversations_create,
            "conversations.invite": self._conversations_invite,
            "conversations.join": self._conversations_join,
            "conversations.info": self._conversations_info,
            "conversations.open": self._conversations_open,
            "conversations.archive": self._conversations_archive,
            "conversations.list": self._conversations_list,
            "users.info": self._users_info,
            "usergroups.list": self._usergroups_list,
            "usergroups.users.list": self._usergroups_users_list,
        }

    # -- auth

    def _auth_test(self, args: dict) -> dict:
        return {
            "url": f"https://{self.team_domain}.slack.com/",
            "team": "Rollback Test",
            "user": "rollback-bot",
            "team_id": self.team_id,
            "user_id": self.bot_user_id,
            "bot_id": self.bot_id,
            "is_enterprise_install": False,
        }

    def _apps_connections_open(self, args: dict) -> dict:
        server = self._socket_servers.get(self._app_token_in_use or "")
        if server is None:
            raise SlackError("invalid_arguments", "[ERROR] no Socket Mode server is attached")
        return {"url": server.open_url()}

    # -- chat.*

    def _chat_channel(self, args: dict, key: str = "channel") -> str:
        """chat.* accept a channel id, "name", "#name" or a user id (the app's DM). Slack
        refuses an archived channel, a private one the bot is not in (it does not exist for
        the bot), and a public one it is not in without chat:write.public."""
        channel_id = self.channel_id(args.get(key) or "")
        if channel_id is None:
            raise SlackError("channel_not_found")
        channel = self._channels[channel_id]
        if channel["archived"]:
            raise SlackError("is_archived")
        if self.bot_user_id not in channel["members"]:
            if channel["is_private"]:
                raise SlackError("channel_not_found")
            if "chat:write.public" not in self.bot_token_scopes:
                raise SlackError("not_in_channel")
        return channel_id

    def _require_scope(self, *any_of: str) -> None:
        if not self.bot_token_scopes & set(any_of):
            provided = ",".join(sorted(self.bot_token_scopes))
            raise SlackError("missing_scope", needed=",".join(any_of), provided=provided)

    def _content(self, args: dict, *, required: bool = True) -> tuple[str | None, list | None]:
        text = args.get("text") or args.get("markdown_text")
        blocks = args.get("blocks")
        if required and not text and not blocks and not args.get("attachments"):
            raise SlackError("no_text")
        if text and len(text) > TEXT_MAX:
            raise SlackError("msg_too_long")
        if blocks is not None:
            blocks = check_blocks(blocks, limit=MESSAGE_BLOCK_LIMIT)
        return text, blocks

    def _find_message(self, channel_id: str, ts: str | None) -> dict:
        found = [m for m in self._messages.get(channel_id, []) if m["ts"] == ts]
        if not found:
            raise SlackError("message_not_found")
        return found[0]

    def _post(self, channel_id: str, text: str | None, blocks: list | None, args: dict) -> dict:
        message = {
            "type": "message",
            "ts": self._next_ts(),
            "text": text or "",
            "blocks": blocks or [],
            "user": self.bot_user_id,
            "bot_id": self.bot_id,
            "app_id": self.app_id,
            "team": self.team_id,
        }
        message.update({k: args[k] for k in ("attachments", "metadata") if args.get(k)})
        if args.get("thread_ts"):
            message["thread_ts"] = args["thread_ts"]
            self._note_reply(channel_id, args["thread_ts"], message["ts"])
        message.update(channel=channel_id, edit_count=0, history=[])
        self._messages[channel_id].append(message)
        return message

    def _note_reply(self, channel_id: str, thread_ts: str, reply_ts: str) -> None:
        """Slack marks a thread's parent with thread_ts (its own ts), reply_count, latest_reply."""
        for parent in self._messages.get(channel_id, []):
            if parent["ts"] == thread_ts:
                parent.update(thread_ts=thread_ts, latest_reply=reply_ts)
                parent["reply_count"] = parent.get("reply_count", 0) + 1

    def _edit(self, message: dict, text: str | None, blocks: list | None) -> None:
        message["history"].append(
            {k: copy.deepcopy(message.get(k)) for k in ("text", "blocks", "edited")}
        )
        if text is not None:
            message["text"] = text
        # Slack keeps the old blocks when chat.update sends text only (python-slack-sdk#523).
        if blocks is not None:
            message["blocks"] = blocks
        message["edited"] = {"user": self.bot_user_id, "ts": self._next_ts()}
        message["edit_count"] += 1

    def _chat_post_message(self, args: dict) -> dict:
        channel_id = self._chat_channel(args)
        text, blocks = self._content(args)
        message = self._post(channel_id, text, blocks, args)
        return {"channel": channel_id, "ts": message["ts"], "message": public_message(message)}

    def _chat_update(self, args: dict) -> dict:
        channel_id = self._chat_channel(args)
        message = self._find_message(channel_id, args.get("ts"))
        if message["user"] != self.bot_user_id:
            raise SlackError("cant_update_message")
        _, blocks = self._content(args)
        self._edit(message, args.get("text", args.get("markdown_text")), blocks)
        shown = public_message(message)
        return {
            "channel": channel_id,
            "ts": message["ts"],
            "text": message["text"],
            "message": shown,
        }

    def _chat_post_ephemeral(self, args: dict) -> dict:
        channel_id = self._chat_channel(args)
        user = args.get("user")
        if user not in self._users:
            raise SlackError("user_not_found")
        if user not in self._channels[channel_id]["members"]:
            raise SlackError("user_not_in_channel")
        text, blocks = self._content(args)
        ephemeral = self._add_ephemeral(channel_id, user, text, blocks, args.get("thread_ts"))
        return {"message_ts": ephemeral["ts"]}

    def _add_ephemeral(self, channel_id, user, text, blocks, thread_ts) -> dict:
        ephemeral = {"channel": channel_id, "user": user, "ts": self._next_ts()}
        ephemeral.update(text=text or "", blocks=blocks or [], thread_ts=thread_ts)
        self._ephemerals.append(ephemeral)
        return ephemeral

    def _chat_delete(self, args: dict) -> dict:
        channel_id = self._chat_channel(args)
        message = self._find_message(channel_id, args.get("ts"))
        self._messages[channel_id].remove(message)
        return {"channel": channel_id, "ts": message["ts"]}

    def _chat_get_permalink(self, args: dict) -> dict:
        channel_id = self._chat_channel(args)
        message = self._find_message(channel_id, args.get("message_ts"))
        packed_ts = message["ts"].replace(".", "")
        link = f"https://{self.team_domain}.slack.com/archives/{channel_id}/p{packed_ts}"
        if message.get("thread_ts") not in (None, message["ts"]):
            link += f"?thread_ts={message['thread_ts']}&cid={channel_id}"
        return {"channel": channel_id, "permalink": link}

    # -- streaming messages

    def _chat_start_stream(self, args: dict) -> dict:
        channel_id = self._chat_channel(args)
        if not self._channels[channel_id]["is_im"]:
            # Slack: in channels a stream needs thread_ts and the recipient user and team.
            missing = [
                k
                for k in ("thread_ts", "recipient_user_id", "recipient_team_id")
                if not args.get(k)
            ]
            if missing:
                raise SlackError(
                    "invalid_arguments", *(f"[ERROR] missing required field: {k}" for k in missing)
                )
        text, chunks = self._stream_content(args)
        message = self._post(channel_id, text, None, args)
        message["stream"] = {"state": "streaming", "started": self.now(), "chunks": chunks}
        return {"channel": channel_id, "ts": message["ts"]}

    def _stream_content(self, args: dict) -> tuple[str, list]:
        text = args.get("markdown_text") or ""
        chunks = check_chunks(args["chunks"]) if args.get("chunks") is not None else []
        # slack_sdk's ChatStream sends its buffered markdown as markdown_text chunks.
        text += "".join(c["text"] for c in chunks if c.get("type") == "markdown_text")
        if len(text) > MARKDOWN_TEXT_MAX:
            raise SlackError("msg_too_long")
        return text, chunks

    def _streaming_message(self, args: dict) -> dict:
        message = self._find_message(self._chat_channel(args), args.get("ts"))
        stream = message.get("stream")
        if not stream or stream["state"] != "streaming":
            raise SlackError("message_not_in_streaming_state")
        if self.now() - stream["started"] > self.stream_stale_after:
            stream["state"] = "stale"
            raise SlackError("message_not_in_streaming_state")
        return message

    def _chat_append_stream(self, args: dict) -> dict:
        message = self._streaming_message(args)
        text, chunks = self._stream_content(args)
        message["text"] += text
        message["stream"]["chunks"] += chunks
        return {"channel": message["channel"], "ts": message["ts"]}

    def _chat_stop_stream(self, args: dict) -> dict:
        message = self._streaming_message(args)
        text, chunks = self._stream_content(args)
        blocks = args.get("blocks")
        blocks = check_blocks(blocks, limit=MESSAGE_BLOCK_LIMIT) if blocks is not None else []
        message["text"] += text
        message["blocks"] += blocks
        message["stream"]["chunks"] += chunks
        message["stream"]["state"] = "stopped"
        return {
            "channel": message["channel"],
            "ts": message["ts"],
            "message": public_message(message),
        }

    # -- views.*

    def _served_view(self, view: dict, view_id: str, root: str, previous: str | None) -> dict:
        """A view as Slack returns it: the app's fields plus id, hash, state and ids."""
        return {
            "id": view_id,
            "team_id": self.team_id,
            "type": view["type"],
            "blocks": view["blocks"],
            "private_metadata": view.get("private_metadata", ""),
            "callback_id": view.get("callback_id", ""),
            "state": {"values": {}},
            "hash": f"{int(time.time())}.{secrets.token_hex(4)}",
            "title": view.get("title"),
            "clear_on_close": bool(view.get("clear_on_close", False)),
            "notify_on_close": bool(view.get("notify_on_close", False)),
            "close": view.get("close"),
            "submit": view.get("submit"),
            "previous_view_id": previous,
            "root_view_id": root,
            "app_id": self.app_id,
            "external_id": view.get("external_id", ""),
            "app_installed_team_id": self.team_id,
            "bot_id": self.bot_id,
        }

    def _modal(self, args: dict) -> dict:
        view = check_view(args.get("view"))
        if view["type"] != "modal":
            raise SlackError("invalid_arguments", "[ERROR] views.open/push take a modal")
        external_id = view.get("external_id")
        if external_id and any(v["external_id"] == external_id for v in self._views.values()):
            raise SlackError("duplicate_external_id")
        return view

    def _store_view(self, user: str | None, view: dict, previous: str | None) -> dict:
        view_id = _new_id("V")
        root = self._stacks[user][0] if previous else view_id
        self._views[view_id] = self._served_view(view, view_id, root, previous)
        self._view_users[view_id] = user
        self._stacks[user].append(view_id)
        return {"view": copy.deepcopy(self._views[view_id])}

    def close_views(self, user: str | None, view_ids: list[str]) -> None:
        with self._lock:
            for view_id in view_ids:
                self._views.pop(view_id, None)
                if view_id in self._stacks[user]:
                    self._stacks[user].remove(view_id)

    def _views_open(self, args: dict) -> dict:
        user = self._exchange_trigger(args.get("trigger_id"))
        view = self._modal(args)
        self.close_views(user, list(self._stacks[user]))
        return self._store_view(user, view, None)

    def _views_push(self, args: dict) -> dict:
        user = self._exchange_trigger(args.get("trigger_id"))
        view = self._modal(args)
        stack = self._stacks[user]
        if len(stack) >= MODAL_STACK_LIMIT:
            raise SlackError("push_limit_reached")
        return self._store_view(user, view, stack[-1] if stack else None)

    def _target_view(self, args: dict) -> dict:
        view_id, external_id = args.get("view_id"), args.get("external_id")
        if not view_id and not external_id:
            raise SlackError("invalid_arguments", "[ERROR] view_id or external_id required")
        for view in self._views.values():
            if (view_id and view["id"] == view_id) or (
                external_id and view["external_id"] == external_id
            ):
                return view
        raise SlackError("not_found")

    def _replace_view(self, current: dict, view: dict, hash_: str | None) -> dict:
        if hash_ and hash_ != current["hash"]:
            raise SlackError("hash_conflict")
        replaced = self._served_view(
            view, current["id"], current["root_view_id"], current["previous_view_id"]
        )
        self._views[current["id"]] = replaced
        return {"view": copy.deepcopy(replaced)}

    def _views_update(self, args: dict) -> dict:
        current = self._target_view(args)
        return self._replace_view(current, check_view(args.get("view")), args.get("hash"))

    def _views_publish(self, args: dict) -> dict:
        user = args.get("user_id")
        if not user:
            raise SlackError("invalid_arguments", "[ERROR] missing required field: user_id")
        if user not in self._users:
            raise SlackError("user_not_found")
        view = check_view(args.get("view"))
        if view["type"] != "home":
            raise SlackError("invalid_arguments", "[ERROR] views.publish takes a home view")
        if user in self._homes:
            return self._replace_view(self._views[self._homes[user]], view, args.get("hash"))
        view_id = _new_id("V")
        self._views[view_id] = self._served_view(view, view_id, view_id, None)
        self._view_users[view_id], self._homes[user] = user, view_id
        return {"view": copy.deepcopy(self._views[view_id])}

    def apply_view_response(self, view_id: str, user: str, body: dict | None) -> Call:
        """What Slack does with an app's answer to a view_submission; recorded as a
        "response_action" call (ok=False when Slack would show the user an error)."""
        with self._lock:
            args = copy.deepcopy(body or {})
            try:
                self._view_response(view_id, user, args)
                call = Call("response_action", args, 200, {"ok": True}, time.monotonic())
            except SlackError as exc:
                call = Call("response_action", args, 200, exc.body(), time.monotonic())
            self._calls.append(call)
            return call

    def _view_response(self, view_id: str, user: str, body: dict) -> None:
        action = body.get("response_action")
        if action not in (None, "") and view_id not in self._views:
            # The modal was closed while the app answered (a crash/restart, another close):
            # Slack has nothing to apply the answer to; recorded as a refused response.
            raise SlackError("view_not_found", f"[ERROR] view {view_id} is no longer open")
        if action in (None, ""):
            self.close_views(user, [view_id])
        elif action == "clear":
            self.close_views(user, list(self._stacks[user]))
        elif action == "errors":
            self._check_view_errors(view_id, body.get("errors"))
        elif action == "update":
            self._replace_view(self._views[view_id], check_view(body.get("view")), None)
        elif action == "push":
            self._views_push_from_submission(user, check_view(body.get("view")))
        else:
            raise SlackError("invalid_arguments", f"[ERROR] unknown response_action {action!r}")

    def _check_view_errors(self, view_id: str, errors: object) -> None:
        """Slack: errors must be {block_id: message} naming input blocks of the view."""
        inputs = {b["block_id"] for b in self._views[view_id]["blocks"] if b.get("type") == "input"}
        if not isinstance(errors, dict) or not errors:
            raise SlackError("invalid_arguments", "[ERROR] errors must be a non-empty object")
        unknown = sorted(set(errors) - inputs)
        if unknown:
            raise SlackError(
                "invalid_arguments", f"[ERROR] no input block(s) {unknown} in the view"
            )

    def _views_push_from_submission(self, user: str, view: dict) -> None:
        stack = self._stacks[user]
        if len(stack) >= MODAL_STACK_LIMIT:
            raise SlackError("push_limit_reached")
        self._store_view(user, view, stack[-1] if stack else None)

    # -- conversations.*, users.*, usergroups.*

    def _conversation(self, args: dict) -> dict:
        """conversations.* take channel ids only (a name is channel_not_found on Slack)."""
        channel = self._channels.get(args.get("channel") or "")
        if channel is None:
            raise SlackError("channel_not_found")
        return channel

    def _conversations_create(self, args: dict) -> dict:
        name = args.get("name") or ""
        check_channel_name(name)
        if any(c["name"] == name for c in self._channels.values()):
            raise SlackError("name_taken")
        private = _flag(args.get("is_private"))
        self._require_scope("groups:write" if private else "channels:manage")
        channel_id = self.add_channel(name, is_private=private, members={self.bot_user_id})
        self._channels[channel_id]["creator"] = self.bot_user_id
        return {"channel": self._channel_object(self._channels[channel_id])}

    def _conversations_invite(self, args: dict) -> dict:
        channel = self._conversation(args)
        users = [u.strip() for u in (args.get("users") or "").split(",") if u.strip()]
        if not users:
            raise SlackError("no_user")
        self._require_scope("groups:write" if channel["is_private"] else "channels:manage")
        if channel["archived"]:
            raise SlackError("is_archived")
        if self.bot_user_id not in channel["members"]:
            raise SlackError("not_in_channel")
        self._check_invitees(channel, users)
        channel["members"].update(users)
        return {"channel": self._channel_object(channel)}

    def _check_invitees(self, channel: dict, users: list[str]) -> None:
        for user in users:
            error = None
            if user == self.bot_user_id:
                error = "cant_invite_self"
            elif user not in self._users:
                error = "user_not_found"
            elif user in channel["members"]:
                error = "already_in_channel"
            if error:
                raise SlackError(error, errors=[{"user": user, "ok": False, "error": error}])

    def _conversations_join(self, args: dict) -> dict:
        channel = self._conversation(args)
        if channel["is_private"]:
            raise SlackError("method_not_supported_for_channel_type")
        already = self.bot_user_id in channel["members"]
        channel["members"].add(self.bot_user_id)
        answer = {"channel": self._channel_object(channel)}
        return {**answer, "warning": "already_in_channel"} if already else answer

    def _conversations_open(self, args: dict) -> dict:
        """A DM with one user (im:write); Slack answers already_open when it exists."""
        self._require_scope("im:write")
        users = [u.strip() for u in (args.get("users") or "").split(",") if u.strip()]
        if not users and not args.get("channel"):
            raise SlackError("users_list_not_supplied")
        if len(users) > 8:
            raise SlackError("too_many_users")
        if len(users) > 1:
            raise SlackError("invalid_arguments", "[ERROR] this fake opens DMs with one user")
        if users[0] not in self._users:
            raise SlackError("user_not_found")
        already = any(c["is_im"] and c.get("user") == users[0] for c in self._channels.values())
        channel = self._channels[self._dm_channel(users[0])]
        shown = (
            self._channel_object(channel) if _flag(args.get("return_im")) else {"id": channel["id"]}
        )
        return {"channel": shown, **({"no_op": True, "already_open": True} if already else {})}

    def _conversations_archive(self, args: dict) -> dict:
        """Slack: a bot archives a channel it is in (channels:manage, groups:write for a
        private one); never #general, never a DM; twice is already_archived."""
        channel = self._conversation(args)
        if channel["is_im"]:
            raise SlackError("method_not_supported_for_channel_type")
        self._require_scope("groups:write" if channel["is_private"] else "channels:manage")
        if channel["name"] == "general":
            raise SlackError("cant_archive_general")
        if channel["archived"]:
            raise SlackError("already_archived")
        if self.bot_user_id not in channel["members"]:
            raise SlackError("not_in_channel")
        channel["archived"] = True
        return {}

    def _conversations_info(self, args: dict) -> dict:
        return {"channel": self._channel_object(self._conversation(args))}

    def _conversations_list(self, args: dict) -> dict:
        types = (args.get("types") or "public_channel").split(",")
        wanted = [c for c in self._channels.values() if not c["is_im"]]
        wanted = [
            c
            for c in wanted
            if ("private_channel" if c["is_private"] else "public_channel") in types
        ]
        start, limit = int(args.get("cursor") or 0), int(args.get("limit") or 100)
        page = wanted[start : start + limit]
        next_cursor = str(start + limit) if start + limit < len(wanted) else ""
        channels = [self._channel_object(c) for c in page]
        return {"channels": channels, "response_metadata": {"next_cursor": next_cursor}}

    def _users_info(self, args: dict) -> dict:
        user = self._users.get(args.get("user") or "")
        if user is None:
            raise SlackError("user_not_found")
        return {"user": copy.deepcopy(user)}

    def _usergroups_list(self, args: dict) -> dict:
        groups = copy.deepcopy(list(self._usergroups.values()))
        for group in groups:
            group["user_count"] = len(group["users"])
            if not _flag(args.get("include_users")):
                del group["users"]
        return {"usergroups": groups}

    def _usergroups_users_list(self, args: dict) -> dict:
        group_id = args.get("usergroup")
        if not group_id:
            raise SlackError("invalid_arguments", "[ERROR] missing required field: usergroup")
        group = self._usergroups.get(group_id)
        if group is None:
            raise SlackError("no_such_subteam")
        return {"users": list(group["users"])}

    # -- response_url

    def serve_response_url(self, url_id: str, body: bytes) -> tuple[int, str]:
        """(status, text) for a post to a response_url; Slack answers "ok" or an error word."""
        url = f"{self.root}/response/{url_id}"
        with self._lock:
            try:
                payload = self._accept_response(url_id, body)
                status, answer, args = 200, {"ok": True}, {**payload, "url": url}
                self._responses.append((url, payload))
            except SlackError as exc:
                status, answer, args = exc.status, exc.body(), {"url": url}
            self._calls.append(Call("response_url", args, status, answer, time.monotonic()))
        return status, "ok" if status == 200 else answer["error"]

    def _accept_response(self, url_id: str, body: bytes) -> dict:
        entry = self._response_urls.get(url_id)
        if entry is None:
            raise SlackError("invalid_url", status=404)
        if self.now() - entry["issued"] > self.response_url_ttl:
            raise SlackError("expired_url", status=404)
        if entry["uses"] >= self.response_url_max_uses:
            raise SlackError("used_url", status=404)
        payload = _response_payload(body)
        if payload.get("blocks") is not None:
            payload["blocks"] = _response_blocks(payload["blocks"])
        entry["uses"] += 1
        self._show_response(entry, payload)
        return payload

    def _show_response(self, entry: dict, payload: dict) -> None:
        """Make a response_url post visible where Slack would show it."""
        channel_id, ts = entry["channel"], entry["message_ts"]
        original = next((m for m in self._messages.get(channel_id, []) if m["ts"] == ts), None)
        if original and _flag(payload.get("delete_original")):
            self._messages[channel_id].remove(original)
        elif original and _flag(payload.get("replace_original")):
            self._edit(original, payload.get("text", ""), payload.get("blocks", []))
        elif channel_id and payload.get("response_type") == "in_channel":
            self._post(channel_id, payload.get("text"), payload.get("blocks"), payload)
        elif channel_id:
            text, blocks, thread_ts = (payload.get(k) for k in ("text", "blocks", "thread_ts"))
            self._add_ephemeral(channel_id, entry["user"], text, blocks, thread_ts)


class _Throttled(Exception):
    def __init__(self, retry_after: int):
        super().__init__(retry_after)
        self.retry_after = retry_after


def _response_payload(body: bytes) -> dict:
    try:
        payload = json.loads(body or b"{}")
    except ValueError:
        raise SlackError("invalid_payload", status=400) from None
    if not isinstance(payload, dict):
        raise SlackError("invalid_payload", status=400)
    wants_content = not _flag(payload.get("delete_original"))
    if wants_content and not payload.get("text") and not payload.get("blocks"):
        raise SlackError("no_text", status=400)
    return payload


def _response_blocks(blocks: object) -> list[dict]:
    try:
        return check_blocks(blocks, limit=MESSAGE_BLOCK_LIMIT)
    except SlackError as exc:
        # Slack's response_url answers HTTP 400 with the bare error word.
        raise SlackError("invalid_blocks", *exc.messages, status=400) from None


def _presented_token(args: dict, authorization: str) -> str:
    """The token a call carries: the Authorization header, else the token argument."""
    token = args.pop("token", None)
    if authorization.startswith("Bearer "):
        token = authorization.removeprefix("Bearer ")
    if not token:
        raise SlackError("not_authed")
    return token


def public_message(message: dict) -> dict:
    """A stored message as Slack serves it (without the fake's bookkeeping)."""
    return {k: copy.deepcopy(v) for k, v in message.items() if k not in INTERNAL_MESSAGE_KEYS}


def check_channel_name(name: str) -> None:
    """Slack: lowercase letters, digits, hyphens, underscores; at most 80 characters."""
    if not name:
        raise SlackError("invalid_name_required")
    if len(name) > CHANNEL_NAME_MAX:
        raise SlackError("invalid_name_maxlength")
    if not CHANNEL_NAME_RE.match(name):
        raise SlackError("invalid_name_specials")
    if not re.search(r"[a-z0-9]", name):
        raise SlackError("invalid_name_punctuation")


def parse_args(query: str, body: bytes, content_type: str) -> dict:
    """Query string plus a form or JSON body (slack_sdk sends both kinds)."""
    args = {k: v[-1] for k, v in parse_qs(query, keep_blank_values=True).items()}
    if content_type.startswith("application/json"):
        try:
            decoded = json.loads(body or b"{}")
        except ValueError:
            raise SlackError("invalid_json") from None
        if not isinstance(decoded, dict):
            raise SlackError("json_not_object")
        return {**args, **decoded}
    form = parse_qs(body.decode("utf-8"), keep_blank_values=True)
    return {**args, **{k: v[-1] for k, v in form.items()}}


def decode_json_fields(args: dict) -> None:
    """Form bodies carry blocks/view/attachments/chunks as JSON strings."""
    for key in JSON_FIELDS:
        if isinstance(args.get(key), str):
            try:
                args[key] = json.loads(args[key])
            except ValueError:
                error = "invalid_blocks_format" if key == "blocks" else "invalid_arguments"
                raise SlackError(error, f"[ERROR] {key} is not valid JSON") from None


# ---------------------------------------------------------------- HTTP


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128  # bursts of concurrent calls from the bot's worker threads


class _Handler(BaseHTTPRequestHandler):
    fake: FakeSlack
    server_version = "FakeSlack/1.0"

    def do_POST(self) -> None:
        self._route()

    def do_GET(self) -> None:
        self._route()

    def log_message(self, format: str, *args: object) -> None:
        """Quiet: the recorded calls are the log."""

    def _route(self) -> None:
        parts = urlsplit(self.path)
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        try:
            if parts.path.startswith("/api/"):
                self._api(parts.path.removeprefix("/api/"), parts.query, body)
            elif parts.path.startswith("/response/"):
                status, text = self.fake.serve_response_url(
                    parts.path.removeprefix("/response/"), body
                )
                self._send(status, text.encode(), "text/html")
            elif self.fake.page is not None:
                status, content_type, payload = self.fake.page.serve(
                    self.command, parts.path, parts.query, body
                )
                self._send(status, payload, content_type)
            else:
                self._send(404, b"not found", "text/plain")
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up (a timeout test); the call is recorded anyway

    def _api(self, method: str, query: str, body: bytes) -> None:
        headers = {k: v for k, v in self.headers.items()}
        status, response, extra = self.fake.serve_api(method, query, body, headers)
        if status >= 500:
            # Slack's edge answers 5xx with an HTML page, not JSON.
            page = f"<html><body><h1>{status} Server Error</h1></body></html>".encode()
            self._send(status, page, "text/html")
        else:
            payload = json.dumps(response).encode()
            self._send(status, payload, "application/json; charset=utf-8", extra)

    def _send(
        self, status: int, payload: bytes, content_type: str, extra: dict | None = None
    ) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(payload)))
        for name, value in (extra or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(payload)


__all__ = ["Call", "FakeSlack", "RateLimit", "SlackError"]
