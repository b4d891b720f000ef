"""The gates in front of a destructive step: the before-checklist must be complete and, in a
protected environment, a second person must approve the step's exact plan (its hash binds
the approval; a changed plan needs a new one). The two-person rule is enforced here, on the
server: never the requester, only a configured approver, a click counts once.
"""

from __future__ import annotations

import secrets
import time
from datetime import timedelta
from typing import TYPE_CHECKING

from bot.checklists import CHECKLISTS
from bot.clock import iso, parse_iso, shown_utc
from bot.engine.model import BOT_ACTOR, Step, plan_hash, plan_text
from bot.errors import ConflictError, NotFound, PermissionDenied, UserError
from bot.settings import Environment
from bot.store.records import (
    FINAL_STATES,
    Approval,
    ApprovalStatus,
    EventKind,
    JobKind,
    Operation,
    OperationStatus,
    ScheduledJob,
    StepStatus,
)
from bot.text import plural
from bot.words import status_words

if TYPE_CHECKING:
    from bot.engine.engine import Engine
    from bot.store import Store


# How long a click waits for its approval's message to be recorded (see _posted_in).
_MESSAGE_RECORD_WAIT = 5.0


class Gates:
    def __init__(self, engine: Engine):
        self.engine = engine
        self.store, self.config, self.runbooks = engine.store, engine.config, engine.runbooks
        self.clock, self.emit = engine.clock, engine.emit

    def open_for(self, op: Operation, env: Environment, step: Step) -> bool:
        """Whether a destructive step may run now: the before-checklist is complete and, in
        a protected environment, an approval of its current plan is granted. Otherwise the
        operation waits (and an approval is requested when none is pending)."""
        before = "before" in self.runbooks[op.runbook].checklists  # a retention review: none
        if before and not self.checklist_complete(op.id, "before"):
            self._set_waiting(
                op,
                OperationStatus.WAITING_CHECKLIST,
                step,
                "Waiting for the before-rollback checklist to be completed.",
            )
            return False
        if not env.protected:
            return True
        text = plan_text(step, op, env)
        digest = plan_hash(text)
        approvals = [a for a in self.store.approvals(op.id) if a.step_id == step.id]
        if any(
            a.status == ApprovalStatus.APPROVED
            and a.plan_hash == digest
            and a.decided_by != op.requester  # granted before its approver took it over
            for a in approvals
        ):
            return True
        pending = [a for a in approvals if a.status == ApprovalStatus.PENDING]
        for a in pending:
            if a.plan_hash == digest:
                self._set_waiting(op, OperationStatus.WAITING_APPROVAL, step, None)
                return False
            self._supersede(a)
        if not pending and any(a.status == ApprovalStatus.EXPIRED for a in approvals):
            self._set_waiting(op, OperationStatus.WAITING_APPROVAL, step, None)
            return False  # the requester asks again (request_approval_again)
        self.request_approval(op, step, text, digest)
        return False

    def _set_waiting(
        self, op: Operation, status: OperationStatus, step: Step, message: str | None
    ) -> None:
        if op.status == status or not self.store.set_status(op.id, status):
            return  # already waiting, or ended meanwhile (cancelled): stays as it is
        self.engine.custody.watch_idle(op.id)
        if message:
            self.emit(
                op.id,
                EventKind.GATE_WAITING,
                BOT_ACTOR,
                message,
                step_id=step.id,
                detail={"gate": status},
            )

    def checklist_complete(self, op_id: str, checklist: str) -> bool:
        items = self.store.checklist(op_id, checklist)
        return bool(items) and all(i.checked for i in items)

    def tick_checklist(self, op_id: str, checklist: str, checked: set[str], user: str) -> bool:
        """Records a person's ticks. Items ticked by the bot stay ticked. Returns whether the
        checklist is now complete; kicks the engine when a gate may have opened."""
        op = self.engine.operation(op_id)
        self.check_may_tick(op, user)
        items = self.store.checklist(op_id, checklist)
        if not items:
            raise NotFound(
                f"Operation {op_id} has no {checklist} checklist.",
                f"Its checklists open from its status message, or `/rollback checklist {op_id}`.",
            )
        unknown = checked - {i.item_id for i in items}
        if unknown:
            raise UserError(
                f"Unknown checklist items: {', '.join(sorted(unknown))}.",
                "Tick the items in the checklist itself (the button on the status message).",
            )
        changes = self.store.tick(op_id, checklist, checked, user, self.clock())
        title = CHECKLISTS[checklist].title
        for label, ticked in changes:
            self.emit(
                op_id,
                EventKind.CHECKLIST_TICKED if ticked else EventKind.CHECKLIST_UNTICKED,
                user,
                f"{title}: {'ticked' if ticked else 'unticked'} '{label}'",
                detail={"checklist": checklist, "item": label},
            )
        complete = self.checklist_complete(op_id, checklist)
        marker = f"checklist-complete:{op_id}:{checklist}"
        if complete and changes and self.store.happens_once(marker, self.clock()):
            self.emit(
                op_id,
                EventKind.CHECKLIST_COMPLETED,
                user,
                f"{title} checklist complete",
                detail={"checklist": checklist},
            )
        if op.status not in FINAL_STATES:
            self.engine.walker.kick(op_id)
        return complete

    def check_may_tick(self, op: Operation, user: str) -> None:
        """A checklist is the requester's attestation: only they (or a configured
        checklist_tickers principal) tick it or open it."""
        env = self.config.environment(op.environment)
        if user == op.requester or user in self.engine.resolve_principals(env.checklist_tickers):
            return
        self.store.append_audit(
            op.id, user, EventKind.REQUEST_REFUSED, "Refused: checklist of another requester"
        )
        raise PermissionDenied(
            f"Only <@{op.requester}>, who requested `{op.id}`, can tick its checklists.",
            "Ask them to tick it, or have checklist_tickers for this environment include you.",
            people=(op.requester,),
        )

    def tick_by_bot(self, op_id: str, checklist: str, item_id: str, note: str) -> None:
        """The hook for items the bot verified itself (a snapshot taken, a notice posted)."""
        if not self.store.tick_by_bot(op_id, checklist, item_id, BOT_ACTOR, note, self.clock()):
            return
        title = next(i.title for i in CHECKLISTS[checklist].items if i.id == item_id)
        self.emit(
            op_id,
            EventKind.CHECKLIST_TICKED,
            BOT_ACTOR,
            f"{CHECKLISTS[checklist].title}: ticked by rollback-bot '{title}' ({note})",
            detail={"checklist": checklist, "item": title, "by_bot": True},
        )
        self.engine.walker.kick(op_id)

    def remind_after_checklist(self, op_id: str) -> None:
        op = self.engine.operation(op_id)
        open_items = [i.label for i in self.store.checklist(op_id, "after") if not i.checked]
        if not open_items:
            return
        self.emit(
            op_id,
            EventKind.AFTER_CHECKLIST_REMINDER,
            BOT_ACTOR,
            f"Reminder for <@{op.requester}>: the after-rollback checklist has"
            f" {plural(len(open_items), 'open item')}: " + "; ".join(open_items),
            detail={"open_items": open_items},
        )

    def request_approval(self, op: Operation, step: Step, text: str, digest: str) -> Approval:
        now = self.clock()
        expires = iso(now + timedelta(seconds=self.config.approval_expiry_seconds))
        approval = Approval(
            id=f"apr-{secrets.token_hex(5)}",
            operation_id=op.id,
            step_id=step.id,
            plan_text=text,
            plan_hash=digest,
            requested_by=op.requester,
            requested_at=iso(now),
            expires_at=expires,
        )
        expiry = ScheduledJob(
            id=f"approval-expiry:{approval.id}",
            operation_id=op.id,
            kind=JobKind.APPROVAL_EXPIRY,
            run_at=expires,
            payload={"approval_id": approval.id},
        )
        self.store.add_approval(approval, expiry)
        self.engine.custody.watch_idle(op.id)
        self.engine.custody.schedule_reminder(approval)
        self.emit(
            op.id,
            EventKind.APPROVAL_REQUESTED,
            op.requester,
            f"Approval requested for: {step.title}",
            step_id=step.id,
            detail={
                "approval_id": approval.id,
                "plan": text,
                "plan_hash": digest,
                "expires_at": expires,
            },
        )
        return approval

    def request_approval_again(self, op_id: str, user: str) -> None:
        op = self.engine.operation(op_id)
        if user != op.requester:
            raise PermissionDenied(
                "Only the requester can ask for approval again.",
                f"Ask <@{op.requester}>.",
                people=(op.requester,),
            )
        if op.status != OperationStatus.WAITING_APPROVAL:
            raise ConflictError(
                f"Operation {op_id} is not waiting for an approval.",
                "Its status message shows what it waits for.",
            )
        if any(a.status == ApprovalStatus.PENDING for a in self.store.approvals(op_id)):
            raise ConflictError(
                "An approval request is already pending.",
                "Ask an approver to use the request in the operation's thread.",
            )
        env = self.config.environment(op.environment)
        record = next(s for s in self.store.steps(op_id) if s.status == StepStatus.PENDING)
        step = self.runbooks[op.runbook].step(record.step_id)
        text = plan_text(step, op, env)
        self.request_approval(op, step, text, plan_hash(text))

    def decide_approval(
        self,
        approval_id: str,
        user: str,
        approve: bool,
        message: tuple[str, str] | None = None,
    ) -> Approval:
        """``message``: the (channel, ts) of the message clicked (Slack); a decision counts
        only from the message the request was posted in, and only while the operation waits
        for this approval on this step."""
        approval = self.store.approval(approval_id)
        if approval is None:
            raise NotFound(f"Approval {approval_id} does not exist.")
        op = self.engine.operation(approval.operation_id)
        env = self.config.environment(op.environment)
        self._check_message(op, approval, user, message)
        self._check_approver(op, env, approval, user, approve)
        if approval.status != ApprovalStatus.PENDING:
            raise _already_decided(approval)
        self._check_still_waiting(op, approval)
        if self.clock() >= parse_iso(approval.expires_at):
            self.expire_approval(approval_id)
            raise ConflictError(
                "This approval request has expired; nothing was run.",
                "The requester can ask for approval again from the operation's status message.",
            )
        step = self.runbooks[op.runbook].step(approval.step_id)
        if plan_hash(plan_text(step, op, env)) != approval.plan_hash:
            self._supersede(approval)
            self.engine.walker.kick(op.id)
            raise ConflictError(
                "The plan changed after this approval was requested, so it cannot be approved.",
                "A new approval request with the current plan has been posted.",
            )
        status = ApprovalStatus.APPROVED if approve else ApprovalStatus.DENIED
        if not self.store.decide_approval(approval_id, status, user, self.clock()):
            # A concurrent click, or the operation ended or moved on meanwhile.
            self._check_still_waiting(self.engine.operation(op.id), approval)
            raise _already_decided(self.store.approval(approval_id))
        self.emit(
            op.id,
            EventKind.APPROVAL_GRANTED if approve else EventKind.APPROVAL_DENIED,
            user,
            f"<@{user}> {status}: {step.title}",
            step_id=step.id,
            detail={"approval_id": approval_id, "plan_hash": approval.plan_hash},
        )
        if approve:
            self.engine.walker.kick(op.id)
        elif step.optional:  # the operation does without it: declined, the rest goes on
            self._decline(op, step, user)
        else:
            self.engine.walker.finish(
                self.engine.operation(op.id),
                OperationStatus.CANCELLED,
                f"Approval denied by <@{user}>; the step did not run.",
                actor=user,
            )
        return self.store.approval(approval_id)

    def _decline(self, op: Operation, step, user: str) -> None:
        self.store.end_step(
            op.id, step.id, StepStatus.DECLINED, self.clock(), f"declined by <@{user}>"
        )
        self.emit(
            op.id,
            EventKind.STEP_DECLINED,
            user,
            f"Declined by <@{user}>: {step.title} (not run; the operation goes on without it)",
            step_id=step.id,
        )
        self.engine.walker.kick(op.id)

    def _check_approver(
        self, op: Operation, env: Environment, approval: Approval, user: str, approve: bool
    ) -> None:
        """The two-person rule: never the requester; only an approver (the requester may
        deny their own request)."""
        if approve and user in (op.requester, approval.requested_by):
            self._refused(op, user, approval, "self-approval")
            raise PermissionDenied(
                "You cannot approve your own request: the two-person rule needs a second person.",
                # Said the same to Slack and to the terminal, which has no buttons.
                "Ask one of the approvers to approve it: the Approve button on the request in"
                f" Slack, or `rollback-bot cli approve {approval.id}` in a terminal.",
            )
        if user != op.requester and user not in self.engine.resolve_principals(env.approvers):
            self._refused(op, user, approval, "not an approver")
            raise PermissionDenied(
                f"You are not an approver for {env.name}, so you cannot"
                f" {'approve' if approve else 'deny'} this.",
                f"Approvers: {', '.join(env.approvers)}.",
            )

    def _check_message(
        self, op: Operation, approval: Approval, user: str, message: tuple[str, str] | None
    ) -> None:
        """A click carries the approval id in its value: one clicked on any other message
        (a value copied into another app's button needs the signing secret, but nothing
        else) must not decide it."""
        if message is None or _posted_in(self.store, approval, (message[0], message[1])):
            return
        self._refused(op, user, approval, "clicked on a message that is not its request")
        raise PermissionDenied(
            "That button is not on this approval's request message, so nothing was decided.",
            "Use the Approve or Deny button on the approval request (incident channel or DM).",
        )

    def _check_still_waiting(self, op: Operation, approval: Approval) -> None:
        # A concurrent click may have decided it since it was read and already moved the step
        # on (or finished the operation): that click is told who decided, not "wrong step".
        current = self.store.approval(approval.id)
        if current.status in (ApprovalStatus.APPROVED, ApprovalStatus.DENIED):
            raise _already_decided(current)
        if op.status in FINAL_STATES:
            ended = status_words(op.status)
            if self.store.supersede_approval(approval.id):
                self._superseded(approval, f"The operation ended ({ended}).")
            raise ConflictError(
                f"Operation {op.id} already ended ({ended}); this approval no longer"
                " applies and nothing was run.",
                "Its status message says how it ended; start a new operation if one is needed.",
                code="operation_ended",
            )
        record = self.store.step(op.id, approval.step_id)
        if record is None or record.status != StepStatus.PENDING:
            raise ConflictError(
                "This approval is not for the step the operation is at; nothing was run.",
                "The operation's status message shows where it is; a step that needs an"
                " approval posts its own request.",
                code="wrong_step",
            )

    def supersede_pending(self, op_id: str, why: str) -> None:
        """At the end of an operation (finished, cancelled, stopped): every pending approval
        request is superseded, so none can be approved afterwards and its message says so."""
        for approval in self.store.approvals(op_id):
            if approval.status == ApprovalStatus.PENDING and self.store.supersede_approval(
                approval.id
            ):
                self._superseded(approval, why)

    def _superseded(self, approval: Approval, why: str) -> None:
        self.emit(
            approval.operation_id,
            EventKind.APPROVAL_SUPERSEDED,
            BOT_ACTOR,
            f"{why} The approval request no longer applies.",
            step_id=approval.step_id,
            detail={"approval_id": approval.id},
        )

    def _refused(self, op: Operation, user: str, approval: Approval, reason: str) -> None:
        self.store.append_audit(
            op.id,
            user,
            EventKind.APPROVAL_REFUSED,
            f"Refused: {reason}",
            step_id=approval.step_id,
            detail={"approval_id": approval.id, "reason": reason},
        )

    def _supersede(self, approval: Approval) -> None:
        self.supersede(approval, "The plan changed.")

    def supersede(self, approval: Approval, why: str) -> None:
        if not self.store.supersede_approval(approval.id):
            return
        self.emit(
            approval.operation_id,
            EventKind.APPROVAL_SUPERSEDED,
            BOT_ACTOR,
            f"{why} The earlier approval request no longer applies.",
            step_id=approval.step_id,
            detail={"approval_id": approval.id},
        )

    def expire_approval(self, approval_id: str) -> bool:
        if not self.store.expire_approval(approval_id, self.clock()):
            return False
        approval = self.store.approval(approval_id)
        self.engine.custody.watch_idle(approval.operation_id)  # waits for the requester now
        self.emit(
            approval.operation_id,
            EventKind.APPROVAL_EXPIRED,
            BOT_ACTOR,
            "The approval request expired without a decision; nothing was run.",
            step_id=approval.step_id,
            detail={"approval_id": approval_id},
        )
        return True


def _posted_in(store: Store, approval: Approval, message: tuple[str, str]) -> bool:
    """Whether the clicked message is the request or a recorded copy (an approver's DM).
    Each is recorded right after Slack answers its post, so a click can come first: wait
    a little rather than refuse a genuine click (after the request, only a DM, D...)."""
    deadline = time.monotonic() + _MESSAGE_RECORD_WAIT
    while True:
        recorded = {(approval.channel, approval.message_ts)}
        recorded.update(store.approval_copies(approval.id))
        if message in recorded:
            return True
        late = approval.message_ts is None or message[0].startswith("D")
        if not late or time.monotonic() >= deadline:
            return False
        time.sleep(0.05)
        approval = store.approval(approval.id)


def _already_decided(approval: Approval) -> ConflictError:
    """The refusal of a click on an approval request that is no longer pending."""
    who = f" by <@{approval.decided_by}>" if approval.decided_by else ""
    when = f" at {shown_utc(approval.decided_at, 'time')}" if approval.decided_at else ""
    settled = approval.status in (ApprovalStatus.APPROVED, ApprovalStatus.DENIED)
    return ConflictError(
        f"This approval request was already {approval.status}{who}{when}.",
        "The operation's status message shows what happened next."
        if settled
        else "Use the newest approval request in the operation's thread, if there is one.",
        code="already_decided",
        people=(approval.decided_by,) if approval.decided_by else (),
    )
