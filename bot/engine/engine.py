"""The runbook engine: walks an operation's steps, persisting every state change to the
store before acting on it, stopping at checklist and approval gates, emitting events.

It knows nothing of Slack. Front ends call ``start``, ``tick_checklist``,
``decide_approval`` ...; listeners (the Slack incident log, the terminal) receive ``Event``s.
``Engine`` is what they hold; its parts: walker.py (walking the steps), gates.py (the
checklist and the two-person rule), decisions.py (mid-step questions).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import datetime

from bot.checklists import CHECKLISTS
from bot.clock import iso, shown_utc, utcnow
from bot.engine.custody import Custody, Holder
from bot.engine.decisions import Decisions
from bot.engine.gates import Gates
from bot.engine.leases import LeaseKeeper, replica_name
from bot.engine.model import BOT_ACTOR, Event, Runbook, check_params
from bot.engine.walker import Walker
from bot.errors import ConflictError, NotFound, PermissionDenied
from bot.settings import Config, Environment
from bot.store import Store, new_operation_id
from bot.store.records import (
    FINAL_STATES,
    Approval,
    ChecklistEntry,
    Decision,
    EventKind,
    Operation,
    OperationStatus,
    StepRecord,
    StepStatus,
)
from bot.words import status_words

Listener = Callable[[Event], None]
MembersOf = Callable[[str], set[str]]


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
        replica: str | None = None,
    ):
        self.store = store
        self.config = config
        self.runbooks = runbooks
        self.members_of = members_of
        self.clock = clock
        self._listeners: list[Listener] = []
        self._delivering = threading.local()
        # This process's name as the owner of operations' leases (bot/engine/leases.py).
        self.replica = replica or replica_name()
        self.keeper = LeaseKeeper(self)
        self.walker = Walker(self, workers)
        self.gates = Gates(self)
        self.decisions = Decisions(self)
        self.custody = Custody(self)

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

    def is_involved(self, op_id: str, user: str) -> bool:
        """The operation's people: its requester, its environment's approvers and checklist
        tickers, and anyone who acted on it (the audit log)."""
        op = self.operation(op_id)
        env = self.config.environment(op.environment)
        if user == op.requester or user in self.resolve_principals(
            env.approvers + env.checklist_tickers
        ):
            return True
        return any(record.actor == user for record in self.store.audit(op_id))

    def check_requester(self, env: Environment, user: str, what: str) -> None:
        # The bot itself requests scheduled work (the retention review); a person's identity
        # is a Slack user id (signed, or checked by the terminal), never "rollback-bot".
        if user == BOT_ACTOR:
            return
        if env.protected and env.requesters and user not in self.resolve_principals(env.requesters):
            self.store.append_audit(
                None, user, EventKind.REQUEST_REFUSED, f"{what} on {env.name}: not a requester"
            )
            raise PermissionDenied(
                f"You are not allowed to start {what} on {env.name}.",
                "Ask someone listed in the environment's requesters, or a maintainer of the"
                " bot's config.",
            )

    # --- starting, cancelling, resuming ---------------------------------------------

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
        self.gates.tick_by_bot(
            op.id, "before", "document", "rollback-bot records every action in the incident log"
        )
        self.walker.kick(op.id)
        return self.store.operation(op.id)

    def _environment_busy(self, env: Environment, runbook: Runbook) -> ConflictError:
        running = self.store.active_operation(env.name)
        if running is None:  # finished between our insert and this read
            return ConflictError(f"{env.name} was busy a moment ago.", "Try again.")
        return ConflictError(
            f"Another operation is already running on {env.name}: {running.id}"
            f" ({self._title(running.runbook)}) started by <@{running.requester}> at"
            f" {shown_utc(running.created_at, 'minutes')}.",
            f"Only one operation per environment runs at a time: wait until it finishes before"
            f" starting a {runbook.title} (`/rollback history` follows it). If it is stuck, its"
            f" requester or an approver of {env.name} can stop it with"
            f" `/rollback cancel {running.id}`, or an approver can take it over with"
            f" `/rollback takeover {running.id} --reason REASON`.",
            code="busy",
            people=(running.requester,),
        )

    def _title(self, runbook: str) -> str:
        known = self.runbooks.get(runbook)
        return known.title if known else runbook

    def cancel(self, op_id: str, user: str) -> str:
        """Stops the operation between steps. While a step runs, the cancellation is
        recorded and takes effect when that step ends (a step is never cut in half)."""
        op = self.operation(op_id)
        self.custody.check_may_cancel(op, user)
        if op.status in FINAL_STATES:
            raise ConflictError(
                f"Operation {op_id} already ended ({status_words(op.status)}); nothing to cancel.",
                "`/rollback history` shows how it ended.",
            )
        if any(s.status == StepStatus.RUNNING for s in self.store.steps(op_id)):
            self.store.request_cancel(op_id, user)
            self.walker.kick(op_id)
            return "requested"
        if not self.walker.finish(
            op, OperationStatus.CANCELLED, f"Cancelled by <@{user}>.", actor=user
        ):
            raise ConflictError(
                f"Operation {op_id} already ended; nothing to cancel.",
                "`/rollback history` shows how it ended.",
            )
        return "cancelled"

    def recover(self) -> None:
        """At start-up: every active operation this replica can take (its lease free, run
        out, or its own previous process's) is resumed by the restart rule; then the lease
        keeper resumes, every few seconds, operations another replica stopped walking."""
        for op in self.store.operations(active=True, limit=1000):
            self.resume(op.id, restarted=True)
        self.keeper.ensure_running(sweep=True)

    def resume(self, op_id: str, *, restarted: bool) -> None:
        """Takes the operation's lease and walks it again. A step left running (by a crash,
        or by a replica that stopped renewing its lease) is rerun when idempotent, else the
        operation stops in a safe state with a clear message. Nothing is said for an
        operation that was merely waiting with nobody walking it."""
        lease = self.store.take_lease(op_id, self.replica, self.clock(), self.config.lease_seconds)
        if lease is None:
            return  # another replica walks it, or it ended
        op = self.operation(op_id)
        running = [r for r in self.store.steps(op.id) if r.status == StepStatus.RUNNING]
        who = "The bot restarted"
        if lease.taken_over_from is not None:
            who = "The replica running this operation stopped"
        if restarted or running or lease.taken_over_from is not None:
            self.emit(
                op.id,
                EventKind.RESUMED,
                BOT_ACTOR,
                f"{who}; resuming this operation from its recorded state"
                + (" on another replica." if lease.taken_over_from else "."),
                detail={"replica": self.replica, "after": lease.taken_over_from},
            )
        runbook = self.runbooks.get(op.runbook)
        if runbook is None:
            self.walker.stop_unknown_runbook(op)
            return
        for record in running:
            if not self._rerun_or_stop(op, runbook.step(record.step_id).idempotent, record, who):
                break
        self.walker.kick(op.id)

    def _rerun_or_stop(self, op: Operation, idempotent: bool, record, who: str) -> bool:
        """The restart rule for one step left running; False when the operation stopped."""
        if idempotent:
            self.store.rerun_step(op.id, record.step_id)
            self.emit(
                op.id,
                EventKind.STEP_RESUMED,
                BOT_ACTOR,
                f"{who} during '{record.title}'; it is safe to run again and will be rerun.",
                step_id=record.step_id,
            )
            return True
        self.store.end_step(
            op.id, record.step_id, StepStatus.FAILED, self.clock(), "", "interrupted by a restart"
        )
        self.walker.finish(
            op,
            OperationStatus.STOPPED,
            f"{who} while '{record.title}' was running and that step is not safe to repeat."
            " Check its effect by hand.",
        )
        return False

    def operation(self, op_id: str) -> Operation:
        op = self.store.operation(op_id)
        if op is None:
            raise NotFound(f"There is no operation {op_id}.", "See `/rollback history`.")
        return op

    # --- what front ends and the scheduler call on the parts ------------------------

    def kick(self, op_id: str) -> None:
        self.walker.kick(op_id)

    def is_walking(self, op_id: str) -> bool:
        return self.walker.is_walking(op_id)

    def checklist_complete(self, op_id: str, checklist: str) -> bool:
        return self.gates.checklist_complete(op_id, checklist)

    def check_may_tick(self, op_id: str, user: str) -> None:
        self.gates.check_may_tick(self.operation(op_id), user)

    def tick_checklist(self, op_id: str, checklist: str, checked: set[str], user: str) -> bool:
        return self.gates.tick_checklist(op_id, checklist, checked, user)

    def tick_by_bot(self, op_id: str, checklist: str, item_id: str, note: str) -> None:
        self.gates.tick_by_bot(op_id, checklist, item_id, note)

    def remind_after_checklist(self, op_id: str) -> None:
        self.gates.remind_after_checklist(op_id)

    def decide_approval(
        self,
        approval_id: str,
        user: str,
        approve: bool,
        message: tuple[str, str] | None = None,
    ) -> Approval:
        return self.gates.decide_approval(approval_id, user, approve, message)

    def request_approval_again(self, op_id: str, user: str) -> None:
        self.gates.request_approval_again(op_id, user)

    def remind_approval(self, approval_id: str) -> bool:
        return self.custody.remind_approval(approval_id)

    def expire_approval(self, approval_id: str) -> bool:
        return self.gates.expire_approval(approval_id)

    def take_over(self, op_id: str, user: str, reason: str) -> Operation:
        return self.custody.take_over(op_id, user, reason)

    def holder(self, environment: str) -> Holder | None:
        return self.custody.holder(environment)

    def check_idle(self, op_id: str) -> bool:
        return self.custody.check_idle(op_id)

    def decide(self, decision_id: str, user: str, choice: str) -> Decision:
        return self.decisions.decide(decision_id, user, choice)

    def shutdown(self) -> None:
        self.walker.shutdown()  # lets a running step finish, its lease renewed meanwhile
        self.keeper.stop()


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
