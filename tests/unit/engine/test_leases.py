"""Leases (bot/store/leases.py, bot/engine/leases.py): one walker per operation across
replicas, resumed by another replica when its walker's replica stops, and fenced so that a
replica that lost its lease records nothing. On both stores; two engines on one state
database are two replicas (each its own Store, its own connection)."""

from __future__ import annotations

import threading
import time
from datetime import timedelta

import pytest

from bot.clock import iso, utcnow
from bot.engine.engine import Engine
from bot.engine.model import Runbook, Step
from bot.settings import Config, Environment
from bot.store import Store
from bot.store.leases import LeaseLost
from bot.store.records import Operation, OperationStatus, StepRecord, StepStatus

LEASE = 1.5


def _replica(location, name: str, runbook: Runbook) -> Engine:
    env = Environment(name="dev", protected=False, approvers=(), database_url_env="X")
    config = Config(
        path=None,
        default_environment="dev",
        environments={"dev": env},
        state_db=location,
        lease_seconds=LEASE,
    )
    return Engine(
        Store(location), config, {runbook.name: runbook}, members_of=lambda h: set(), replica=name
    )


def _operation(store: Store) -> Operation:
    now = iso(utcnow())
    op = Operation("op-1", "t", "dev", OperationStatus.RUNNING, "U_A", {}, "", now, now)
    assert store.create_operation(op, [StepRecord("op-1", 0, "s", "S", False, True)], [])
    return op


def test_a_lease_is_one_replicas_until_it_runs_out_and_fences_the_other(any_state_db):
    a, b = Store(any_state_db), Store(any_state_db)
    op = _operation(a)
    now = utcnow()
    mine = a.take_lease(op.id, "replica-a", now, LEASE)
    assert mine is not None and mine.taken_over_from is None
    assert b.take_lease(op.id, "replica-b", now, LEASE) is None  # a walks it
    assert a.claim_step(op.id, "s", now, mine)

    later = now + timedelta(seconds=LEASE + 1)  # a stopped renewing
    assert [o for o, _ in b.unwalked_operations(later)] == [op.id]
    theirs = b.take_lease(op.id, "replica-b", later, LEASE)
    assert theirs.token == mine.token + 1 and theirs.taken_over_from == "replica-a"
    assert not a.renew_lease(mine, later, LEASE)
    with pytest.raises(LeaseLost):
        a.end_step(op.id, "s", StepStatus.SUCCEEDED, later, "done by a", lease=mine)
    assert b.step(op.id, "s").status == StepStatus.RUNNING  # nothing recorded
    a.release_lease(mine)  # a no-op: the lease is b's
    assert b.operation(op.id).lease_owner == "replica-b"
    b.end_step(op.id, "s", StepStatus.SUCCEEDED, later, "done by b", lease=theirs)
    assert b.step(op.id, "s").detail == "done by b"


class _Blocking:
    """A step that blocks until released, counting who ran it."""

    def __init__(self):
        self.runs: list[str] = []
        self.release = threading.Event()
        self.started = threading.Event()

    def __call__(self, ctx):
        self.runs.append(threading.current_thread().name)
        self.started.set()
        self.release.wait(30)
        return "ran"


@pytest.mark.parametrize("idempotent", [True, False])
def test_another_replica_resumes_when_the_walkers_replica_stops(any_state_db, idempotent):
    """Replica a runs the step and then stops renewing its lease (paused, partitioned): b
    resumes the operation within the lease's time by the restart rule, and what a records
    afterwards is refused (fenced)."""
    step = _Blocking()
    rb = Runbook("t", "test", (Step("s", "S", step, idempotent=idempotent),))
    a, b = _replica(any_state_db, "replica-a", rb), _replica(any_state_db, "replica-b", rb)
    try:
        _fail_over(a, b, step, idempotent)
    finally:
        step.release.set()
        a.shutdown()
        b.shutdown()


def _fail_over(a: Engine, b: Engine, step: _Blocking, idempotent: bool) -> None:
    b.recover()  # b's keeper sweeps
    op = a.start("t", None, "U_A")
    assert step.started.wait(10)
    a.keeper.stop()  # a's heartbeat stops; its step is still running
    began = time.monotonic()
    want = OperationStatus.SUCCEEDED if idempotent else OperationStatus.STOPPED
    if idempotent:
        while len(step.runs) < 2 and time.monotonic() - began < 15:
            time.sleep(0.05)
        step.release.set()  # both return now; only b's result may be recorded
    while b.store.operation(op.id).status != want and time.monotonic() - began < 15:
        time.sleep(0.05)
    resumed_after = time.monotonic() - began
    step.release.set()
    a.walker.shutdown()  # a's walker returns; what it would record is refused
    assert b.store.operation(op.id).status == want
    assert resumed_after < LEASE * 4 / 3 + 2
    events = [e.event for e in b.store.audit(op.id)]
    assert events.count("resumed") == 1
    assert events.count("step_succeeded") == (1 if idempotent else 0)
    assert events.count("finished") == 1
    assert len(step.runs) == (2 if idempotent else 1)
