"""Mid-step decisions: a question only the requester answers while a step waits (Commit or
Roll back while option 4 holds its transaction open). Persisted and audited; answered at
most once; no answer in time means the safe default.
"""

from __future__ import annotations

import secrets
import time
from datetime import timedelta
from typing import TYPE_CHECKING

from bot.clock import iso
from bot.engine.model import BOT_ACTOR
from bot.errors import ConflictError, NotFound, PermissionDenied, UserError
from bot.store.records import Decision, DecisionStatus, EventKind

if TYPE_CHECKING:
    from bot.engine.engine import Engine


class Decisions:
    def __init__(self, engine: Engine):
        self.engine = engine
        self.store, self.clock, self.emit = engine.store, engine.clock, engine.emit

    def ask(
        self,
        op_id: str,
        step_id: str,
        prompt: str,
        choices: dict[str, str],
        *,
        timeout: float,
        default: str,
        table: str = "",
        poll: float = 0.1,
    ) -> str:
        """A decision only the requester can make, mid-step (commit or roll back a held
        transaction, for example). Persisted, audited, and answered at most once. ``table``:
        evidence as a fixed-width table, shown with the question in a code block; the
        audit log and the thread get the prompt alone."""
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
            evidence_table=table,
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
        while time.monotonic() < deadline and not self.engine.walker.stopping:
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
        op = self.engine.operation(decision.operation_id)
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
                "Only the requester of this operation can decide this.",
                f"Ask <@{op.requester}>.",
                people=(op.requester,),
            )
        if choice not in decision.choices:
            raise UserError(
                f"`{choice}` is not one of the choices.", "Use one of the question's buttons."
            )
        if not self.store.answer_decision(decision_id, choice, user, self.clock()):
            done = self.store.decision(decision_id)
            raise ConflictError(
                f"This was already decided: {decision.choices.get(done.choice)} ({done.status}).",
                "The operation's status message shows what happened next.",
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
