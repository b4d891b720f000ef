"""bot/store: the conditional writes that make races safe, and typed rows."""

from __future__ import annotations

from bot.clock import iso, utcnow
from bot.store import Store
from bot.store.records import (
    ChecklistEntry,
    Operation,
    OperationStatus,
    ScheduledJob,
    StepRecord,
    StepStatus,
)


def _operation(store: Store, op_id: str = "op-1") -> Operation:
    now = iso(utcnow())
    op = Operation(op_id, "drill", "staging", OperationStatus.RUNNING, "U_A", {}, "", now, now)
    steps = [StepRecord(op_id, 0, "a", "A", destructive=False, idempotent=True)]
    items = [ChecklistEntry(op_id, "before", "backup", 0, "Backup")]
    assert store.create_operation(op, steps, items)
    return op


def test_an_ended_operation_is_never_revived_or_walked(tmp_path):
    """A walker that read the operation just before a cancel finished it must neither set
    it waiting again nor start its next step."""
    store = Store(tmp_path / "s.db")
    op = _operation(store)
    assert store.finish_operation(op.id, OperationStatus.CANCELLED, "Cancelled.", utcnow())
    assert not store.set_status(op.id, OperationStatus.WAITING_CHECKLIST)
    assert not store.claim_step(op.id, "a", utcnow())
    assert store.operation(op.id).status == OperationStatus.CANCELLED
    assert store.step(op.id, "a").status == StepStatus.PENDING


def test_one_active_operation_per_environment_and_typed_rows(tmp_path):
    store = Store(tmp_path / "s.db")
    _operation(store, "op-1")
    assert not _try_second(store)
    record = store.step("op-1", "a")
    assert record.idempotent is True and record.destructive is False
    assert store.checklist("op-1", "before")[0].checked is False


def _try_second(store: Store) -> bool:
    now = iso(utcnow())
    op = Operation("op-2", "drill", "staging", OperationStatus.RUNNING, "U_B", {}, "", now, now)
    return store.create_operation(op, [], [])


def test_a_job_payload_is_json_whatever_it_holds(tmp_path):
    store = Store(tmp_path / "s.db")
    payload = {"approval_id": 'apr-"quoted"\\', "nested": {"n": [1, None]}}
    store.schedule_job(ScheduledJob("j1", None, "approval_expiry", iso(utcnow()), payload))
    assert store.job("j1").payload == payload
    assert store.pending_jobs()[0].payload == payload
