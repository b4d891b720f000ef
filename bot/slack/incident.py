"""The incident log in Slack: a notice in #engineering, an incident channel, one live status
message per operation edited in place, and every audited event as a thread reply.

The engine calls ``IncidentLog.__call__`` for each event, on the engine's thread; it only
enqueues. Each operation has one ``OperationFeed`` thread that sends, in order, paced, and
coalesces status edits to at most one per ``edit_interval`` seconds; the last state is
always sent (Slack: chat.update is Tier 3; docs/reference/slack-platform.md).
"""

from __future__ import annotations

import logging
import queue
import re
import threading
import time
from collections.abc import Callable
from datetime import datetime

from slack_sdk.errors import SlackApiError

from bot.checklists import CHECKLISTS
from bot.clock import iso, shown_utc, utcnow
from bot.engine.engine import Engine
from bot.engine.model import BOT_ACTOR, Event
from bot.engine.outcome import CHANGED_STATES
from bot.settings import Config, Environment
from bot.slack import views
from bot.slack.blocks import with_mentions
from bot.slack.cards import is_notify_card, render_card
from bot.slack.channels import IncidentChannels
from bot.slack.directory import Directory
from bot.slack.outbox import Outbox, SlackUnavailable
from bot.slack.reach import ApproverReach
from bot.slack.stream import StepStreams
from bot.store import Store, StoreClosed
from bot.store.records import EventKind, Operation, OperationStatus, StepStatus

log = logging.getLogger(__name__)

_WAKE = ("wake", None)
_LINE = "line"


class OperationFeed:
    """One sender thread per operation: tasks in order, thread lines batched, status
    edits coalesced."""

    def __init__(
        self,
        op_id: str,
        send_lines: Callable[[list], None],
        render_status: Callable[[], bool],
        interval: float,
        on_idle: Callable[[str], None],
    ):
        self.op_id = op_id
        self.send_lines = send_lines
        self.render_status = render_status
        self.interval = interval
        self.on_idle = on_idle
        self._q: queue.Queue = queue.Queue()
        self._dirty = False
        self._closing = False
        self._last_edit = 0.0
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._run, name=f"feed-{op_id}", daemon=True)
        self._thread.start()

    def join(self, timeout: float) -> None:
        self._thread.join(timeout)

    def put(self, kind: str, payload) -> None:
        self._q.put((kind, payload))

    def touch(self, closing: bool = False) -> None:
        with self._lock:
            wake = not self._dirty
            self._dirty = True
            self._closing = self._closing or closing
        if wake:
            self._q.put(_WAKE)

    def _run(self) -> None:
        held = None
        while True:
            task = held or self._next_task()
            held = None
            if task is not None and task is not _WAKE:
                kind, payload = task
                if kind == _LINE:
                    lines, held = self._drain_lines([payload])
                    self._safely(lambda lines=lines: self.send_lines(lines))
                else:
                    self._safely(payload)
            self._maybe_edit()
            with self._lock:
                done = self._closing and not self._dirty and self._q.empty() and held is None
            if done:
                self.on_idle(self.op_id)
                return

    def _next_task(self):
        with self._lock:
            timeout = None
            if self._dirty:
                timeout = max(0.0, self._last_edit + self.interval - time.monotonic())
        try:
            return self._q.get(timeout=timeout)
        except queue.Empty:
            return None

    def _drain_lines(self, lines: list):
        """Consecutive thread lines waiting in the queue become one reply (fewer posts
        against chat.postMessage's per-channel limit, same content)."""
        held = None
        while True:
            try:
                nxt = self._q.get_nowait()
            except queue.Empty:
                break
            if nxt is _WAKE:
                continue
            if nxt[0] != _LINE:
                held = nxt
                break
            lines.append(nxt[1])
        return lines, held

    def _maybe_edit(self) -> None:
        with self._lock:
            due = self._dirty and time.monotonic() >= self._last_edit + self.interval
            if due:
                self._dirty = False
        if due:
            sent = self._safely(self.render_status)
            self._last_edit = time.monotonic()
            if sent is False:  # no status message yet: try again later
                with self._lock:
                    self._dirty = True

    def _safely(self, fn):
        try:
            return fn()
        except (SlackApiError, SlackUnavailable) as error:
            log.error("operation %s: Slack call failed: %s", self.op_id, error)
        except StoreClosed:
            # The bot is shutting down and closed the store under a feed that was still
            # sending: the store has the whole story; the thread line can wait.
            log.info("operation %s: store closed, feed stops", self.op_id)
            with self._lock:
                self._closing, self._dirty = True, False
            while not self._q.empty():
                self._q.get_nowait()
        return None


# chat.postEphemeral's errors for a user it cannot show the message to in that channel.
_NOT_SHOWN_THERE = frozenset({"user_not_in_channel", "channel_not_found", "not_in_channel"})


class IncidentLog:
    def __init__(
        self, engine: Engine, store: Store, config: Config, outbox: Outbox, directory: Directory
    ):
        self.engine = engine
        self.store = store
        self.config = config
        self.outbox = outbox
        self.directory = directory
        self.streams = StepStreams(outbox, self._team_id)
        self.reach = ApproverReach(engine, store, config, outbox, directory)
        self.channels = IncidentChannels(store, config, outbox)
        self._team: str | None = None
        self._feeds: dict[str, OperationFeed] = {}
        self._progress: dict[str, dict] = {}
        self._lock = threading.Lock()

    # --- engine listener ------------------------------------------------------------

    def __call__(self, event: Event) -> None:
        feed = self._feed(event.operation_id)
        if event.kind == EventKind.PROGRESS:
            self._progress[event.operation_id] = {
                "step_id": event.step_id,
                "message": event.message,
                **event.detail,
            }
        elif event.kind == EventKind.STARTED or (
            event.kind == EventKind.RESUMED and not self._opened(event)
        ):
            # After a crash before the incident was opened, the restart opens it.
            feed.put("task", lambda: self._open_incident(event))
        elif event.kind == EventKind.FOR_REQUESTER:
            feed.put("task", lambda: self._for_requester(event))
        elif event.audited:
            if event.kind != EventKind.CARD:  # a card is posted whole by its follow-up
                feed.put(_LINE, (event.at, event.message))
            follow_up = self._follow_ups.get(event.kind)
            if follow_up:
                feed.put("task", lambda f=follow_up: f(self, event))
        feed.touch(closing=event.kind == EventKind.FINISHED)

    def _opened(self, event: Event) -> bool:
        op = self.store.operation(event.operation_id)
        return bool(op and op.status_ts)

    def _feed(self, op_id: str) -> OperationFeed:
        with self._lock:
            feed = self._feeds.get(op_id)
            if feed is None:
                feed = OperationFeed(
                    op_id,
                    lambda lines: self._thread_lines(op_id, lines),
                    lambda: self._edit_status(op_id),
                    self.config.progress_edit_interval_seconds,
                    self._idle,
                )
                self._feeds[op_id] = feed
            return feed

    def _idle(self, op_id: str) -> None:
        with self._lock:
            self._feeds.pop(op_id, None)
            self._progress.pop(op_id, None)

    def close(self, timeout: float = 10) -> None:
        """At shutdown: every feed sends what it holds, then stops."""
        with self._lock:
            feeds = list(self._feeds.values())
        for feed in feeds:
            feed.touch(closing=True)
        for feed in feeds:
            feed.join(timeout)

    def wait_idle(self, op_id: str, timeout: float = 30) -> bool:
        """For tests and shutdown: waits until the operation's feed has sent everything."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._lock:
                if op_id not in self._feeds:
                    return True
            time.sleep(0.02)
        return False

    # --- opening the incident -------------------------------------------------------

    def _open_incident(self, event: Event) -> None:
        op = self.store.operation(event.operation_id)
        env = self.config.environment(op.environment)
        in_thread = self.channels.in_thread(op)
        channel, problem = (
            (env.notify_channel, None) if in_thread else self._incident_channel(op, env)
        )
        status = self.outbox.post(channel, self._status(op))
        self.store.set_incident_thread(op.id, status["channel"], status["ts"])
        lines = [(event.at, event.message)]
        if problem:
            lines.append((utcnow(), problem))
        self._thread_lines(op.id, lines)
        notice = (  # a drill in a thread: its status message is the notice
            status
            if in_thread
            else self.outbox.post(env.notify_channel, views.notify_message(op, status["channel"]))
        )
        self.store.set_notice(op.id, notice["channel"], notice["ts"])
        self.engine.tick_by_bot(
            op.id,
            "before",
            "notify",
            f"posted in {env.notify_channel} at {shown_utc(event.at, 'time')}",
        )

    def _incident_channel(self, op: Operation, env: Environment) -> tuple[str, str | None]:
        """The channel, and what went wrong if it is not the operation's own. Which channel
        is the environment's policy (configured, one reused, else one made per operation,
        private for a protected environment); when no channel can be made the incident (and
        so every approval request) goes to the notify channel, loudly, rather than waiting
        where no approver can see it."""
        if env.incident_channel:
            return env.incident_channel, None
        try:
            return self.channels.reuse(op, env) or self._create_channel(op, env), None
        except (SlackApiError, SlackUnavailable) as error:
            reason = error.response.get("error") if isinstance(error, SlackApiError) else error
            log.error(
                "operation %s: could not create its incident channel (%s); its incident"
                " thread and approval requests go to %s",
                op.id,
                reason,
                env.notify_channel,
            )
            return env.notify_channel, (
                f":warning: Could not create an incident channel ({reason}): this operation's"
                f" thread and approval requests are here in {env.notify_channel}."
            )

    def _create_channel(self, op: Operation, env: Environment) -> str:
        reused_name = self.channels.name(env)
        base = reused_name or _channel_name(op)
        # An operation's name carries its id: taken only if a crash came between create and
        # record. The environment's reused name is taken again when someone archived it.
        for attempt in range(1, 10 if reused_name else 4):
            name = base if attempt == 1 else f"{base[:77]}-{attempt}"
            try:
                resp = self.outbox.call(
                    lambda n=name: self.outbox.client.conversations_create(
                        name=n, is_private=env.private_incident_channel
                    ),
                    "conversations.create",
                )
            except SlackApiError as error:
                if error.response.get("error") == "name_taken":
                    continue
                raise
            channel = resp["channel"]["id"]
            self.channels.created(op, env, channel)
            if op.requester != BOT_ACTOR:  # a scheduled review (retention) has no person to invite
                self._invite(channel, op.requester)
            return channel
        raise SlackUnavailable(f"the incident channel names {base}(-2, -3, ...) are all taken")

    def _invite(self, channel: str, user: str) -> None:
        try:
            self.outbox.call(
                lambda: self.outbox.client.conversations_invite(channel=channel, users=user),
                "conversations.invite",
            )
        except SlackApiError as error:
            if error.response.get("error") != "already_in_channel":
                log.warning("could not invite %s: %s", user, error.response.get("error"))

    # --- thread and status ----------------------------------------------------------

    def _thread_lines(self, op_id: str, lines: list[tuple[datetime, str]]) -> None:
        op = self.store.operation(op_id)
        if not op or not op.status_ts:
            return
        people = self._people(op)
        text = "\n".join(views.timeline_line(iso(at), with_mentions(m, people)) for at, m in lines)
        self.outbox.post(op.incident_channel, {"text": text[:39000]}, thread_ts=op.status_ts)

    def _people(self, op: Operation) -> set[str]:
        """Whose mentions stay live in what the bot writes about the operation: its
        requester and whoever acted on it (a mention inside quoted data, a reason or a
        database's error, of anyone else stays text)."""
        return {op.requester} | {a.actor for a in self.store.audit(op.id) if a.actor}

    def _status(self, op: Operation) -> dict:
        checklists = {
            n: self.store.checklist(op.id, n)
            for n in ("before", "after")
            if self.store.checklist(op.id, n)
        }
        return views.status_message(
            op, self.store.steps(op.id), checklists, self._progress.get(op.id), self._people(op)
        )

    def _edit_status(self, op_id: str) -> bool:
        op = self.store.operation(op_id)
        if not op or not op.status_ts:
            return False
        self.outbox.update(op.incident_channel, op.status_ts, self._status(op))
        progress = self._progress.get(op_id)
        step = progress and self.store.step(op_id, progress["step_id"])
        if step and step.status == StepStatus.RUNNING:
            self.streams.update(op, step.step_id, step.title, _progress_text(progress))
        return True

    def _team_id(self) -> str:
        if self._team is None:
            self._team = self.outbox.call(self.outbox.client.auth_test, "auth.test")["team_id"]
        return self._team

    # --- follow-ups to particular events --------------------------------------------

    def _approval_requested(self, event: Event) -> None:
        op = self.store.operation(event.operation_id)
        env = self.config.environment(op.environment)
        approval = self.store.approval(event.detail["approval_id"])
        msg = views.approval_request(op, approval, self.directory.mentions(env.approvers))
        channel = op.incident_channel or env.notify_channel
        if not op.incident_channel:
            log.error("operation %s: no incident channel; approval request in %s", op.id, channel)
        thread = op.status_ts if self.channels.in_thread(op) else None
        try:
            resp = self.outbox.post(channel, msg, thread_ts=thread)
        except (SlackApiError, SlackUnavailable):
            log.error(
                "operation %s: its approval request could not be posted in %s: no approver"
                " has been asked; the operation waits until it is cancelled",
                op.id,
                channel,
            )
            raise
        self.store.set_approval_message(approval.id, resp["channel"], resp["ts"])
        self.reach.requested(op, approval, msg)

    def _approval_decided(self, event: Event) -> None:
        approval = self.store.approval(event.detail["approval_id"])
        if not approval or not approval.message_ts:
            return
        op = self.store.operation(approval.operation_id)
        env = self.config.environment(op.environment)
        msg = views.approval_request(op, approval, self.directory.mentions(env.approvers))
        self.outbox.update(approval.channel, approval.message_ts, msg)
        self.reach.decided(op, approval)

    def _approval_reminder(self, event: Event) -> None:
        approval = self.store.approval(event.detail["approval_id"])
        self.reach.remind(self.store.operation(approval.operation_id), approval)

    def _step_ended(self, event: Event) -> None:
        op = self.store.operation(event.operation_id)
        step = self.store.step(op.id, event.step_id)
        ok = event.kind == EventKind.STEP_SUCCEEDED
        self.streams.finish(
            op, step.step_id, step.title, ok, step.detail if ok else step.error or ""
        )

    def _card(self, event: Event) -> None:
        op = self.store.operation(event.operation_id)
        message = render_card(op, event.detail["card"], event.message, event.detail["data"])
        if is_notify_card(event.detail["card"]):
            env = self.config.environment(op.environment)
            self.outbox.post(op.notify_channel or env.notify_channel, message)
            return
        key = event.detail["data"].get("card_key")
        where = self.store.card_message(key) if key else None
        if where is not None:  # a card that changes (the cleanup's, the switch's): edited
            self.outbox.update(*where, message)
            return
        resp = self.outbox.post(op.incident_channel, message, thread_ts=op.status_ts)
        if key and resp:
            self.store.set_card_message(key, resp["channel"], resp["ts"])

    def _for_requester(self, event: Event) -> None:
        """Output only the requester may see (sample rows before approval): ephemeral, in
        the incident thread, never in its history or the audit log. Slack shows an
        ephemeral message only to a member of the channel; a requester who is not in a
        configured incident channel gets it as a direct message from the bot instead."""
        op = self.store.operation(event.operation_id)
        message = render_card(op, event.detail["card"], event.message, event.detail["data"])
        user = event.detail["user"]
        try:
            self.outbox.ephemeral(op.incident_channel, user, message, thread_ts=op.status_ts)
        except SlackApiError as error:
            if error.response.get("error") not in _NOT_SHOWN_THERE:
                raise
            self.outbox.post(user, message)  # the app's DM with them: still theirs alone

    def _decision_requested(self, event: Event) -> None:
        op = self.store.operation(event.operation_id)
        decision = self.store.decision(event.detail["decision_id"])
        resp = self.outbox.post(op.incident_channel, views.decision_message(op, decision))
        self.store.set_decision_message(decision.id, resp["channel"], resp["ts"])

    def _decision_made(self, event: Event) -> None:
        decision = self.store.decision(event.detail["decision_id"])
        if decision and decision.message_ts:
            op = self.store.operation(decision.operation_id)
            self.outbox.update(
                decision.channel, decision.message_ts, views.decision_message(op, decision)
            )

    def _gate_waiting(self, event: Event) -> None:
        if event.detail.get("gate") != OperationStatus.WAITING_CHECKLIST:
            return
        op = self.store.operation(event.operation_id)
        msg = views.checklist_prompt(
            op,
            "before",
            "A destructive step is next: complete the before-rollback checklist first.",
        )
        self.outbox.post(op.incident_channel, msg, thread_ts=op.status_ts)

    def _finished(self, event: Event) -> None:
        op = self.store.operation(event.operation_id)
        self.channels.schedule_archive(op)
        if op.notify_ts and op.notify_ts != op.status_ts:  # a drill's thread has it already
            text = with_mentions(event.message, self._people(op))
            self.outbox.post(op.notify_channel, {"text": text}, thread_ts=op.notify_ts)
        if event.detail.get("status") in CHANGED_STATES and self.store.checklist(op.id, "after"):
            msg = views.checklist_prompt(
                op,
                "after",
                f"{CHECKLISTS['after'].intro} tick the after-rollback checklist as you go.",
            )
            self.outbox.post(op.incident_channel, msg, thread_ts=op.status_ts)

    _follow_ups = {
        EventKind.APPROVAL_REQUESTED: _approval_requested,
        EventKind.APPROVAL_GRANTED: _approval_decided,
        EventKind.APPROVAL_DENIED: _approval_decided,
        EventKind.APPROVAL_EXPIRED: _approval_decided,
        EventKind.APPROVAL_SUPERSEDED: _approval_decided,
        EventKind.APPROVAL_REMINDER: _approval_reminder,
        EventKind.GATE_WAITING: _gate_waiting,
        EventKind.DECISION_REQUESTED: _decision_requested,
        EventKind.CARD: _card,
        EventKind.DECISION_MADE: _decision_made,
        EventKind.DECISION_EXPIRED: _decision_made,
        EventKind.STEP_SUCCEEDED: _step_ended,
        EventKind.STEP_FAILED: _step_ended,
        EventKind.FINISHED: _finished,
    }


def _progress_text(progress: dict) -> str:
    total = progress.get("total") or 0
    share = f"{int(100 * progress.get('done', 0) / total)}% " if total else ""
    return f"{share}{progress.get('message') or ''}".strip()


def _channel_name(op: Operation) -> str:
    """inc-20261126-rollback-<runbook>-<environment>-<the operation id's own suffix>:
    lowercase, digits, hyphens, at most 80 characters (Slack's rules for
    conversations.create). The operation id makes it unique, so names cannot run out (with
    -2 ... -9 a day, nine cancelled operations silenced the tenth's approval)."""
    slug = re.sub(r"[^a-z0-9-]+", "-", f"{op.runbook}-{op.environment}".lower()).strip("-")
    unique = re.sub(r"[^a-z0-9]+", "", op.id.rsplit("-", 1)[-1].lower())
    head = f"inc-{utcnow():%Y%m%d}-rollback-"
    return f"{head}{slug[: 80 - len(head) - len(unique) - 1]}-{unique}"
