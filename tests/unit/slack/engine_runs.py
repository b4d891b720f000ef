"""What the engine itself writes for people: the incident thread's timeline lines (every
event, as bot/slack/incident.py posts them), the error replies a late click or command gets,
and the replies of /rollback takeover and cancel, from a real engine on a real store walking
operations to each way they can end (finished, with a step declined, failed, cancelled
before and after a change, after a takeover).

The runbooks are small test data named as the real ones are (``pitr_undo_switch``, ``sql``...)
so that an internal name or an enum value leaking into a line shows up in the catalog
(tests/unit/slack/catalog.py) that holds these to docs/messages.md."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace

from bot.engine.engine import Engine
from bot.engine.model import Event, Runbook, Step
from bot.errors import UserError
from bot.settings import Config, Environment
from bot.slack import views
from bot.slack.blocks import with_mentions
from bot.store import Store
from bot.store.records import ACTIVE_STATES, ApprovalStatus, OperationStatus
from commands import CommandContext, parse

PEOPLE = {"U_ALICE", "U_BOB", "U_CAROL"}
REFUSALS = 5  # how many refusals engine_runs() collects (the catalog renders each)


@dataclass(frozen=True)
class EngineRuns:
    events: list[Event]
    ended: dict[str, OperationStatus]  # each runbook's end state
    errors: list[UserError]  # refusals of clicks and commands that came too late
    replies: list[dict]  # command replies (info_message)

    def thread(self, bad: str = "") -> str:
        """Every event as the incident thread shows it, ``bad`` appended to each."""
        return "\n".join(
            views.timeline_line(
                "2026-11-26T10:00:00.000000Z", with_mentions(e.message + bad, PEOPLE)
            )
            for e in self.events
            if e.audited
        )


def _noop(ctx) -> None:
    return None


def _fails(ctx) -> None:
    raise UserError('Database error: relation "Invoice" does not exist')


RUNBOOKS = (
    Runbook("sql", "Manual SQL", (Step("check", "Check the connection", _noop),)),
    Runbook("resolve", "Migration resolve", (Step("undo", "Undo", _fails),)),
    Runbook(
        "pitr",
        "Point-in-time recovery",
        (
            Step("restore", "Restore", _noop, destructive=True),
            Step("reapply", "Re-apply", _noop, destructive=True, optional=True),
        ),
    ),
    Runbook(
        "pitr_undo_switch",
        "Undo of the PITR traffic switch",
        (
            Step("undo", "Undo the switch", _noop, destructive=True),
            Step("cleanup", "Delete the new instance", _noop, destructive=True),
        ),
    ),
    Runbook("revert", "Reverse migration", (Step("apply", "Apply", _noop, destructive=True),)),
)


def _wait(store: Store, op_id: str, ready) -> None:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if ready(store.operation(op_id)):
            return
        time.sleep(0.01)
    raise AssertionError(f"{op_id} stuck at {store.operation(op_id).status}")


def _pending(store: Store, op_id: str):
    _wait(store, op_id, lambda op: any(a.status == "pending" for a in store.approvals(op_id)))
    return next(a for a in store.approvals(op_id) if a.status == ApprovalStatus.PENDING)


def _ticked(engine: Engine, store: Store, op_id: str) -> None:
    _wait(store, op_id, lambda op: op.status == OperationStatus.WAITING_CHECKLIST)
    items = {i.item_id for i in store.checklist(op_id, "before") if not i.by_bot}
    engine.tick_checklist(op_id, "before", items, "U_ALICE")


def _command(engine: Engine, user: str, text: str) -> dict:
    module, parsed = parse(text)
    services = SimpleNamespace(engine=engine)
    return module.run(CommandContext(services, user, "C_INCIDENT", "t", parsed, None))


def _refused(call) -> UserError:
    try:
        call()
    except UserError as error:
        return error
    raise AssertionError("not refused")


def engine_runs(root: Path) -> EngineRuns:
    env = Environment(
        name="production", protected=True, approvers=("U_BOB", "U_CAROL"), database_url_env="X"
    )
    config = Config(
        path=root / "c.toml",
        default_environment="production",
        environments={"production": env},
        state_db=root / "state.db",
    )
    store = Store(config.state_db)
    engine = Engine(store, config, {r.name: r for r in RUNBOOKS}, members_of=lambda h: set())
    events: list[Event] = []
    engine.subscribe(events.append)
    ended, errors, replies = {}, [], []

    def done(op_id: str) -> None:
        _wait(store, op_id, lambda op: op.status not in ACTIVE_STATES)
        ended[store.operation(op_id).runbook] = store.operation(op_id).status

    try:
        for name in ("sql", "resolve"):  # finished; failed
            done(engine.start(name, None, "U_ALICE").id)
        op = engine.start("revert", None, "U_ALICE")  # cancelled before any change
        replies.append(_command(engine, "U_ALICE", f"cancel {op.id}"))
        done(op.id)
        op = engine.start("pitr", None, "U_ALICE")  # finished with a step declined
        _ticked(engine, store, op.id)
        engine.decide_approval(_pending(store, op.id).id, "U_BOB", True)
        engine.decide_approval(_pending(store, op.id).id, "U_BOB", False)
        done(op.id)
        # Taken over, then cancelled after a change with an approval still pending.
        op = engine.start("pitr_undo_switch", None, "U_ALICE")
        _ticked(engine, store, op.id)
        engine.decide_approval(_pending(store, op.id).id, "U_BOB", True)
        _pending(store, op.id)
        errors.append(_refused(lambda: engine.cancel(op.id, "U_DAVE")))  # no approver
        errors.append(_refused(lambda: engine.request_approval_again(op.id, "U_BOB")))
        errors.append(_refused(lambda: engine.tick_checklist(op.id, "before", {"x"}, "U_ALICE")))
        replies.append(_command(engine, "U_CAROL", f'takeover {op.id} --reason "Alice is off"'))
        late = _pending(store, op.id)
        replies.append(_command(engine, "U_CAROL", f"cancel {op.id}"))
        done(op.id)
        errors.append(_refused(lambda: engine.cancel(op.id, "U_CAROL")))
        errors.append(_refused(lambda: engine.decide_approval(late.id, "U_BOB", True)))
    finally:
        engine.shutdown()
    assert len(errors) == REFUSALS
    return EngineRuns(events, ended, errors, replies)
