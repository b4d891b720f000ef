"""What a runbook is: data the engine walks. Adding a step never touches Slack code."""

from __future__ import annotations

import dataclasses
import hashlib
import types
import typing
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from bot.errors import UserError
from bot.store.records import EventKind

if TYPE_CHECKING:
    from bot.settings import Config, Environment
    from bot.store.records import Operation

# Who the audit log names for what the bot does on its own.
BOT_ACTOR = "rollback-bot"


@dataclass(frozen=True)
class Event:
    """Something that happened to an operation. ``audited`` events go to the audit table
    and the incident thread; progress ticks only move the live status message."""

    operation_id: str
    kind: EventKind
    actor: str
    message: str
    at: datetime
    step_id: str | None = None
    detail: dict[str, Any] = field(default_factory=dict)
    audited: bool = True


class StepInterrupted(Exception):  # noqa: N818 - reads as what happened
    """Raised by a step that stops waiting because the bot is shutting down. The step stays
    'running' in the store; an idempotent one is rerun by recover() at the next start."""


class PlanChanged(Exception):  # noqa: N818 - reads as what happened
    """Raised by a step whose approved plan is no longer what it would do (option 4: the real
    run's row counts differ from the dry run's). The step has undone its effects and
    recorded what it found, which changes its plan text: the engine puts it back to pending
    and its gate asks for a new approval of the new plan."""


class RolledBack(Exception):  # noqa: N818 - reads as what happened
    """Raised by a step whose work was rolled back on a person's word (option 4's Roll back):
    nothing changed. ``by`` None: the person who answered the step's last question. The
    operation ends as rolled back by them, not as failed; with nobody's word (no answer in
    time), it fails with the message."""

    def __init__(self, message: str, by: str | None = None):
        super().__init__(message)
        self.by = by


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
    # ask(prompt, choices, timeout=..., default=..., table=""): blocks the step until the
    # requester picks one of choices (value -> label) in Slack or the CLI; the default on
    # time-out. ``table``: evidence as a fixed-width table, shown in a code block.
    ask: Callable[..., str]
    # say(text): a line in the incident thread (and the audit log) from inside a step.
    say: Callable[[str], None]
    # card(kind, title, data): a rich result (a status card, a dry-run review...) that front
    # ends render by kind (Slack: bot/slack/cards.py); audited with its title and data.
    card: Callable[[str, str, dict], None]
    # The bot's whole configuration, read-only: a check that must know every environment
    # (PITR's cleanup refuses an instance any environment is configured to use).
    config: Config
    # cancel_job(job_id) -> False when it had already run or been cancelled: an undo of a
    # traffic switch cancels the cleanup the switch scheduled.
    cancel_job: Callable[[str], bool]
    # sleep(seconds) -> False when the bot is shutting down: a polling step then returns
    # (its state is recorded; recover() resumes it at the next start) instead of holding
    # the shutdown until RDS finishes.
    sleep: Callable[[float], bool] = lambda seconds: True
    # for_requester(kind, title, data): a card only the requester sees (Slack: ephemeral in
    # the incident channel; terminal: their own invocation), never audited: sample rows and
    # results read from production before anyone approved.
    for_requester: Callable[[str, str, dict], None] = lambda kind, title, data: None


class ToDo(str):
    """What a step returns when its part is telling a person what to do next: the step is
    shown as a to-do for ``person`` (not as done), and the operation still finishes."""

    person: str

    def __new__(cls, text: str, person: str) -> ToDo:
        todo = super().__new__(cls, text)
        todo.person = person
        return todo


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
    # A destructive step the operation can do without: a denied approval declines it (the
    # operation goes on and ends "succeeded with steps declined") instead of cancelling.
    optional: bool = False


@dataclass(frozen=True)
class Runbook:
    name: str
    title: str
    steps: tuple[Step, ...]
    # Checklists created with each operation; "before" gates destructive steps.
    checklists: tuple[str, ...] = ("before", "after")
    describe: Callable[[dict[str, Any]], str] = lambda params: ""
    # The operation's params, declared: a dataclass whose fields are every key a front end
    # may start it with (no default: required) and every key a step records (a default).
    # The engine checks them at start and on each ctx.record; steps read them as a mapping.
    params: type | None = None

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


def check_params(runbook: Runbook, values: dict[str, Any], *, partial: bool = False) -> dict:
    """``values`` checked against the runbook's params dataclass: no unknown key, no missing
    required one (unless ``partial``: a step recording some), each of its declared type.
    A UserError names the key at fault; nothing is started or recorded then."""
    schema = runbook.params
    if schema is None:
        return values
    declared = {f.name: f for f in dataclasses.fields(schema)}
    types_ = typing.get_type_hints(schema)
    for key in sorted(set(values) - set(declared)):
        raise UserError(f"The {runbook.title} has no parameter `{key}`.", code="params")
    missing = [
        name
        for name, f in declared.items()
        if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
    ]
    for key in [] if partial else [k for k in missing if k not in values]:
        raise UserError(f"The {runbook.title} needs the parameter `{key}`.", code="params")
    for key, value in values.items():
        if not _conforms(value, types_[key]):
            raise UserError(
                f"Parameter `{key}` of the {runbook.title} must be {_name(types_[key])},"
                f" not {type(value).__name__}.",
                code="params",
            )
    return values


def _conforms(value: Any, expected: Any) -> bool:
    """Whether a JSON-like value fits a simple annotation: str, int, float (an int fits),
    bool, list[X], dict[K, V], X | None, Any."""
    if expected is Any:
        return True
    origin = typing.get_origin(expected)
    if origin in (types.UnionType, typing.Union):
        return any(_conforms(value, option) for option in typing.get_args(expected))
    if expected is type(None):
        return value is None
    if origin in (list, tuple):
        (item,) = typing.get_args(expected)[:1] or (Any,)
        return isinstance(value, list | tuple) and all(_conforms(v, item) for v in value)
    if origin is dict:
        key, item = typing.get_args(expected) or (Any, Any)
        return isinstance(value, dict) and all(
            _conforms(k, key) and _conforms(v, item) for k, v in value.items()
        )
    if expected is float:
        return isinstance(value, int | float) and not isinstance(value, bool)
    if expected is int:
        return isinstance(value, int) and not isinstance(value, bool)
    return isinstance(value, origin or expected)


def _name(expected: Any) -> str:
    return getattr(expected, "__name__", None) or str(expected).replace("typing.", "")
