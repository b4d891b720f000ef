"""Approvers are reached, not just mentioned: in Slack an @-mention of someone outside a
channel does not reach them. When an approval is requested, the environment's approvers are
invited to the incident channel the bot made, each gets the request in a direct message with
its Approve / Deny buttons (the same buttons, the same checks: the engine decides, bound to
the plan's hash), and the notify channel's notice says whose approval is needed. A decision
updates every copy; reminders come by DM while it is pending (docs/reference/
slack-platform.md: conversations.open needs im:write, conversations.invite groups:write for a
private channel).
"""

from __future__ import annotations

import logging

from slack_sdk.errors import SlackApiError

from bot.clock import shown_utc
from bot.engine.engine import Engine
from bot.settings import Config
from bot.slack import views
from bot.slack.directory import Directory
from bot.slack.outbox import Outbox, SlackUnavailable
from bot.store import Store
from bot.store.records import Approval, ApprovalStatus, Operation

log = logging.getLogger(__name__)


class ApproverReach:
    def __init__(
        self, engine: Engine, store: Store, config: Config, outbox: Outbox, directory: Directory
    ):
        self.engine, self.store, self.config = engine, store, config
        self.outbox, self.directory = outbox, directory

    def approvers(self, op: Operation) -> list[str]:
        """Everyone who may approve, never the requester (they cannot)."""
        env = self.config.environment(op.environment)
        return sorted(self.engine.resolve_principals(env.approvers) - {op.requester})

    def requested(self, op: Operation, approval: Approval, message: dict) -> None:
        """After the request was posted in the incident channel: invite, DM, notice."""
        users = self.approvers(op)
        if op.incident_channel and self._bot_made(op):
            for user in users:
                invite(self.outbox, op.incident_channel, user)
        for user in users:
            self._send_copy(approval, user, message)
        self.notice(op, approval)

    def decided(self, op: Operation, approval: Approval) -> None:
        """Every approver's copy says what happened (an expired one without the requester's
        "Request approval again" button: an approver's click on it could only be refused)."""
        env = self.config.environment(op.environment)
        mentions = self.directory.mentions(env.approvers)
        message = views.approval_request(op, approval, mentions, approver_copy=True)
        for channel, ts in self.store.approval_copies(approval.id):
            self._safely(lambda c=channel, t=ts: self.outbox.update(c, t, message), "update")
        self.notice(op, approval)

    def remind(self, op: Operation, approval: Approval) -> None:
        text = (
            f":bell: Reminder: <@{op.requester}> still needs an approval for `{op.id}`"
            f" ({views.runbook_name(op.runbook)} on {op.environment}), requested"
            f" {shown_utc(approval.requested_at, 'time')}, expires"
            f" {shown_utc(approval.expires_at, 'time')}. The request with its buttons is above."
        )
        for channel, _ts in self.store.approval_copies(approval.id):
            self._safely(lambda c=channel: self.outbox.post(c, {"text": text}), "remind")

    def notice(self, op: Operation, approval: Approval) -> None:
        """The notify channel's notice says whose approval is needed while one is pending
        (not when the notice is the drill's own status message in a thread)."""
        if not op.notify_ts or op.notify_ts == op.status_ts:
            return
        env = self.config.environment(op.environment)
        needed = (
            self.directory.mentions(env.approvers)
            if approval.status == ApprovalStatus.PENDING
            else None
        )
        message = views.notify_message(op, op.incident_channel, approval_needed=needed)
        self._safely(lambda: self.outbox.update(op.notify_channel, op.notify_ts, message), "notice")

    def _send_copy(self, approval: Approval, user: str, message: dict) -> None:
        def send() -> None:
            opened = self.outbox.call(
                lambda: self.outbox.client.conversations_open(users=user), "conversations.open"
            )
            posted = self.outbox.post(opened["channel"]["id"], message)
            self.store.add_approval_copy(approval.id, posted["channel"], posted["ts"])

        self._safely(send, f"DM {user}")

    def _bot_made(self, op: Operation) -> bool:
        return op.incident_channel in (
            self.store.operation_channel(op.id),
            self.store.reused_channel(op.environment),
        )

    def _safely(self, fn, what: str) -> None:
        """One approver's DM failing (deactivated, DMs restricted) must not stop the others."""
        try:
            fn()
        except (SlackApiError, SlackUnavailable) as error:
            detail = error.response.get("error") if isinstance(error, SlackApiError) else error
            log.warning("approval %s: %s", what, detail)


def invite(outbox: Outbox, channel: str, user: str) -> None:
    """Into a channel the bot made; someone already there is fine."""
    try:
        outbox.call(
            lambda: outbox.client.conversations_invite(channel=channel, users=user),
            "conversations.invite",
        )
    except SlackApiError as error:
        if error.response.get("error") != "already_in_channel":
            log.warning("could not invite %s: %s", user, error.response.get("error"))
