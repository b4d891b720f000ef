"""What a runbook is: data the engine walks. Adding a step never touches Slack code."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from bot.settings import Environment
    from bot.store import Operation


@dataclass(frozen=True)
class Event:
    """Something that happened to an operation. ``audited`` events go to the audit table
    and the incident thread; progress ticks only move the live status message."""

    operation_id: str
    kind: str
    actor: str
    message: str
    at: datetime
    step_id: str | None = None
    detail: dict[str, Any] = field(default_factory=dict)
    audited: bool = True


class StepInterrupted(Exception):  # noqa: N818 - reads as what happened
    """Raised by a step that stops waiting because the bot is shutting down. The step stays
    'running' in the store; an idempotent one is rerun by recover() at the next start."""


@dataclass
class StepContext:
    """What a step's action and check may use. No Slack in here."""

    operation: Operation
    environment: Environment
    params: dict[str, Any]
    progress: Callable[..., None]
    tick_checklist: Callable[[str, str, str], None]
    # record(key=value, ...): merges into the operation's params, persisted at once, so a
    # later step (or a resumed run, or the incident report) sees what an earlier one found.
    record: Callable[..., None]
    # ask(prompt, choices, timeout=..., default=...): blocks the step until the requester
    # picks one of choices (value -> label) in Slack or the CLI; the default on time-out.
    ask: Callable[..., str]
    # say(text): a line in the incident thread (and the audit log) from inside a step.
    say: Callable[[str], None]
    # card(kind, title, data): a rich result (a status card, a dry-run review...) that front
    # ends render by kind (Slack: bot/slack/cards.py); audited with its title and data.
    card: Callable[[str, str, dict], None]
    # sleep(seconds) -> False when the bot is shutting down: a polling step then returns
    # (its state is recorded; recover() resumes it at the next start) instead of holding
    # the shutdown until RDS finishes.
    sleep: Callable[[float], bool] = lambda seconds: True


Action = Callable[[StepContext], "str | None"]
PlanText = Callable[["Operation", "Environment"], str]


@dataclass(frozen=True)
class Step:
    id: str
    title: str
    action: Action
    check: Callable[[StepContext], None] | None = None
    destructive: bool = False
    # Safe to run again after a crash left it half-done (the engine reruns it on resume).
    idempotent: bool = False
    # The canonical text of what this step will do; its hash binds an approval.
    plan: PlanText | None = None
    # applies(params): False skips the step (recorded as skipped), e.g. "undo the applied
    # statements" when none were applied.
    applies: Callable[[dict[str, Any]], bool] | None = None


@dataclass(frozen=True)
class Runbook:
    name: str
    title: str
    steps: tuple[Step, ...]
    # Checklists created with each operation; "before" gates destructive steps.
    checklists: tuple[str, ...] = ("before", "after")
    describe: Callable[[dict[str, Any]], str] = lambda params: ""

    def step(self, step_id: str) -> Step:
        for s in self.steps:
            if s.id == step_id:
                return s
        raise KeyError(step_id)


def plan_text(step: Step, operation: Operation, environment: Environment) -> str:
    if step.plan is not None:
        return step.plan(operation, environment)
    return f"{step.title} on environment {environment.name} (operation {operation.id})"


def plan_hash(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()
