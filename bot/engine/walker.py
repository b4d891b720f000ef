"""The walker: one worker thread per operation at a time walks its steps, claiming each in
the store before running it, stopping at the gates (bot/engine/gates.py), recording each
outcome, and ending the operation.

Across replicas, a walker walks an operation only while it holds the operation's lease
(bot/store/leases.py), renewed by the lease keeper (bot/engine/leases.py); the lease's token
fences the step's claim and its result.

At shutdown it lets a running step finish (a polling step returns early through
``sleep``) and starts no other; ``Engine.recover`` picks the operations up at the next start
(or another replica does, once the lease has run out).
"""

from __future__ import annotations

import logging
import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from typing import TYPE_CHECKING

from bot import logs
from bot.clock import iso
from bot.engine.model import (
    BOT_ACTOR,
    PlanChanged,
    RolledBack,
    Runbook,
    Step,
    StepContext,
    StepInterrupted,
    ToDo,
    check_params,
)
from bot.engine.outcome import CHANGED_STATES, outcome
from bot.errors import UserError
from bot.faults import crash_point
from bot.settings import Environment
from bot.store.leases import Lease, LeaseLost
from bot.store.records import (
    FINAL_STATES,
    EventKind,
    JobKind,
    Operation,
    OperationStatus,
    ScheduledJob,
    StepStatus,
)
from bot.words import status_words

if TYPE_CHECKING:
    from bot.engine.engine import Engine

log = logging.getLogger(__name__)

_DONE = (StepStatus.SUCCEEDED, StepStatus.SKIPPED, StepStatus.DECLINED, StepStatus.TODO)


class Walker:
    def __init__(self, engine: Engine, workers: int):
        self.engine = engine
        self.store, self.config, self.runbooks = engine.store, engine.config, engine.runbooks
        self.clock, self.emit = engine.clock, engine.emit
        self.stopping = False
        self._stop_event = threading.Event()
        self._executor = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="engine")
        self._kick_lock = threading.Lock()
        self._running: set[str] = set()
        self._again: set[str] = set()
        # The leases this process holds, and per operation what interrupts its polling
        # step (a shutdown, or the lease lost to another replica).
        self.owner = engine.replica
        self.lease_seconds = engine.config.lease_seconds
        self.leases: dict[str, Lease] = {}
        self._interrupts: dict[str, threading.Event] = {}

    def kick(self, op_id: str) -> None:
        """Advance the operation on a worker; one walker per operation at a time, and a
        kick that arrives while it walks makes it look again (state may have changed)."""
        if self.stopping:
            return  # recover() picks the operation up at the next start
        with self._kick_lock:
            if op_id in self._running:
                self._again.add(op_id)
                return
            self._running.add(op_id)
        # Every line logged while walking it carries the operation id (--log-format json).
        self._executor.submit(logs.with_operation(op_id, self._walk), op_id)

    def is_walking(self, op_id: str) -> bool:
        """Whether this process walks the operation right now (a front end waits for its
        last events before saying what is next; a status read alone could predate a tick
        or an approval the walker has not acted on yet)."""
        with self._kick_lock:
            return op_id in self._running

    def _walk(self, op_id: str) -> None:
        while True:
            lease = self._take(op_id)
            if lease is not None:
                try:
                    self.advance(op_id)
                except LeaseLost:
                    log.warning("engine: %s was taken over by another replica", op_id)
                except Exception:  # noqa: BLE001 - the walker thread must never die silently
                    log.exception("engine: advancing %s failed", op_id)
                finally:
                    self._let_go(lease)
            with self._kick_lock:
                if op_id not in self._again:
                    self._running.discard(op_id)
                    return
                self._again.discard(op_id)

    def _take(self, op_id: str) -> Lease | None:
        """The operation's lease, or None while another replica holds it (it walks the
        operation) or the operation has ended."""
        lease = self.store.take_lease(op_id, self.owner, self.clock(), self.lease_seconds)
        if lease is not None:
            self.engine.keeper.ensure_running()
            self._interrupts[op_id] = threading.Event()
            self.leases[op_id] = lease
            if self.stopping:
                self._interrupts[op_id].set()
        return lease

    def _let_go(self, lease: Lease) -> None:
        """Frees the lease, unless the bot is stopping: a step it interrupted is still
        running, and whoever takes the lease next (this replica restarted, or another once
        it ran out) resumes it by the restart rule."""
        self.leases.pop(lease.operation_id, None)
        self._interrupts.pop(lease.operation_id, None)
        if self.stopping:
            return
        try:
            self.store.release_lease(lease)
        except Exception:  # noqa: BLE001 - the walker thread must never die; the lease expires
            log.exception("engine: releasing the lease on %s failed", lease.operation_id)

    def lease_lost(self, op_id: str) -> None:
        """The heartbeat found the lease taken: a polling step stops, its result is fenced."""
        interrupt = self._interrupts.get(op_id)
        if interrupt is not None:
            interrupt.set()

    def advance(self, op_id: str) -> None:
        while not self.stopping:
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
            runbook = self.runbooks.get(op.runbook)
            if runbook is None:
                self.stop_unknown_runbook(op)
                return
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
            if step.destructive and not self.engine.gates.open_for(op, env, step):
                return
            if not self._run_step(op, env, runbook, step):
                return

    def _run_step(self, op: Operation, env: Environment, runbook: Runbook, step: Step) -> bool:
        lease = self.leases.get(op.id)
        if not self.store.claim_step(op.id, step.id, self.clock(), lease):
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
        except PlanChanged as exc:
            self._plan_changed(op, step, str(exc))
            return True  # walk on: the gate asks for a new approval of the new plan
        except RolledBack as exc:
            self._rolled_back(op, step, exc)
            return False
        except UserError as exc:
            self._step_failed(op, step, str(exc))
            return False
        except Exception as exc:  # noqa: BLE001 - any failure of a step must be recorded
            log.exception("step %s of %s failed", step.id, op.id)
            self._step_failed(op, step, f"{type(exc).__name__}: {exc}")
            return False
        crash_point(op.runbook, step.id, "acted")
        done = StepStatus.TODO if isinstance(result, ToDo) else StepStatus.SUCCEEDED
        if done == StepStatus.TODO:
            result = ToDo(f"to do for <@{result.person}>: {result}", result.person)
        self.store.end_step(op.id, step.id, done, self.clock(), result, lease=lease)
        crash_point(op.runbook, step.id, "finished")
        if done == StepStatus.TODO:
            self.emit(
                op.id,
                EventKind.STEP_SUCCEEDED,
                BOT_ACTOR,
                f"{step.title}: {result}",
                step_id=step.id,
                detail={"todo_for": result.person},
            )
            return True
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

        def for_requester(kind, title: str, data: dict) -> None:
            detail = {"card": kind, "data": data, "user": op.requester}
            self.emit(
                op_id,
                EventKind.FOR_REQUESTER,
                BOT_ACTOR,
                title,
                step_id=step_id,
                detail=detail,
                audited=False,
            )

        return StepContext(
            operation=op,
            environment=env,
            params=op.params,
            progress=lambda done, total, message="": self.progress(
                op_id, step_id, done, total, message
            ),
            tick_checklist=lambda checklist, item, note: self.engine.gates.tick_by_bot(
                op_id, checklist, item, note
            ),
            record=lambda **values: self.record(op_id, check_params(runbook, values, partial=True)),
            ask=lambda prompt, choices, **kw: self.engine.decisions.ask(
                op_id, step_id, prompt, choices, **kw
            ),
            say=lambda text: self.emit(
                op_id, EventKind.STEP_NOTE, BOT_ACTOR, text, step_id=step_id
            ),
            sleep=lambda seconds: self.sleep(seconds, op_id),
            card=card,
            for_requester=for_requester,
            config=self.config,
            cancel_job=self.store.finish_job,
        )

    def _plan_changed(self, op: Operation, step: Step, message: str) -> None:
        self.store.rerun_step(op.id, step.id, self.leases.get(op.id))
        self.emit(
            op.id,
            EventKind.PLAN_CHANGED,
            BOT_ACTOR,
            f"{step.title}: {message}",
            step_id=step.id,
        )

    def _rolled_back(self, op: Operation, step: Step, exc: RolledBack) -> None:
        asked = [d for d in self.store.decisions(op.id) if d.step_id == step.id]
        who = exc.by or (asked[-1].decided_by if asked else None)
        if who is None:  # nobody's word: the safe default on time-out, reported as such
            self._step_failed(op, step, str(exc))
            return
        message = f"Rolled back by <@{who}>. {exc}"
        self.store.end_step(
            op.id,
            step.id,
            StepStatus.ROLLED_BACK,
            self.clock(),
            message,
            None,
            self.leases.get(op.id),
        )
        self.emit(
            op.id, EventKind.STEP_ROLLED_BACK, who, f"{step.title}: {message}", step_id=step.id
        )
        self.finish(self.store.operation(op.id), OperationStatus.ROLLED_BACK, message, actor=who)

    def _step_failed(self, op: Operation, step: Step, error: str) -> None:
        self.store.end_step(
            op.id, step.id, StepStatus.FAILED, self.clock(), "", error, self.leases.get(op.id)
        )
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
        self,
        op: Operation,
        status: OperationStatus,
        message: str,
        actor: str = BOT_ACTOR,
        only_while: OperationStatus | None = None,
    ) -> bool:
        """Ends the operation and frees its environment; False when it had already ended.
        The end state says what happened (outcome()); a run that changed something gets its
        after-checklist reminder scheduled."""
        now = self.clock()
        status, message = outcome(self.store.steps(op.id), status, message)
        reminder = None
        if status in CHANGED_STATES:
            reminder = ScheduledJob(
                id=f"after-checklist-reminder:{op.id}",
                operation_id=op.id,
                kind=JobKind.AFTER_CHECKLIST_REMINDER,
                run_at=iso(now + timedelta(seconds=self.config.reminder_delay_seconds)),
            )
        if not self.store.finish_operation(
            op.id, status, message, now, then_schedule=reminder, only_while=only_while
        ):
            return False
        said = status_words(status)
        self.engine.gates.supersede_pending(op.id, f"The operation ended ({said}).")
        self.emit(
            op.id,
            EventKind.FINISHED,
            actor,
            f"{said}. {message}",
            detail={"status": status},
        )
        return True

    def stop_unknown_runbook(self, op: Operation) -> None:
        """An operation whose runbook this version of the bot does not have (a version that
        had it started it): nothing more is run; a step it left running is failed."""
        for record in self.store.steps(op.id):
            if record.status == StepStatus.RUNNING:
                self.store.end_step(
                    op.id,
                    record.step_id,
                    StepStatus.FAILED,
                    self.clock(),
                    error="interrupted: this version of the bot has no such runbook",
                )
        self.finish(
            op,
            OperationStatus.STOPPED,
            f"This version of the bot has no runbook `{op.runbook}`, so nothing more of this"
            " operation is run. Check what its steps did by hand.",
        )

    def record(self, op_id: str, values: dict) -> dict:
        return self.store.merge_params(op_id, values)

    def sleep(self, seconds: float, op_id: str | None = None) -> bool:
        """Waits, unless the engine is stopping or (for ``op_id``) its lease was lost;
        returns whether to carry on."""
        interrupt = self._interrupts.get(op_id or "", self._stop_event)
        return not interrupt.wait(seconds)

    def shutdown(self) -> None:
        """Lets a running step finish (its state is then recorded) and starts no other."""
        self.stopping = True
        self._stop_event.set()
        for interrupt in list(self._interrupts.values()):
            interrupt.set()
        self._executor.shutdown(wait=True, cancel_futures=True)
