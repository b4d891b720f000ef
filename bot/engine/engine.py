"""The runbook engine: walks an operation's steps, persisting every state change to the
store before acting on it, stopping at checklist and approval gates, emitting events.

It knows nothing of Slack. Front ends call ``start``, ``tick_checklist``,
``decide_approval`` ...; listeners (the Slack incident log, the CLI) receive ``Event``s.
"""

from __future__ import annotations

import json
import logging
import secrets
import sqlite3
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
    plan_hash,
    plan_text,
)
from bot.errors import ConflictError, NotFound, PermissionDenied, UserError
from bot.faults import crash_point
from bot.settings import Config, Environment
from bot.store import FINAL_STATES, Operation, Store, new_operation_id

log = logging.getLogger(__name__)

Listener = Callable[[Event], None]
MembersOf = Callable[[str], set[str]]
BOT_ACTOR = "rollback-bot"


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

    def emit(self, op_id: str, kind: str, actor: str, message: str, **kw) -> Event:
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
                None, user, "request_refused", f"{what} on {env.name}: not a requester"
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
        params = dict(params or {})
        now = self.clock()
        op_id = new_operation_id(now)
        try:
            with self.store.transaction() as db:
                db["operations"].insert(
                    self._operation_row(op_id, runbook, env, requester, params, now)
                )
                db["steps"].insert_all(self._step_rows(op_id, runbook))
                db["checklist_items"].insert_all(self._checklist_rows(op_id, runbook))
        except sqlite3.IntegrityError:
            raise self._environment_busy(env, runbook) from None
        self.emit(
            op_id,
            "started",
            requester,
            f"{runbook.title} started on {env.name} by <@{requester}>",
            detail={"runbook": runbook.name, "environment": env.name, "params": params},
        )
        self.tick_by_bot(
            op_id, "before", "document", "rollback-bot records every action in the incident log"
        )
        self.kick(op_id)
        return self.store.operation(op_id)

    def _operation_row(self, op_id, runbook, env, requester, params, now) -> dict:
        return {
            "id": op_id,
            "runbook": runbook.name,
            "environment": env.name,
            "status": "running",
            "requester": requester,
            "params": json.dumps(params, sort_keys=True),
            "summary": runbook.describe(params),
            "created_at": iso(now),
            "updated_at": iso(now),
            "holds_environment": 1,
        }

    def _step_rows(self, op_id: str, runbook: Runbook) -> list[dict]:
        return [
            {
                "operation_id": op_id,
                "position": i,
                "step_id": s.id,
                "title": s.title,
                "destructive": int(s.destructive),
                "idempotent": int(s.idempotent),
            }
            for i, s in enumerate(runbook.steps)
        ]

    def _checklist_rows(self, op_id: str, runbook: Runbook) -> list[dict]:
        return [
            {
                "operation_id": op_id,
                "checklist": name,
                "item_id": item.id,
                "position": i,
                "label": item.label,
            }
            for name in runbook.checklists
            for i, item in enumerate(CHECKLISTS[name].items)
        ]

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
            if op.params.get("cancel_requested_by"):
                who = op.params["cancel_requested_by"]
                self.finish(
                    op, "cancelled", f"Cancelled by <@{who}> after the running step.", actor=who
                )
                return
            runbook = self.runbooks[op.runbook]
            env = self.config.environment(op.environment)
            row = next(
                (s for s in self.store.steps(op_id) if s["status"] not in ("succeeded", "skipped")),
                None,
            )
            if row is None:
                self.finish(op, "succeeded", "All steps succeeded.")
                return
            if row["status"] == "running":
                return  # another walker (or a crashed run, see recover()) owns it
            step = runbook.step(row["step_id"])
            if step.applies is not None and not step.applies(op.params):
                self._finish_step(op, step, "skipped", "not needed")
                self.emit(
                    op.id,
                    "step_skipped",
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
                "waiting_checklist",
                step,
                "Waiting for the before-rollback checklist to be completed.",
            )
            return False
        if not env.protected:
            return True
        text = plan_text(step, op, env)
        digest = plan_hash(text)
        approvals = [a for a in self.store.approvals(op.id) if a["step_id"] == step.id]
        if any(a["status"] == "approved" and a["plan_hash"] == digest for a in approvals):
            return True
        pending = [a for a in approvals if a["status"] == "pending"]
        for a in pending:
            if a["plan_hash"] == digest:
                self._set_waiting(op, "waiting_approval", step, None)
                return False
            self._supersede(a)
        if not pending and any(a["status"] == "expired" for a in approvals):
            self._set_waiting(op, "waiting_approval", step, None)
            return False  # the requester asks again (request_approval_again)
        self.request_approval(op, step, text, digest)
        return False

    def _set_waiting(self, op: Operation, status: str, step: Step, message: str | None) -> None:
        if op.status == status:
            return
        self.store.update_operation(op.id, status=status)
        if message:
            self.emit(
                op.id, "gate_waiting", BOT_ACTOR, message, step_id=step.id, detail={"gate": status}
            )

    def _run_step(self, op: Operation, env: Environment, runbook: Runbook, step: Step) -> bool:
        now = iso(self.clock())
        with self.store.transaction() as db:
            claimed = db.execute(
                "UPDATE steps SET status = 'running', started_at = ?, attempts = attempts + 1"
                " WHERE operation_id = ? AND step_id = ? AND status = 'pending'",
                (now, op.id, step.id),
            ).rowcount
            if claimed:
                db["operations"].update(op.id, {"status": "running", "updated_at": now})
        if not claimed:
            return False
        crash_point(op.runbook, step.id, "started")
        self.emit(
            op.id,
            "step_started",
            BOT_ACTOR,
            f"Started: {step.title}",
            step_id=step.id,
            detail={"destructive": step.destructive},
        )
        ctx = StepContext(
            operation=op,
            environment=env,
            params=op.params,
            progress=lambda done, total, message="": self.progress(
                op.id, step.id, done, total, message
            ),
            tick_checklist=lambda checklist, item, note: self.tick_by_bot(
                op.id, checklist, item, note
            ),
            record=lambda **values: self.record(op.id, values),
            ask=lambda prompt, choices, **kw: self.ask(op.id, step.id, prompt, choices, **kw),
            say=lambda text: self.emit(op.id, "step_note", BOT_ACTOR, text, step_id=step.id),
            sleep=self.sleep,
            card=lambda kind, title, data: self.emit(
                op.id,
                "card",
                BOT_ACTOR,
                title,
                step_id=step.id,
                detail={"card": kind, "data": data},
            ),
        )
        try:
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
        self._finish_step(op, step, "succeeded", result)
        crash_point(op.runbook, step.id, "finished")
        self.emit(
            op.id,
            "step_succeeded",
            BOT_ACTOR,
            f"Succeeded: {step.title}" + (f" ({result})" if result else ""),
            step_id=step.id,
        )
        return True

    def _finish_step(
        self, op: Operation, step: Step, status: str, detail: str, error: str | None = None
    ) -> None:
        with self.store.transaction() as db:
            db.execute(
                "UPDATE steps SET status = ?, finished_at = ?, detail = ?, error = ?"
                " WHERE operation_id = ? AND step_id = ?",
                (status, iso(self.clock()), detail, error, op.id, step.id),
            )

    def _step_failed(self, op: Operation, step: Step, error: str) -> None:
        self._finish_step(op, step, "failed", "", error)
        self.emit(
            op.id,
            "step_failed",
            BOT_ACTOR,
            f"Failed: {step.title}: {error}",
            step_id=step.id,
            detail={"error": error},
        )
        self.finish(self.store.operation(op.id), "failed", f"Step '{step.title}' failed.")

    def progress(
        self, op_id: str, step_id: str, done: float, total: float, message: str = ""
    ) -> None:
        with self.store.transaction() as db:
            db.execute(
                "UPDATE steps SET detail = ? WHERE operation_id = ? AND step_id = ?",
                (message, op_id, step_id),
            )
        self.emit(
            op_id,
            "progress",
            BOT_ACTOR,
            message,
            step_id=step_id,
            detail={"done": done, "total": total},
            audited=False,
        )

    def finish(self, op: Operation, status: str, message: str, actor: str = BOT_ACTOR) -> bool:
        """Ends the operation and frees its environment; False when it had already ended."""
        now = self.clock()
        with self.store.transaction() as db:
            changed = db.execute(
                "UPDATE operations SET status = ?, result = ?, finished_at = ?, updated_at = ?,"
                " holds_environment = NULL WHERE id = ? AND holds_environment = 1",
                (status, message, iso(now), iso(now), op.id),
            ).rowcount
            if changed and status in ("succeeded", "failed"):
                run_at = now + timedelta(seconds=self.config.reminder_delay_seconds)
                db["scheduled_jobs"].insert(
                    {
                        "id": f"after-checklist-reminder:{op.id}",
                        "operation_id": op.id,
                        "kind": "after_checklist_reminder",
                        "run_at": iso(run_at),
                        "payload": "{}",
                    }
                )
        if changed:
            self.emit(
                op.id,
                "finished",
                actor,
                f"Finished: {status}. {message}",
                detail={"status": status},
            )
        return bool(changed)

    # --- checklists -----------------------------------------------------------------

    def checklist_complete(self, op_id: str, checklist: str) -> bool:
        items = self.store.checklist(op_id, checklist)
        return bool(items) and all(i["checked"] for i in items)

    def tick_checklist(self, op_id: str, checklist: str, checked: set[str], user: str) -> bool:
        """Records a person's ticks. Items ticked by the bot stay ticked. Returns whether the
        checklist is now complete; kicks the engine when a gate may have opened."""
        op = self._operation(op_id)
        items = self.store.checklist(op_id, checklist)
        if not items:
            raise NotFound(f"Operation {op_id} has no {checklist} checklist.")
        known = {i["item_id"] for i in items}
        unknown = checked - known
        if unknown:
            raise UserError(f"Unknown checklist items: {', '.join(sorted(unknown))}.")
        now = iso(self.clock())
        changes: list[tuple[str, bool]] = []
        with self.store.transaction() as db:
            # Read again under the write lock: a double-submitted modal ticks each item once.
            for item in self.store.checklist(op_id, checklist):
                if item["by_bot"]:
                    continue
                want = item["item_id"] in checked
                if bool(item["checked"]) != want:
                    db.execute(
                        "UPDATE checklist_items SET checked = ?, checked_by = ?, checked_at = ?"
                        " WHERE operation_id = ? AND checklist = ? AND item_id = ?",
                        (
                            int(want),
                            user if want else None,
                            now if want else None,
                            op_id,
                            checklist,
                            item["item_id"],
                        ),
                    )
                    changes.append((item["label"], want))
        for label, want in changes:
            self.emit(
                op_id,
                "checklist_ticked" if want else "checklist_unticked",
                user,
                f"{CHECKLISTS[checklist].title}: {'ticked' if want else 'unticked'} '{label}'",
                detail={"checklist": checklist, "item": label},
            )
        complete = self.checklist_complete(op_id, checklist)
        if complete and changes and self._first_completion(op_id, checklist):
            self.emit(
                op_id,
                "checklist_completed",
                user,
                f"{CHECKLISTS[checklist].title} checklist complete",
                detail={"checklist": checklist},
            )
        if op.status not in FINAL_STATES:
            self.kick(op_id)
        return complete

    def _first_completion(self, op_id: str, checklist: str) -> bool:
        """True once per checklist: the audit log says "complete" a single time."""
        with self.store.transaction() as db:
            return (
                db.execute(
                    "INSERT OR IGNORE INTO seen_events (event_id, seen_at) VALUES (?, ?)",
                    (f"checklist-complete:{op_id}:{checklist}", iso(self.clock())),
                ).rowcount
                == 1
            )

    def tick_by_bot(self, op_id: str, checklist: str, item_id: str, note: str) -> None:
        """The hook for items the bot verified itself (a snapshot taken, a notice posted)."""
        with self.store.transaction() as db:
            changed = db.execute(
                "UPDATE checklist_items SET checked = 1, by_bot = 1, checked_by = ?,"
                " checked_at = ?, note = ? WHERE operation_id = ? AND checklist = ?"
                " AND item_id = ? AND by_bot = 0",
                (BOT_ACTOR, iso(self.clock()), note, op_id, checklist, item_id),
            ).rowcount
        if changed:
            title = next(i.title for i in CHECKLISTS[checklist].items if i.id == item_id)
            self.emit(
                op_id,
                "checklist_ticked",
                BOT_ACTOR,
                f"{CHECKLISTS[checklist].title}: ticked by rollback-bot '{title}' ({note})",
                detail={"checklist": checklist, "item": title, "by_bot": True},
            )
            self.kick(op_id)

    # --- approvals ------------------------------------------------------------------

    def request_approval(self, op: Operation, step: Step, text: str, digest: str) -> dict:
        now = self.clock()
        expires = now + timedelta(seconds=self.config.approval_expiry_seconds)
        row = {
            "id": f"apr-{secrets.token_hex(5)}",
            "operation_id": op.id,
            "step_id": step.id,
            "plan_text": text,
            "plan_hash": digest,
            "requested_by": op.requester,
            "requested_at": iso(now),
            "expires_at": iso(expires),
            "status": "pending",
        }
        with self.store.transaction() as db:
            db["approvals"].insert(row)
            db["operations"].update(op.id, {"status": "waiting_approval", "updated_at": iso(now)})
            db["scheduled_jobs"].insert(
                {
                    "id": f"approval-expiry:{row['id']}",
                    "operation_id": op.id,
                    "kind": "approval_expiry",
                    "run_at": iso(expires),
                    "payload": f'{{"approval_id": "{row["id"]}"}}',
                }
            )
        self.emit(
            op.id,
            "approval_requested",
            op.requester,
            f"Approval requested for: {step.title}",
            step_id=step.id,
            detail={
                "approval_id": row["id"],
                "plan": text,
                "plan_hash": digest,
                "expires_at": row["expires_at"],
            },
        )
        return row

    def request_approval_again(self, op_id: str, user: str) -> None:
        op = self._operation(op_id)
        if user != op.requester:
            raise PermissionDenied("Only the requester can ask for approval again.")
        if op.status != "waiting_approval":
            raise ConflictError(f"Operation {op_id} is not waiting for an approval.")
        if any(a["status"] == "pending" for a in self.store.approvals(op_id)):
            raise ConflictError("An approval request is already pending.")
        runbook = self.runbooks[op.runbook]
        env = self.config.environment(op.environment)
        row = next(s for s in self.store.steps(op_id) if s["status"] == "pending")
        step = runbook.step(row["step_id"])
        text = plan_text(step, op, env)
        self.request_approval(op, step, text, plan_hash(text))

    def decide_approval(self, approval_id: str, user: str, approve: bool) -> dict:
        approval = self.store.approval(approval_id)
        if approval is None:
            raise NotFound(f"Approval {approval_id} does not exist.")
        op = self._operation(approval["operation_id"])
        env = self.config.environment(op.environment)
        verb = "approve" if approve else "deny"
        if approve and user == op.requester:
            self._refused(op, user, approval, "self-approval")
            raise PermissionDenied(
                "You cannot approve your own request: the two-person rule needs a second person.",
                "Ask one of the approvers to click Approve.",
            )
        if user != op.requester and user not in self.resolve_principals(env.approvers):
            self._refused(op, user, approval, "not an approver")
            raise PermissionDenied(
                f"You are not an approver for {env.name}, so you cannot {verb} this.",
                f"Approvers: {', '.join(env.approvers)}.",
            )
        if approval["status"] != "pending":
            raise self._already_decided(approval)
        if self.clock() >= parse_iso(approval["expires_at"]):
            self.expire_approval(approval_id)
            raise ConflictError(
                "This approval request has expired; nothing was run.",
                "The requester can ask for approval again from the operation's status message.",
            )
        step = self.runbooks[op.runbook].step(approval["step_id"])
        if plan_hash(plan_text(step, op, env)) != approval["plan_hash"]:
            self._supersede(approval)
            self.kick(op.id)
            raise ConflictError(
                "The plan changed after this approval was requested, so it cannot be approved.",
                "A new approval request with the current plan has been posted.",
            )
        status = "approved" if approve else "denied"
        now = iso(self.clock())
        with self.store.transaction() as db:
            won = db.execute(
                "UPDATE approvals SET status = ?, decided_by = ?, decided_at = ?"
                " WHERE id = ? AND status = 'pending'",
                (status, user, now, approval_id),
            ).rowcount
        if not won:  # a concurrent click decided first
            raise self._already_decided(self.store.approval(approval_id))
        decided = self.store.approval(approval_id)
        self.emit(
            op.id,
            f"approval_{'granted' if approve else 'denied'}",
            user,
            f"<@{user}> {'approved' if approve else 'denied'}: {step.title}",
            step_id=step.id,
            detail={"approval_id": approval_id, "plan_hash": approval["plan_hash"]},
        )
        if approve:
            self.kick(op.id)
        else:
            self.finish(
                self._operation(op.id),
                "cancelled",
                f"Approval denied by <@{user}>; the step did not run.",
                actor=user,
            )
        return decided

    def _already_decided(self, approval: dict) -> ConflictError:
        status = approval["status"]
        who = f" by <@{approval['decided_by']}>" if approval["decided_by"] else ""
        when = f" at {shown_utc(approval['decided_at'], 'time')}" if approval["decided_at"] else ""
        return ConflictError(
            f"This approval request was already {status}{who}{when}.", code="already_decided"
        )

    def _refused(self, op: Operation, user: str, approval: dict, reason: str) -> None:
        self.store.append_audit(
            op.id,
            user,
            "approval_refused",
            f"Refused: {reason}",
            step_id=approval["step_id"],
            detail={"approval_id": approval["id"], "reason": reason},
        )

    def _supersede(self, approval: dict) -> None:
        with self.store.transaction() as db:
            db.execute(
                "UPDATE approvals SET status = 'superseded' WHERE id = ? AND status = 'pending'",
                (approval["id"],),
            )
        self.emit(
            approval["operation_id"],
            "approval_superseded",
            BOT_ACTOR,
            "The plan changed; the earlier approval request no longer applies.",
            step_id=approval["step_id"],
            detail={"approval_id": approval["id"]},
        )

    def expire_approval(self, approval_id: str) -> bool:
        with self.store.transaction() as db:
            changed = db.execute(
                "UPDATE approvals SET status = 'expired', decided_at = ? WHERE id = ?"
                " AND status = 'pending'",
                (iso(self.clock()), approval_id),
            ).rowcount
        if changed:
            a = self.store.approval(approval_id)
            self.emit(
                a["operation_id"],
                "approval_expired",
                BOT_ACTOR,
                "The approval request expired without a decision; nothing was run.",
                step_id=a["step_id"],
                detail={"approval_id": approval_id},
            )
        return bool(changed)

    # --- step data and decisions ----------------------------------------------------

    def record(self, op_id: str, values: dict) -> dict:
        with self.store.transaction() as db:
            row = db["operations"].get(op_id)
            params = json.loads(row["params"] or "{}")
            params.update(values)
            db["operations"].update(
                op_id, {"params": json.dumps(params, sort_keys=True, default=str)}
            )
        return params

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
        decision = {
            "id": f"dec-{secrets.token_hex(5)}",
            "operation_id": op_id,
            "step_id": step_id,
            "prompt": prompt,
            "choices": json.dumps(choices),
            "default_choice": default,
            "status": "pending",
            "asked_at": iso(now),
            "expires_at": iso(now + timedelta(seconds=timeout)),
        }
        with self.store.transaction() as db:
            db["decisions"].insert(decision)
        self.emit(
            op_id,
            "decision_requested",
            BOT_ACTOR,
            prompt,
            step_id=step_id,
            detail={
                "decision_id": decision["id"],
                "choices": choices,
                "default": default,
                "expires_at": decision["expires_at"],
            },
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and not self._stopping:
            row = self.store.decision(decision["id"])
            if row["status"] == "decided":
                return row["choice"]
            time.sleep(poll)
        with self.store.transaction() as db:
            expired = db.execute(
                "UPDATE decisions SET status = 'expired', choice = ?, decided_at = ?"
                " WHERE id = ? AND status = 'pending'",
                (default, iso(self.clock()), decision["id"]),
            ).rowcount
        if expired:
            self.emit(
                op_id,
                "decision_expired",
                BOT_ACTOR,
                f"No answer in time; chose the safe default: {choices[default]}.",
                step_id=step_id,
                detail={"decision_id": decision["id"], "choice": default},
            )
            return default
        return self.store.decision(decision["id"])["choice"]

    def decide(self, decision_id: str, user: str, choice: str) -> dict:
        row = self.store.decision(decision_id)
        if row is None:
            raise NotFound(f"There is no decision {decision_id}.")
        op = self._operation(row["operation_id"])
        if user != op.requester:
            self.store.append_audit(
                op.id,
                user,
                "decision_refused",
                "not the requester",
                step_id=row["step_id"],
                detail={"decision_id": decision_id},
            )
            raise PermissionDenied(
                "Only the requester of this operation can decide this.", f"Ask <@{op.requester}>."
            )
        choices = json.loads(row["choices"])
        if choice not in choices:
            raise UserError(f"`{choice}` is not one of the choices.")
        with self.store.transaction() as db:
            won = db.execute(
                "UPDATE decisions SET status = 'decided', choice = ?, decided_by = ?,"
                " decided_at = ? WHERE id = ? AND status = 'pending'",
                (choice, user, iso(self.clock()), decision_id),
            ).rowcount
        if not won:
            done = self.store.decision(decision_id)
            raise ConflictError(
                f"This was already decided: {choices.get(done['choice'])} ({done['status']}).",
                code="already_decided",
            )
        self.emit(
            op.id,
            "decision_made",
            user,
            f"<@{user}> chose: {choices[choice]}",
            step_id=row["step_id"],
            detail={"decision_id": decision_id, "choice": choice},
        )
        return self.store.decision(decision_id)

    def remind_after_checklist(self, op_id: str) -> None:
        op = self._operation(op_id)
        open_items = [i["label"] for i in self.store.checklist(op_id, "after") if not i["checked"]]
        if not open_items:
            return
        self.emit(
            op_id,
            "after_checklist_reminder",
            BOT_ACTOR,
            f"Reminder for <@{op.requester}>: the after-rollback checklist has"
            f" {len(open_items)} open item(s): " + "; ".join(open_items),
            detail={"open_items": open_items},
        )

    # --- other --------------------------------------------------------------------

    def cancel(self, op_id: str, user: str) -> str:
        """Stops the operation between steps. While a step runs, the cancellation is
        recorded and takes effect when that step ends (a step is never cut in half)."""
        op = self._operation(op_id)
        if user != op.requester:
            raise PermissionDenied("Only the requester can cancel this operation.")
        if op.status in FINAL_STATES:
            raise ConflictError(f"Operation {op_id} already ended ({op.status}).")
        if any(s["status"] == "running" for s in self.store.steps(op_id)):
            self.record(op_id, {"cancel_requested_by": user})
            self.kick(op_id)
            return "requested"
        if not self.finish(op, "cancelled", f"Cancelled by <@{user}>.", actor=user):
            raise ConflictError(f"Operation {op_id} already ended.")
        return "cancelled"

    def recover(self) -> None:
        """At start-up: a step left 'running' by a crash is rerun when idempotent, else the
        operation stops in a safe state with a clear message; waiting ones are resumed."""
        for op in self.store.operations(active=True, limit=1000):
            self.emit(
                op.id,
                "resumed",
                BOT_ACTOR,
                "The bot restarted; resuming this operation from its recorded state.",
            )
            runbook = self.runbooks.get(op.runbook)
            for row in self.store.steps(op.id):
                if row["status"] != "running":
                    continue
                if runbook and runbook.step(row["step_id"]).idempotent:
                    with self.store.transaction() as db:
                        db.execute(
                            "UPDATE steps SET status = 'pending' WHERE operation_id = ?"
                            " AND step_id = ?",
                            (op.id, row["step_id"]),
                        )
                    self.emit(
                        op.id,
                        "step_resumed",
                        BOT_ACTOR,
                        f"The bot restarted during '{row['title']}'; it is safe to run"
                        " again and will be rerun.",
                        step_id=row["step_id"],
                    )
                else:
                    self._finish_step(
                        op, runbook.step(row["step_id"]), "failed", "", "interrupted by a restart"
                    )
                    self.finish(
                        op,
                        "stopped",
                        f"The bot restarted while '{row['title']}' was running and"
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
