"""Incident channels that stay tidy: private ones for protected environments (their plans
and dry runs are not for everyone), one channel reused per environment when configured,
drills in a thread of the notify channel instead of a channel of their own, and channels
the bot created for one operation archived a while after it ended, with the incident
report posted there first (conversations.archive: channels:manage, groups:write for a
private channel; docs/reference/slack-platform.md)."""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import timedelta

from slack_sdk.errors import SlackApiError

from bot.clock import iso, utcnow
from bot.engine.model import BOT_ACTOR
from bot.incident_report import incident_report
from bot.settings import Config, Environment
from bot.slack import views
from bot.slack.outbox import Outbox
from bot.store import Store
from bot.store.records import JobKind, Operation, ScheduledJob

log = logging.getLogger(__name__)


class IncidentChannels:
    def __init__(self, store: Store, config: Config, outbox: Outbox):
        self.store, self.config, self.outbox = store, config, outbox
        # The scheduler's sync (set by bot/app.py): an archive job is picked up at once.
        self.sync: Callable[[], None] = lambda: None

    def in_thread(self, op: Operation) -> bool:
        return op.runbook == "drill" and self.config.drills_in_thread

    def reuse(self, op: Operation, env: Environment) -> str | None:
        """The environment's own channel, when configured and the bot made one that is still
        live; the requester is invited (again)."""
        if not env.reuse_incident_channel:
            return None
        channel = self.store.reused_channel(env.name)
        if channel is None or op.requester == BOT_ACTOR:  # a scheduled review: nobody to invite
            return channel
        try:
            self.outbox.call(
                lambda: self.outbox.client.conversations_invite(
                    channel=channel, users=op.requester
                ),
                "conversations.invite",
            )
        except SlackApiError as error:
            if error.response.get("error") != "already_in_channel":
                # Archived or deleted by someone: a new one is made.
                log.warning("channel %s cannot be reused: %s", channel, error.response["error"])
                self.store.channel_archived(channel)
                return None
        return channel

    def name(self, env: Environment) -> str | None:
        """A reused channel is the environment's, not one operation's."""
        return f"rollback-{env.name}" if env.reuse_incident_channel else None

    def created(self, op: Operation, env: Environment, channel: str) -> None:
        reused = env.reuse_incident_channel
        self.store.add_bot_channel(channel, env.name, None if reused else op.id, reused)

    def schedule_archive(self, op: Operation) -> None:
        channel = self.store.operation_channel(op.id)
        if channel is None:
            return  # configured, reused or a thread: not the bot's to archive
        at = utcnow() + timedelta(seconds=self.config.archive_after_seconds)
        self.store.schedule_job(
            ScheduledJob(
                id=f"archive-channel:{op.id}",
                operation_id=op.id,
                kind=JobKind.ARCHIVE_CHANNEL,
                run_at=iso(at),
                payload={"channel": channel},
            )
        )
        self.sync()

    def archive_due(self, op_id: str | None, payload: dict) -> None:
        """The scheduled job: the incident report goes into the channel, then it is archived
        (still readable and searchable; nobody can post to it)."""
        channel = payload["channel"]
        try:
            for message in views.report_messages(op_id, incident_report(self.store, op_id)):
                self.outbox.post(channel, message)
            self.outbox.call(
                lambda: self.outbox.client.conversations_archive(channel=channel),
                "conversations.archive",
            )
        except SlackApiError as error:
            if error.response.get("error") not in ("already_archived", "is_archived"):
                log.warning("could not archive %s: %s", channel, error.response.get("error"))
                return
        self.store.channel_archived(channel)


def report_target(store: Store, op: Operation) -> tuple[str, str | None]:
    """Where `/rollback report` posts: the operation's own channel, else its thread (a
    reused channel, a drill's thread, a configured channel), else the notify channel's
    thread once its channel is archived."""
    own = store.operation_channel(op.id)
    if own:
        return own, None
    if op.incident_channel and op.status_ts and not store.is_archived(op.incident_channel):
        return op.incident_channel, op.status_ts
    return op.notify_channel, op.notify_ts
