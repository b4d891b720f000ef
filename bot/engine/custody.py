"""Who holds an environment, and how it is freed when that person is gone: an approver of the
environment may cancel its operation or take it over (become its requester, with a reason,
audited), approvers are reminded of a pending approval, and an operation waiting on a
person with nothing done for the configured idle time is stopped by the scheduler. No
environment is held hostage by someone offline.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from bot.clock import iso, parse_iso, shown_utc
from bot.engine.model import BOT_ACTOR
from bot.errors import ConflictError, PermissionDenied, UserError
from bot.store.records import (
    FINAL_STATES,
    Approval,
    ApprovalStatus,
    EventKind,
    JobKind,
    Operation,
    OperationStatus,
    ScheduledJob,
)
from bot.text import one_line_reason

if TYPE_CHECKING:
    from bot.engine.engine import Engine

WAITING_ON_A_PERSON = {
    OperationStatus.WAITING_CHECKLIST: "the before-rollback checklist",
    OperationStatus.WAITING_APPROVAL: "an approval",
}
# Reminders are the bot talking to itself: they do not make an operation less idle.
_NOT_ACTIVITY = {EventKind.AFTER_CHECKLIST_REMINDER, EventKind.APPROVAL_REMINDER}


@dataclass(frozen=True)
class Holder:
    operation: Operation
    user: str
    since: str  # when they began holding it: the start, or their takeover


def idle_job_id(op_id: str) -> str:
    return f"idle-timeout:{op_id}"


class Custody:
    def __init__(self, engine: Engine):
        self.engine = engine
        self.store, self.config, self.clock = engine.store, engine.config, engine.clock

    # --- who may act on someone else's operation ------------------------------------

    def is_approver(self, op: Operation, user: str) -> bool:
        env = self.config.environment(op.environment)
        return user in self.engine.resolve_principals(env.approvers)

    def check_may_cancel(self, op: Operation, user: str) -> None:
        if user != op.requester and not self.is_approver(op, user):
            raise PermissionDenied(
                "Only the requester or an approver of this environment can cancel this operation.",
                f"Ask <@{op.requester}> or an approver of {op.environment}.",
                people=(op.requester,),
            )

    def take_over(self, op_id: str, user: str, reason: str) -> Operation:
        """An approver becomes the operation's requester: its gates now ask them, and a
        second person (never them, nor the previous requester) approves what is left."""
        op = self.engine.operation(op_id)
        reason = " ".join((reason or "").split())
        if not self.is_approver(op, user):
            self.store.append_audit(
                op.id, user, EventKind.REQUEST_REFUSED, "takeover refused: not an approver"
            )
            raise PermissionDenied(
                f"Only an approver of {op.environment} can take over this operation.",
                f"Ask <@{op.requester}> or an approver.",
                people=(op.requester,),
            )
        if not reason:
            raise UserError(
                "Say why you take it over: the reason goes into the incident log.",
                f'`/rollback takeover {op_id} --reason "<why>"`',
            )
        reason = one_line_reason(reason)  # one line, capped, no hidden characters
        if user == op.requester:
            raise ConflictError(f"You already hold {op_id}.")
        if op.status in FINAL_STATES or not self.store.take_over(op.id, op.requester, user):
            raise ConflictError(
                f"Operation {op_id} already ended, or someone else took it over.",
                "`/rollback history` shows who holds it and how it stands.",
            )
        # A pending request was the previous requester's: it no longer speaks for the holder.
        for approval in self.store.approvals(op.id):
            if approval.status == ApprovalStatus.PENDING:
                self.engine.gates.supersede(approval, "The operation changed hands.")
        self.engine.emit(
            op.id,
            EventKind.TAKEN_OVER,
            user,
            f"<@{user}> took over from <@{op.requester}>: {reason}",
            detail={"from": op.requester, "to": user, "reason": reason},
        )
        self.engine.walker.kick(op.id)
        return self.engine.operation(op.id)

    def holder(self, environment: str) -> Holder | None:
        op = self.store.active_operation(environment)
        if op is None:
            return None
        since = op.created_at
        for record in self.store.audit(op.id):
            if record.event == EventKind.TAKEN_OVER:
                since = record.at
        return Holder(op, op.requester, since)

    # --- reminders of a pending approval ---------------------------------------------

    def schedule_reminder(self, approval: Approval) -> bool:
        at = self.clock() + timedelta(seconds=self.config.approval_reminder_seconds)
        if at >= parse_iso(approval.expires_at):
            return False
        self.store.schedule_job(
            ScheduledJob(
                id=f"approval-reminder:{approval.id}",
                operation_id=approval.operation_id,
                kind=JobKind.APPROVAL_REMINDER,
                run_at=iso(at),
                payload={"approval_id": approval.id},
            )
        )
        return True

    def remind_approval(self, approval_id: str) -> bool:
        """The scheduled reminder: while the request is pending the approvers are told again
        (by DM, in Slack); True when the next one is scheduled."""
        approval = self.store.approval(approval_id)
        if approval is None or approval.status != ApprovalStatus.PENDING:
            return False
        if self.clock() >= parse_iso(approval.expires_at):
            return False
        self.engine.emit(
            approval.operation_id,
            EventKind.APPROVAL_REMINDER,
            BOT_ACTOR,
            f"Still waiting for an approval (requested {shown_utc(approval.requested_at, 'time')});"
            " the approvers were reminded.",
            step_id=approval.step_id,
            detail={"approval_id": approval_id},
        )
        return self.schedule_reminder(approval)

    # --- the idle timeout -----------------------------------------------------------

    def watch_idle(self, op_id: str, at: datetime | None = None) -> None:
        """(Re)schedules the idle check: at the idle timeout from now, or ``at``."""
        at = at or self.clock() + timedelta(seconds=self.config.idle_timeout_seconds)
        self.store.schedule_job(
            ScheduledJob(
                id=idle_job_id(op_id),
                operation_id=op_id,
                kind=JobKind.IDLE_TIMEOUT,
                run_at=iso(at),
            )
        )

    def check_idle(self, op_id: str) -> bool:
        """The scheduled check. An operation still waiting on a person with nothing done for
        the idle timeout is stopped (no step is running while it waits); one that moved meanwhile
        is checked again later. True when a later check was scheduled."""
        op = self.store.operation(op_id)
        if op is None or op.status not in WAITING_ON_A_PERSON:
            return False  # running, or ended: the next wait schedules its own check
        timeout = timedelta(seconds=self.config.idle_timeout_seconds)
        due = self._last_activity(op) + timeout
        if self.clock() < due:
            self.watch_idle(op_id, due)
            return True
        minutes = round(timeout.total_seconds() / 60, 1)
        message = (
            f"Stopped: it waited {minutes:g} min for {WAITING_ON_A_PERSON[op.status]} and"
            f" nobody acted. Nothing more was run; {op.environment} is free again."
            " Start it again when someone can see it through."
        )
        # Conditional on it still waiting: approved or ticked at this very moment, it goes
        # on. Stopped, its pending approval is superseded (walker.finish) and says so.
        self.engine.walker.finish(op, OperationStatus.STOPPED, message, only_while=op.status)
        return False

    def _last_activity(self, op: Operation) -> datetime:
        times = [
            parse_iso(record.at)
            for record in self.store.audit(op.id)
            if record.event not in _NOT_ACTIVITY
        ]
        return max(times, default=parse_iso(op.created_at))
