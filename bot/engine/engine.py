"""The runbook engine: walks an operation's steps, persisting every state change to the
store before acting on it, stopping at checklist and approval gates, emitting events.

It knows nothing of Slack. Front ends call ``start``, ``tick_checklist``,
``decide_approval`` ...; listeners (the Slack incident log, the terminal) receive ``Event``s.
"""

from __future__ import annotations

import logging
import secrets
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta

from bot.checklists import CHECKLISTS
from bot.clock import iso, parse_iso, shown_utc, utcnow
from bot.engine.model import (
    Event,
    Runbook,
    Step,
    StepContext,
    StepInterrupted,
    check_params,
    plan_hash,
    plan_text,
)
from bot.errors import ConflictError, NotFound, PermissionDenied, UserError
from bot.faults import crash_point
from bot.settings import Config, Environment
from bot.store import Store, new_operation_id
from bot.store.records import (
    FINAL_STATES,
    Approval,
    ApprovalStatus,
    ChecklistEntry,
    Decision,
    DecisionStatus,
    EventKind,
    JobKind,
    Operation,
    OperationStatus,
    ScheduledJob,
    StepRecord,
    StepStatus,
)

log = logging.getLogger(__name__)

Listener = Callable[[Event], None]
MembersOf = Callable[[str], set[str]]
BOT_ACTOR = "rollback-bot"
_DONE = (StepStatus.SUCCEEDED, StepStatus.SKIPPED)


class Engine:
    def __init__(
        self,
        store: Store,
        config: Config,
        runbooks: dict[str, Runbook],
        *,
        members_of: MembersOf,
        clock: Callable[[], datetime] = utcnow,
        workers: int = 16,
    ):
        self.store = store
        self.config = config
        self.runbooks = runbooks
        self.members_of = members_of
        self.clock = clock
        self._listeners: list[Listener] = []
        self._executor = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="engine")
        self._kick_lock = threading.Lock()
        self._running: set[str] = set()
        self._again: set[str] = set()
        self._stopping = False
        self._stop_event = threading.Event()
        self._delivering = threading.local()

    # --- listeners ------------------------------------------------------------------

    def subscribe(self, listener: Listener) -> None:
        self._listeners.append(listener)

    def emit(self, op_id: str, kind: EventKind, actor: str, message: str, **kw) -> Event:
        event = Event(op_id, kind, actor, message, self.clock(), **kw)
        if event.audited:
            self.store.append_audit(
                op_id,
                actor,
                kind,
                message,
                step_id=event.step_id,
                detail=event.detail,
                at=event.at,
            )
        self._deliver(event)
        return event

    def _deliver(self, event: Event) -> None:
        """Every listener gets the events in the order they happened: an event a listener
        emits while it handles another (PITR's cleanup card after the switch succeeded)
        waits until every listener has had the first."""
        queued = getattr(self._delivering, "queue", None)
        if queued is not None:
            queued.append(event)
            return
        self._delivering.queue = queued = [event]
        try:
            while queued:
                current = queued.pop(0)
                for listener in self._listeners:
                    listener(current)
        finally:
            self._delivering.queue = None

    # --- who may act ----------------------------------------------------------------

    def resolve_principals(self, principals: tuple[str, ...]) -> set[str]:
        users: set[str] = set()
        for p in principals:
            users |= self.members_of(p[1:]) if p.startswith("@") else {p}
        return users

    def check_requester(self, env: Environment, user: str, what: str) -> None:
        if env.protected and env.requesters and user not in self.resolve_principals(env.requesters):
            self.store.append_audit(
                None, user, EventKind.REQUEST_REFUSED, f"{what} on {env.name}: not a requester"
            )
            raise PermissionDenied(
                f"You are not allowed to start {what} on {env.name}.",
                "Ask someone listed in the environment's requesters, or a maintainer of the"
                " bot's config.",
            )

    # --- starting -------------------------------------------------------------------

    def start(
        self, runbook_name: str, env_name: str | None, requester: str, params: dict | None = None
    ) -> Operation:
        env = self.config.environment(env_name)
        runbook = self.runbooks[runbook_name]
        self.check_requester(env, requester, f"a {runbook.title}")
        params = check_params(runbook, dict(params or {}))
        now = self.clock()
        op = Operation(
            id=new_operation_id(now),
            runbook=runbook.name,
            environment=env.name,
            status=OperationStatus.RUNNING,
            requester=requester,
            params=params,
            summary=runbook.describe(params),
            created_at=iso(now),
            updated_at=iso(now),
        )
        if not self.store.create_operation(op, _steps(op.id, runbook), _checklists(op.id, runbook)):
            raise self._environment_busy(env, runbook)
        self.emit(
            op.id,
            EventKind.STARTED,
            requester,
            f"{runbook.title} started on {env.name} by <@{requester}>",
            detail={"runbook": runbook.name, "environment": env.name, "params": params},
        )
        self.tick_by_bot(
            op.id, "before", "document", "rollback-bot records every action in the incident log"
        )
        self.kick(op.id)
        return self.store.operation(op.id)

    def _environment_busy(self, env: Environment, runbook: Runbook) -> ConflictError:
        running = self.store.active_operation(env.name)
        if running is None:  # finished between our insert and this read
            return ConflictError(f"{env.name} was busy a moment ago.", "Try again.")
        return ConflictError(
            f"Another operation is already running on {env.name}: {running.id}"
            f" ({running.runbook}) started by <@{running.requester}> at"
            f" {shown_utc(running.created_at, 'minutes')}.",
            f"Only one operation per environment runs at a time. Follow it with"
            f" `/rollback history`, or wait until it finishes before starting a {runbook.title}.",
            code="busy",
        )

    # --- walking the steps ----------------------------------------------------------

    def kick(self, op_id: str) -> None:
        """Advance the operation on a worker; one walker per operation at a time, and a
        kick that arrives while it walks makes it look again (state may have changed)."""
        if self._stopping:
            return  # recover() picks the operation up at the next start
        with self._kick_lock:
            if op_id in self._running:
                self._again.add(op_id)
                return
            self._running.add(op_id)
        self._executor.submit(self._walk, op_id)

    def is_walking(self, op_id: str) -> bool:
        """Whether this process walks the operation right now (a front end waits for its
        last events before saying what is next; a status read alone could predate a tick
        or an approval the walker has not acted on yet)."""
        with self._kick_lock:
            return op_id in self._running

    def _walk(self, op_id: str) -> None:
        while True:
            try:
                self.advance(op_id)
            except Exception:  # noqa: BLE001 - the walker thread must never die silently
                log.exception("engine: advancing %s failed", op_id)
            with self._kick_lock:
                if op_id not in self._again:
                    self._running.discard(op_id)
                    return
                self._again.discard(op_id)

    def advance(self, op_id: str) -> None:
        while not self._stopping:
            op = self.store.operation(op_id)
            if op is None or op.status in FINAL_STATES:
                return
            if op.cancel_requested_by:
                who = op.cancel_requested_by
                self.finish(
                    op,
                    OperationStatus.CANCELLED,
                    f"Cancelled by <@{who}> after the running step.",
                    actor=who,
                )
                return
            runbook = self.runbooks[op.runbook]
            env = self.config.environment(op.environment)
            record = next((s for s in self.store.steps(op_id) if s.status not in _DONE), None)
            if record is None:
                self.finish(op, OperationStatus.SUCCEEDED, "All steps succeeded.")
                return
            if record.status == StepStatus.RUNNING:
                return  # another walker (or a crashed run, see recover()) owns it
            step = runbook.step(record.step_id)
            if step.applies is not None and not step.applies(op.params):
                self.store.end_step(op.id, step.id, StepStatus.SKIPPED, self.clock(), "not needed")
                self.emit(
                    op.id,
                    EventKind.STEP_SKIPPED,
                    BOT_ACTOR,
                    f"Skipped: {step.title} (not needed)",
                    step_id=step.id,
                )
                continue
            if step.destructive and not self._gates_open(op, env, step):
                return
            if not self._run_step(op, env, runbook, step):
                return

    def _gates_open(self, op: Operation, env: Environment, step: Step) -> bool:
        if not self.checklist_complete(op.id, "before"):
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
        if any(a.status == ApprovalStatus.APPROVED and a.plan_hash == digest for a in approvals):
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
        if message:
            self.emit(
                op.id,
                EventKind.GATE_WAITING,
                BOT_ACTOR,
                message,
                step_id=step.id,
                detail={"gate": status},
            )

    def _run_step(self, op: Operation, env: Environment, runbook: Runbook, step: Step) -> bool:
        if not self.store.claim_step(op.id, step.id, self.clock()):
            return False
        crash_point(op.runbook, step.id, "started")
        self.emit(
            op.id,
            EventKind.STEP_STARTED,
            BOT_ACTOR,
            f"Started: {step.title}",
            step_id=step.id,
            detail={"destructive": step.destructive},
        )
        try:
            ctx = self._context(op, env, runbook, step)
            result = step.action(ctx) or ""
            if step.check is not None:
                step.check(ctx)
        except StepInterrupted:
            log.info("step %s of %s interrupted by shutdown; resumes at start", step.id, op.id)
            return False
        except UserError as exc:
            self._step_failed(op, step, str(exc))
            return False
        except Exception as exc:  # noqa: BLE001 - any failure of a step must be recorded
            log.exception("step %s of %s failed", step.id, op.id)
            self._step_failed(op, step, f"{type(exc).__name__}: {exc}")
            return False
        crash_point(op.runbook, step.id, "acted")
        self.store.end_step(op.id, step.id, StepStatus.SUCCEEDED, self.clock(), result)
        crash_point(op.runbook, step.id, "finished")
        self.emit(
            op.id,
            EventKind.STEP_SUCCEEDED,
            BOT_ACTOR,
            f"Succeeded: {step.title}" + (f" ({result})" if result else ""),
            step_id=step.id,
        )
        return True

    def _context(self, op: Operation, env: Environment, runbook: Runbook, step: Step):
        """Everything a step may do, bound to this operation and step."""
        op_id, step_id = op.id, step.id

        def card(kind, title: str, data: dict) -> None:
            detail = {"card": kind, "data": data}
            self.emit(op_id, EventKind.CARD, BOT_ACTOR, title, step_id=step_id, detail=detail)

        return StepContext(
            operation=op,
            environment=env,
            params=op.params,
            progress=lambda done, total, message="": self.progress(
                op_id, step_id, done, total, message
            ),
            tick_checklist=lambda checklist, item, note: self.tick_by_bot(
                op_id, checklist, item, note
            ),
            record=lambda **values: self.record(op_id, check_params(runbook, values, partial=True)),
            ask=lambda prompt, choices, **kw: self.ask(op_id, step_id, prompt, choices, **kw),
            say=lambda text: self.emit(
                op_id, EventKind.STEP_NOTE, BOT_ACTOR, text, step_id=step_id
            ),
            sleep=self.sleep,
            card=card,
        )

    def _step_failed(self, op: Operation, step: Step, error: str) -> None:
        self.store.end_step(op.id, step.id, StepStatus.FAILED, self.clock(), "", error)
        self.emit(
            op.id,
            EventKind.STEP_FAILED,
            BOT_ACTOR,
            f"Failed: {step.title}: {error}",
            step_id=step.id,
            detail={"error": error},
        )
        self.finish(
            self.store.operation(op.id), OperationStatus.FAILED, f"Step '{step.title}' failed."
        )

    def progress(
        self, op_id: str, step_id: str, done: float, total: float, message: str = ""
    ) -> None:
        self.store.set_step_detail(op_id, step_id, message)
        self.emit(
            op_id,
            EventKind.PROGRESS,
            BOT_ACTOR,
            message,
            step_id=step_id,
            detail={"done": done, "total": total},
            audited=False,
        )

    def finish(
        self, op: Operation, status: OperationStatus, message: str, actor: str = BOT_ACTOR
    ) -> bool:
        """Ends the operation and frees its environment; False when it had already ended.
        A run that succeeded or failed gets its after-checklist reminder scheduled."""
        now = self.clock()
        reminder = None
        if status in (OperationStatus.SUCCEEDED, OperationStatus.FAILED):
            reminder = ScheduledJob(
                id=f"after-checklist-reminder:{op.id}",
                operation_id=op.id,
                kind=JobKind.AFTER_CHECKLIST_REMINDER,
                run_at=iso(now + timedelta(seconds=self.config.reminder_delay_seconds)),
            )
        if not self.store.finish_operation(op.id, status, message, now, then_schedule=reminder):
            return False
        self.emit(
            op.id,
            EventKind.FINISHED,
            actor,
            f"Finished: {status}. {message}",
            detail={"status": status},
        )
        return True

    # --- checklists -----------------------------------------------------------------

    def checklist_complete(self, op_id: str, checklist: str) -> bool:
        items = self.store.checklist(op_id, checklist)
        return bool(items) and all(i.checked for i in items)

    def tick_checklist(self, op_id: str, checklist: str, checked: set[str], user: str) -> bool:
        """Records a person's ticks. Items ticked by the bot stay ticked. Returns whether the
        checklist is now complete; kicks the engine when a gate may have opened."""
        op = self._operation(op_id)
        items = self.store.checklist(op_id, checklist)
        if not items:
            raise NotFound(f"Operation {op_id} has no {checklist} checklist.")
        unknown = checked - {i.item_id for i in items}
        if unknown:
            raise UserError(f"Unknown checklist items: {', '.join(sorted(unknown))}.")
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
            self.kick(op_id)
        return complete

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
        self.kick(op_id)

    def remind_after_checklist(self, op_id: str) -> None:
        op = self._operation(op_id)
        open_items = [i.label for i in self.store.checklist(op_id, "after") if not i.checked]
        if not open_items:
            return
        self.emit(
            op_id,
            EventKind.AFTER_CHECKLIST_REMINDER,
            BOT_ACTOR,
            f"Reminder for <@{op.requester}>: the after-rollback checklist has"
            f" {len(open_items)} open item(s): " + "; ".join(open_items),
            detail={"open_items": open_items},
        )

    # --- approvals ------------------------------------------------------------------

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
        op = self._operation(op_id)
        if user != op.requester:
            raise PermissionDenied("Only the requester can ask for approval again.")
        if op.status != OperationStatus.WAITING_APPROVAL:
            raise ConflictError(f"Operation {op_id} is not waiting for an approval.")
        if any(a.status == ApprovalStatus.PENDING for a in self.store.approvals(op_id)):
            raise ConflictError("An approval request is already pending.")
        env = self.config.environment(op.environment)
        record = next(s for s in self.store.steps(op_id) if s.status == StepStatus.PENDING)
        step = self.runbooks[op.runbook].step(record.step_id)
        text = plan_text(step, op, env)
        self.request_approval(op, step, text, plan_hash(text))

    def decide_approval(self, approval_id: str, user: str, approve: bool) -> Approval:
        approval = self.store.approval(approval_id)
        if approval is None:
            raise NotFound(f"Approval {approval_id} does not exist.")
        op = self._operation(approval.operation_id)
        env = self.config.environment(op.environment)
        self._check_approver(op, env, approval, user, approve)
        if approval.status != ApprovalStatus.PENDING:
            raise self._already_decided(approval)
        if self.clock() >= parse_iso(approval.expires_at):
            self.expire_approval(approval_id)
            raise ConflictError(
                "This approval request has expired; nothing was run.",
                "The requester can ask for approval again from the operation's status message.",
            )
        step = self.runbooks[op.runbook].step(approval.step_id)
        if plan_hash(plan_text(step, op, env)) != approval.plan_hash:
            self._supersede(approval)
            self.kick(op.id)
            raise ConflictError(
                "The plan changed after this approval was requested, so it cannot be approved.",
                "A new approval request with the current plan has been posted.",
            )
        status = ApprovalStatus.APPROVED if approve else ApprovalStatus.DENIED
        if not self.store.decide_approval(approval_id, status, user, self.clock()):
            raise self._already_decided(self.store.approval(approval_id))  # a concurrent click
        self.emit(
            op.id,
            EventKind.APPROVAL_GRANTED if approve else EventKind.APPROVAL_DENIED,
            user,
            f"<@{user}> {status}: {step.title}",
            step_id=step.id,
            detail={"approval_id": approval_id, "plan_hash": approval.plan_hash},
        )
        if approve:
            self.kick(op.id)
        else:
            self.finish(
                self._operation(op.id),
                OperationStatus.CANCELLED,
                f"Approval denied by <@{user}>; the step did not run.",
                actor=user,
            )
        return self.store.approval(approval_id)

    def _check_approver(
        self, op: Operation, env: Environment, approval: Approval, user: str, approve: bool
    ) -> None:
        """The two-person rule: never the requester; only an approver (the requester may
        deny their own request)."""
        if approve and user == op.requester:
            self._refused(op, user, approval, "self-approval")
            raise PermissionDenied(
                "You cannot approve your own request: the two-person rule needs a second person.",
                "Ask one of the approvers to click Approve.",
            )
        if user != op.requester and user not in self.resolve_principals(env.approvers):
            self._refused(op, user, approval, "not an approver")
            raise PermissionDenied(
                f"You are not an approver for {env.name}, so you cannot"
                f" {'approve' if approve else 'deny'} this.",
                f"Approvers: {', '.join(env.approvers)}.",
            )

    def _already_decided(self, approval: Approval) -> ConflictError:
        who = f" by <@{approval.decided_by}>" if approval.decided_by else ""
        when = f" at {shown_utc(approval.decided_at, 'time')}" if approval.decided_at else ""
        return ConflictError(
            f"This approval request was already {approval.status}{who}{when}.",
            code="already_decided",
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
        self.store.supersede_approval(approval.id)
        self.emit(
            approval.operation_id,
            EventKind.APPROVAL_SUPERSEDED,
            BOT_ACTOR,
            "The plan changed; the earlier approval request no longer applies.",
            step_id=approval.step_id,
            detail={"approval_id": approval.id},
        )

    def expire_approval(self, approval_id: str) -> bool:
        if not self.store.expire_approval(approval_id, self.clock()):
            return False
        approval = self.store.approval(approval_id)
        self.emit(
            approval.operation_id,
            EventKind.APPROVAL_EXPIRED,
            BOT_ACTOR,
            "The approval request expired without a decision; nothing was run.",
            step_id=approval.step_id,
            detail={"approval_id": approval_id},
        )
        return True

    # --- step data and decisions ----------------------------------------------------

    def record(self, op_id: str, values: dict) -> dict:
        return self.store.merge_params(op_id, values)

    def ask(
        self,
        op_id: str,
        step_id: str,
        prompt: str,
        choices: dict[str, str],
        *,
        timeout: float,
        default: str,
        poll: float = 0.1,
    ) -> str:
        """A decision only the requester can make, mid-step (commit or roll back a held
        transaction, for example). Persisted, audited, and answered at most once."""
        now = self.clock()
        decision = Decision(
            id=f"dec-{secrets.token_hex(5)}",
            operation_id=op_id,
            step_id=step_id,
            prompt=prompt,
            choices=choices,
            default_choice=default,
            asked_at=iso(now),
            expires_at=iso(now + timedelta(seconds=timeout)),
        )
        self.store.add_decision(decision)
        self.emit(
            op_id,
            EventKind.DECISION_REQUESTED,
            BOT_ACTOR,
            prompt,
            step_id=step_id,
            detail={
                "decision_id": decision.id,
                "choices": choices,
                "default": default,
                "expires_at": decision.expires_at,
            },
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and not self._stopping:
            answered = self.store.decision(decision.id)
            if answered.status == DecisionStatus.DECIDED:
                return answered.choice
            time.sleep(poll)
        if not self.store.expire_decision(decision.id, default, self.clock()):
            return self.store.decision(decision.id).choice  # answered at the last moment
        self.emit(
            op_id,
            EventKind.DECISION_EXPIRED,
            BOT_ACTOR,
            f"No answer in time; chose the safe default: {choices[default]}.",
            step_id=step_id,
            detail={"decision_id": decision.id, "choice": default},
        )
        return default

    def decide(self, decision_id: str, user: str, choice: str) -> Decision:
        decision = self.store.decision(decision_id)
        if decision is None:
            raise NotFound(f"There is no decision {decision_id}.")
        op = self._operation(decision.operation_id)
        if user != op.requester:
            self.store.append_audit(
                op.id,
                user,
                EventKind.DECISION_REFUSED,
                "not the requester",
                step_id=decision.step_id,
                detail={"decision_id": decision_id},
            )
            raise PermissionDenied(
                "Only the requester of this operation can decide this.", f"Ask <@{op.requester}>."
            )
        if choice not in decision.choices:
            raise UserError(f"`{choice}` is not one of the choices.")
        if not self.store.answer_decision(decision_id, choice, user, self.clock()):
            done = self.store.decision(decision_id)
            raise ConflictError(
                f"This was already decided: {decision.choices.get(done.choice)} ({done.status}).",
                code="already_decided",
            )
        self.emit(
            op.id,
            EventKind.DECISION_MADE,
            user,
            f"<@{user}> chose: {decision.choices[choice]}",
            step_id=decision.step_id,
            detail={"decision_id": decision_id, "choice": choice},
        )
        return self.store.decision(decision_id)

    # --- other --------------------------------------------------------------------

    def cancel(self, op_id: str, user: str) -> str:
        """Stops the operation between steps. While a step runs, the cancellation is
        recorded and takes effect when that step ends (a step is never cut in half)."""
        op = self._operation(op_id)
        if user != op.requester:
            raise PermissionDenied("Only the requester can cancel this operation.")
        if op.status in FINAL_STATES:
            raise ConflictError(f"Operation {op_id} already ended ({op.status}).")
        if any(s.status == StepStatus.RUNNING for s in self.store.steps(op_id)):
            self.store.request_cancel(op_id, user)
            self.kick(op_id)
            return "requested"
        if not self.finish(op, OperationStatus.CANCELLED, f"Cancelled by <@{user}>.", actor=user):
            raise ConflictError(f"Operation {op_id} already ended.")
        return "cancelled"

    def recover(self) -> None:
        """At start-up: a step left 'running' by a crash is rerun when idempotent, else the
        operation stops in a safe state with a clear message; waiting ones are resumed."""
        for op in self.store.operations(active=True, limit=1000):
            self.emit(
                op.id,
                EventKind.RESUMED,
                BOT_ACTOR,
                "The bot restarted; resuming this operation from its recorded state.",
            )
            runbook = self.runbooks.get(op.runbook)
            for record in self.store.steps(op.id):
                if record.status != StepStatus.RUNNING:
                    continue
                if runbook and runbook.step(record.step_id).idempotent:
                    self.store.rerun_step(op.id, record.step_id)
                    self.emit(
                        op.id,
                        EventKind.STEP_RESUMED,
                        BOT_ACTOR,
                        f"The bot restarted during '{record.title}'; it is safe to run"
                        " again and will be rerun.",
                        step_id=record.step_id,
                    )
                else:
                    self.store.end_step(
                        op.id,
                        runbook.step(record.step_id).id,
                        StepStatus.FAILED,
                        self.clock(),
                        "",
                        "interrupted by a restart",
                    )
                    self.finish(
                        op,
                        OperationStatus.STOPPED,
                        f"The bot restarted while '{record.title}' was running and"
                        " that step is not safe to repeat. Check its effect by hand.",
                    )
            self.kick(op.id)

    def _operation(self, op_id: str) -> Operation:
        op = self.store.operation(op_id)
        if op is None:
            raise NotFound(f"There is no operation {op_id}.", "See `/rollback history`.")
        return op

    def sleep(self, seconds: float) -> bool:
        """Waits, unless the engine is stopping; returns whether to carry on."""
        return not self._stop_event.wait(seconds)

    def shutdown(self) -> None:
        """Lets a running step finish (its state is then recorded) and starts no other."""
        self._stopping = True
        self._stop_event.set()
        self._executor.shutdown(wait=True, cancel_futures=True)


def _steps(op_id: str, runbook: Runbook) -> list[StepRecord]:
    return [
        StepRecord(op_id, position, s.id, s.title, s.destructive, s.idempotent)
        for position, s in enumerate(runbook.steps)
    ]


def _checklists(op_id: str, runbook: Runbook) -> list[ChecklistEntry]:
    return [
        ChecklistEntry(op_id, name, item.id, position, item.label)
        for name in runbook.checklists
        for position, item in enumerate(CHECKLISTS[name].items)
    ]
