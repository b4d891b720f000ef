"""The engine on its own (no Slack): gates, decisions, records, crash recovery, the store's
guarantees. Runbooks here are tiny test data; the real ones are tested through the rig."""

from __future__ import annotations

import sqlite3
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import pytest

from bot.engine.engine import Engine
from bot.engine.model import PlanChanged, RolledBack, Runbook, Step
from bot.errors import ConflictError, PermissionDenied, UserError
from bot.settings import Config, Environment
from bot.store import Refused, Store
from tests.rig.state_store import state_db_for
from tests.unit.store.test_state_schema import PREVIOUS_RELEASE


def make_engine(tmp_path, runbook: Runbook, protected=False):
    env = Environment(name="dev", protected=protected, approvers=("U_BOB",), database_url_env="X")
    config = Config(
        path=tmp_path / "c.toml",
        default_environment="dev",
        environments={"dev": env},
        state_db=state_db_for(tmp_path),
    )
    store = Store(config.state_db)
    engine = Engine(store, config, {runbook.name: runbook}, members_of=lambda h: set())
    events = []
    engine.subscribe(events.append)
    return engine, store, events


def wait(predicate, timeout=10):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.01)
    raise AssertionError("timed out")


def test_steps_run_in_order_and_record_persists(tmp_path):
    seen = []

    def first(ctx):
        ctx.record(snapshot_id="snap-1")
        seen.append("first")

    def second(ctx):
        seen.append(ctx.params["snapshot_id"])

    rb = Runbook("t", "test", (Step("a", "A", first), Step("b", "B", second)))
    engine, store, events = make_engine(tmp_path, rb)
    op = engine.start("t", None, "U_ALICE")
    wait(lambda: store.operation(op.id).status == "succeeded")
    assert seen == ["first", "snap-1"]
    assert store.operation(op.id).params["snapshot_id"] == "snap-1"
    assert [e.kind for e in events if e.kind.startswith("step_")] == [
        "step_started",
        "step_succeeded",
        "step_started",
        "step_succeeded",
    ]


def test_destructive_step_waits_for_the_before_checklist(tmp_path):
    ran = threading.Event()
    rb = Runbook("t", "test", (Step("d", "D", lambda ctx: ran.set(), destructive=True),))
    engine, store, _ = make_engine(tmp_path, rb)
    op = engine.start("t", None, "U_ALICE")
    wait(lambda: store.operation(op.id).status == "waiting_checklist")
    assert not ran.is_set()
    items = {i.item_id for i in store.checklist(op.id, "before") if not i.by_bot}
    engine.tick_checklist(op.id, "before", items - {"staging"}, "U_ALICE")
    time.sleep(0.2)
    assert not ran.is_set()
    engine.tick_checklist(op.id, "before", items, "U_ALICE")
    wait(lambda: store.operation(op.id).status == "succeeded")
    assert ran.is_set()


def test_one_active_operation_per_environment(tmp_path):
    gate = threading.Event()
    rb = Runbook("t", "test", (Step("s", "S", lambda ctx: gate.wait(5)),))
    engine, store, _ = make_engine(tmp_path, rb)
    op = engine.start("t", None, "U_ALICE")
    with pytest.raises(ConflictError) as error:
        engine.start("t", None, "U_BOB")
    assert op.id in error.value.message and "<@U_ALICE>" in error.value.message
    gate.set()
    wait(lambda: store.operation(op.id).status == "succeeded")
    engine.start("t", None, "U_BOB")  # free again


def asking_runbook(answers: list, timeout: float) -> Runbook:
    """One step that asks the requester to commit or roll back, and keeps the answer."""

    def ask(ctx):
        choices = {"rollback": "Roll back", "commit": "Commit"}
        answers.append(ctx.ask("Commit?", choices, timeout=timeout, default="rollback"))

    return Runbook("t", "test", (Step("s", "S", ask),))


def test_a_decision_times_out_to_the_safe_default(tmp_path):
    answers = []
    rb = asking_runbook(answers, timeout=0.3)
    engine, store, events = make_engine(tmp_path, rb)
    op = engine.start("t", None, "U_ALICE")
    wait(lambda: store.operation(op.id).status == "succeeded")
    assert answers == ["rollback"]
    assert "decision_expired" in [a.event for a in store.audit(op.id)]


def test_only_the_requester_decides_and_only_once(tmp_path):
    answers = []
    rb = asking_runbook(answers, timeout=10)
    engine, store, events = make_engine(tmp_path, rb)
    op = engine.start("t", None, "U_ALICE")
    wait(lambda: any(e.kind == "decision_requested" for e in events))
    decision_id = next(e for e in events if e.kind == "decision_requested").detail["decision_id"]
    with pytest.raises(PermissionDenied):
        engine.decide(decision_id, "U_BOB", "commit")
    engine.decide(decision_id, "U_ALICE", "commit")
    with pytest.raises(ConflictError):
        engine.decide(decision_id, "U_ALICE", "rollback")
    wait(lambda: store.operation(op.id).status == "succeeded")
    assert answers == ["commit"]


def _crashed_operation(tmp_path, idempotent: bool):
    """An operation whose step was 'running' when the process died: the store as a crash
    leaves it, then a new engine on the same store."""
    ran = []
    rb = Runbook("t", "test", (Step("s", "S", lambda ctx: ran.append(1), idempotent=idempotent),))
    engine, store, _ = make_engine(tmp_path, rb)
    engine.shutdown()  # start() still persists, but no walker runs the step
    op = engine.start("t", None, "U_ALICE")
    with store.transaction() as db:
        db.execute("UPDATE steps SET status = 'running' WHERE operation_id = ?", (op.id,))
    store.close()
    engine2, store2, events = make_engine(tmp_path, rb)
    engine2.recover()
    return op, store2, ran, events


def test_recover_reruns_an_idempotent_step(tmp_path):
    op, store, ran, _ = _crashed_operation(tmp_path, idempotent=True)
    wait(lambda: store.operation(op.id).status == "succeeded")
    assert ran == [1]
    assert "step_resumed" in [a.event for a in store.audit(op.id)]


def test_recover_stops_safely_when_a_step_is_not_idempotent(tmp_path):
    op, store, ran, _ = _crashed_operation(tmp_path, idempotent=False)
    wait(lambda: store.operation(op.id).status == "stopped")
    assert ran == []
    assert "not safe to repeat" in store.operation(op.id).result
    assert store.active_operation("dev") is None


def test_audit_is_append_only(tmp_path):
    store = Store(state_db_for(tmp_path))
    store.append_audit(None, "U_ALICE", "x", "hello")
    with pytest.raises(Refused), store.transaction() as db:
        db.execute("UPDATE audit SET message = 'forged'")
    with pytest.raises(Refused), store.transaction() as db:
        db.execute("DELETE FROM audit")
    assert store.audit()[0].message == "hello"


def test_every_listener_sees_events_in_the_order_they_happened(tmp_path):
    """A listener that emits while handling an event (PITR schedules its cleanup when the
    switch succeeded) must not make a later listener see the new event first."""
    rb = Runbook("t", "test", (Step("a", "A", lambda ctx: "done"),))
    engine, store, first = make_engine(tmp_path, rb)

    def schedule_on_success(event):
        if event.kind == "step_succeeded":
            engine.emit(event.operation_id, "card", "rollback-bot", "Cleanup scheduled")

    later = []
    engine.subscribe(schedule_on_success)
    engine.subscribe(later.append)
    op = engine.start("t", None, "U_ALICE")
    wait(lambda: store.operation(op.id).status == "succeeded")
    wait(lambda: any(e.kind == "finished" for e in later))
    kinds = [e.kind for e in later]
    assert kinds.index("step_succeeded") < kinds.index("card")
    assert [e.kind for e in first] == kinds


@dataclass(frozen=True)
class _Params:
    migration: str
    attempts: int = 0
    notes: list[str] = field(default_factory=list)


def test_params_are_checked_against_the_runbooks_dataclass_at_start_and_record(tmp_path):
    recorded = []

    def step(ctx):
        ctx.record(attempts=2, notes=["a"])
        try:
            ctx.record(snapshot="x")
        except UserError as error:
            recorded.append(error.message)

    rb = Runbook("t", "test runbook", (Step("a", "A", step),), params=_Params)
    engine, store, _ = make_engine(tmp_path, rb)
    for bad, says in (
        ({}, "needs the parameter `migration`"),
        ({"migration": "m", "mirgation": "m"}, "has no parameter `mirgation`"),
        ({"migration": 5}, "Parameter `migration` of the test runbook must be str"),
        ({"migration": "m", "notes": "a"}, "`notes`"),
    ):
        with pytest.raises(UserError, match=says):
            engine.start("t", None, "U_ALICE", bad)
    assert store.operations() == []  # nothing was started
    op = engine.start("t", None, "U_ALICE", {"migration": "m"})
    wait(lambda: store.operation(op.id).status == "succeeded")
    assert store.operation(op.id).params == {"migration": "m", "attempts": 2, "notes": ["a"]}
    assert recorded == ["The test runbook has no parameter `snapshot`."]


def test_recover_stops_an_operation_whose_runbook_this_version_does_not_have(tmp_path):
    """Started by a version that had the runbook, left running by a crash: the restart stops
    it with a clear message instead of failing on the missing runbook."""
    retired = Runbook("retired", "retired runbook", (Step("s", "S", lambda ctx: None),))
    engine, store, _ = make_engine(tmp_path, retired)
    engine.shutdown()  # start() persists, no walker runs the step
    op = engine.start("retired", None, "U_ALICE")
    with store.transaction() as db:
        db.execute("UPDATE steps SET status = 'running' WHERE operation_id = ?", (op.id,))
    store.close()
    current = Runbook("t", "test", (Step("a", "A", lambda ctx: None),))
    engine2, store2, events = make_engine(tmp_path, current)

    engine2.recover()

    stopped = store2.operation(op.id)
    assert stopped.status == "stopped" and "no runbook `retired`" in stopped.result
    assert store2.step(op.id, "s").status == "failed"
    assert store2.active_operation("dev") is None  # the environment is free again
    engine2.tick_checklist(op.id, "after", {"rca"}, "U_ALICE")  # walking it changes nothing
    time.sleep(0.2)
    assert store2.operation(op.id).status == "stopped"


def test_a_shutdown_does_not_wait_for_the_drills_slow_step(tmp_path):
    from bot.runbooks.drill import DRILL

    engine, store, _ = make_engine(tmp_path, DRILL)
    op = engine.start("drill", None, "U_ALICE", {"slow_step_seconds": 3600, "progress_events": 1})
    items = {i.item_id for i in store.checklist(op.id, "before") if not i.by_bot}
    engine.tick_checklist(op.id, "before", items, "U_ALICE")
    wait(lambda: store.step(op.id, "slow_step").status == "running")

    stopping = threading.Thread(target=engine.shutdown)
    stopping.start()
    stopping.join(60)  # an hour-long sleep would still hold it

    assert not stopping.is_alive()
    # Interrupted, not failed: the step is rerun at the next start (it is idempotent).
    assert store.step(op.id, "slow_step").status == "running"
    assert store.operation(op.id).status == "running"


def test_checklist_complete_is_said_once_even_after_old_event_ids_are_pruned(tmp_path):
    rb = Runbook("t", "test", (Step("d", "D", lambda ctx: None, destructive=True),))
    engine, store, _ = make_engine(tmp_path, rb)
    engine.shutdown()  # keep the operation waiting: only the checklist matters here
    op = engine.start("t", None, "U_ALICE")
    items = {i.item_id for i in store.checklist(op.id, "before") if not i.by_bot}
    engine.tick_checklist(op.id, "before", items, "U_ALICE")
    store.forget_seen_before(datetime.now(UTC) + timedelta(days=2))  # what start-up prunes
    engine.tick_checklist(op.id, "before", items - {"staging"}, "U_ALICE")
    engine.tick_checklist(op.id, "before", items, "U_ALICE")

    completed = [a for a in store.audit(op.id) if a.event == "checklist_completed"]
    assert len(completed) == 1


def test_markers_kept_in_seen_events_by_an_earlier_version_still_count(tmp_path):
    # A file as the release before schema versioning wrote it, with a marker where that
    # release kept them (seen_events); the migration at start carries it over.
    conn = sqlite3.connect(tmp_path / "s.db")
    conn.executescript(PREVIOUS_RELEASE.read_text())
    conn.execute("INSERT INTO seen_events VALUES ('checklist-complete:op-1:before', 'x')")
    conn.commit()
    conn.close()
    again = Store(tmp_path / "s.db")
    assert not again.happens_once("checklist-complete:op-1:before", datetime.now(UTC))


def _counting_runbook(found: list[int], answers: list[str]) -> Runbook:
    """A protected step whose plan shows a count; the run finds the next count in ``found``
    and raises PlanChanged when it is not the approved one (as option 4 does)."""

    def plan(op, env):
        return f"delete {op.params.get('count', 0)} rows"

    def act(ctx):
        now = found.pop(0)
        if now != ctx.params.get("count", 0):
            ctx.record(count=now)
            raise PlanChanged(f"found {now} rows")
        choices = {"commit": "Commit", "rollback": "Roll back"}
        if ctx.ask("Commit?", choices, timeout=10, default="rollback") == "rollback":
            raise RolledBack("Nothing was committed.")
        answers.append("committed")

    return Runbook("t", "test", (Step("s", "S", act, destructive=True, plan=plan),))


def _approve_pending(engine, store, op_id: str) -> None:
    wait(lambda: store.operation(op_id).status == "waiting_approval")
    pending = [a for a in store.approvals(op_id) if a.status == "pending"]
    engine.decide_approval(pending[-1].id, "U_BOB", True)


def _ready(engine, store, rb):
    op = engine.start("t", None, "U_ALICE")
    items = {i.item_id for i in store.checklist(op.id, "before") if not i.by_bot}
    engine.tick_checklist(op.id, "before", items, "U_ALICE")
    return op


def test_a_changed_plan_puts_the_step_back_and_asks_for_a_new_approval(tmp_path):
    answers: list[str] = []
    rb = _counting_runbook([10, 10], answers)
    engine, store, events = make_engine(tmp_path, rb, protected=True)
    op = _ready(engine, store, rb)
    _approve_pending(engine, store, op.id)  # approved: "delete 0 rows"; the run finds 10
    wait(lambda: len(store.approvals(op.id)) == 2)
    first, second = store.approvals(op.id)
    assert first.plan_text == "delete 0 rows" and second.plan_text == "delete 10 rows"
    assert second.status == "pending" and store.step(op.id, "s").status == "pending"
    assert store.operation(op.id).status == "waiting_approval"
    assert "plan_changed" in [a.event for a in store.audit(op.id)]
    _approve_pending(engine, store, op.id)
    decision = wait_for_event(events, "decision_requested")
    engine.decide(decision.detail["decision_id"], "U_ALICE", "commit")
    wait(lambda: store.operation(op.id).status == "succeeded")
    assert answers == ["committed"]


def test_a_deliberate_roll_back_ends_the_operation_rolled_back_by_its_decider(tmp_path):
    rb = _counting_runbook([0], [])
    engine, store, events = make_engine(tmp_path, rb)
    op = _ready(engine, store, rb)
    decision = wait_for_event(events, "decision_requested")
    engine.decide(decision.detail["decision_id"], "U_ALICE", "rollback")
    wait(lambda: store.operation(op.id).status == "rolled_back")
    assert store.operation(op.id).result.startswith("Rolled back by <@U_ALICE>.")
    assert store.step(op.id, "s").status == "rolled_back"
    finished = next(a for a in store.audit(op.id) if a.event == "finished")
    assert finished.actor == "U_ALICE"
    assert store.active_operation("dev") is None


def test_a_roll_back_nobody_chose_is_a_failure(tmp_path):
    def act(ctx):
        raise RolledBack("Nothing was committed.")

    rb = Runbook("t", "test", (Step("s", "S", act),))
    engine, store, _ = make_engine(tmp_path, rb)
    op = engine.start("t", None, "U_ALICE")
    wait(lambda: store.operation(op.id).status == "failed")
    assert store.step(op.id, "s").error == "Nothing was committed."


def test_output_for_the_requester_reaches_listeners_but_never_the_audit_log(tmp_path):
    def act(ctx):
        ctx.for_requester("sql_rows", "rows", {"rows": [["secret@example.com"]]})

    rb = Runbook("t", "test", (Step("s", "S", act),))
    engine, store, events = make_engine(tmp_path, rb)
    op = engine.start("t", None, "U_ALICE")
    wait(lambda: store.operation(op.id).status == "succeeded")
    shown = next(e for e in events if e.kind == "for_requester")
    assert shown.detail["user"] == "U_ALICE" and not shown.audited
    assert "secret@example.com" not in str([(a.message, a.detail) for a in store.audit(op.id)])


def wait_for_event(events: list, kind: str):
    wait(lambda: any(e.kind == kind for e in events))
    return [e for e in events if e.kind == kind][-1]
