"""bot/store: the conditional writes that make races safe, and typed rows, on both stores.

Every test runs on SQLite and on PostgreSQL (``any_state_db``). The races are run between
two Store objects on the same database: two replicas (or a bot and a terminal), each with
its own connection, so the database's locking decides them, not one process's lock.
"""

from __future__ import annotations

import re
import threading
import uuid
from collections.abc import Callable
from pathlib import Path

import psycopg
import pytest

from bot.clock import iso, utcnow
from bot.errors import ConfigError
from bot.store import Refused, Store, migrations
from bot.store.records import (
    Approval,
    ApprovalStatus,
    ChecklistEntry,
    Operation,
    OperationStatus,
    ScheduledJob,
    StepRecord,
    StepStatus,
)
from bot.store.schema import version_of
from bot.store.sqlite import OPERATIONS_LISTING
from tests.rig.postgres import database_name

PRIVILEGES = Path(__file__).parents[2] / "docs" / "state-privileges.sql"


def _operation(store: Store, op_id: str = "op-1", env: str = "staging") -> Operation:
    now = iso(utcnow())
    op = Operation(op_id, "drill", env, OperationStatus.RUNNING, "U_A", {}, "", now, now)
    steps = [StepRecord(op_id, 0, "a", "A", destructive=False, idempotent=True)]
    items = [
        ChecklistEntry(op_id, "before", "backup", 0, "Backup"),
        ChecklistEntry(op_id, "before", "told", 1, "Team told"),
    ]
    assert store.create_operation(op, steps, items)
    return op


def _race(stores: list[Store], attempt: Callable[[Store, int], object], n: int = 12) -> list:
    """``n`` threads, alternating between the stores, released at once; their results."""
    barrier = threading.Barrier(n)
    results: list = [None] * n

    def run(i: int) -> None:
        barrier.wait()
        results[i] = attempt(stores[i % len(stores)], i)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    return results


@pytest.fixture
def two(any_state_db):
    """Two stores on one database, as two replicas hold it."""
    stores = [Store(any_state_db), Store(any_state_db)]
    yield stores
    for store in stores:
        store.close()


def test_an_ended_operation_is_never_revived_or_walked(any_state_db):
    """A walker that read the operation just before a cancel finished it must neither set
    it waiting again nor start its next step."""
    store = Store(any_state_db)
    op = _operation(store)
    assert store.finish_operation(op.id, OperationStatus.CANCELLED, "Cancelled.", utcnow())
    assert not store.set_status(op.id, OperationStatus.WAITING_CHECKLIST)
    assert not store.claim_step(op.id, "a", utcnow())
    assert store.operation(op.id).status == OperationStatus.CANCELLED
    assert store.step(op.id, "a").status == StepStatus.PENDING


def test_one_active_operation_per_environment_and_typed_rows(any_state_db):
    store = Store(any_state_db)
    _operation(store, "op-1")
    assert not _try_second(store)
    assert store.operation("op-2") is None  # nothing of the refused one was written
    record = store.step("op-1", "a")
    assert record.idempotent is True and record.destructive is False
    assert store.checklist("op-1", "before")[0].checked is False


def _try_second(store: Store, op_id: str = "op-2") -> bool:
    now = iso(utcnow())
    op = Operation(op_id, "drill", "staging", OperationStatus.RUNNING, "U_B", {}, "", now, now)
    return store.create_operation(op, [], [])


def test_a_job_payload_is_json_whatever_it_holds(any_state_db):
    store = Store(any_state_db)
    payload = {"approval_id": 'apr-"quoted"\\ 100%?', "nested": {"n": [1, None]}}
    store.schedule_job(ScheduledJob("j1", None, "approval_expiry", iso(utcnow()), payload))
    assert store.job("j1").payload == payload
    assert store.pending_jobs()[0].payload == payload
    later = iso(utcnow())
    store.schedule_job(ScheduledJob("j1", None, "approval_expiry", later, {"x": 1}))
    assert [(j.run_at, j.payload) for j in store.pending_jobs()] == [(later, {"x": 1})]


def test_audit_is_append_only_and_numbered_in_order(any_state_db):
    store = Store(any_state_db)
    first = store.append_audit(None, "U_A", "x", "hello")
    second = store.append_audit("op-9", "U_A", "y", "again", detail={"n": 1})
    assert second.id > first.id
    for statement in ("UPDATE audit SET message = 'forged'", "DELETE FROM audit"):
        with pytest.raises(Refused, match="append-only"), store.transaction() as db:
            db.execute(statement)
    assert [(a.message, a.detail) for a in store.audit()] == [("hello", {}), ("again", {"n": 1})]


def test_two_replicas_start_one_operation_per_environment(two):
    won = _race(two, lambda store, i: _try_second(store, f"op-{i}"))
    assert won.count(True) == 1
    assert len(two[0].operations(active=True)) == 1


def test_two_replicas_one_approve_click_wins(two):
    op = _operation(two[0])
    now = iso(utcnow())
    approval = Approval("apr-1", op.id, "a", "plan", "h" * 64, "U_A", now, now)
    two[0].add_approval(approval, ScheduledJob("exp-1", op.id, "approval_expiry", now))

    def click(store: Store, i: int) -> bool:
        status = ApprovalStatus.APPROVED if i % 2 else ApprovalStatus.DENIED
        return store.decide_approval("apr-1", status, f"U_{i}", utcnow())

    assert _race(two, click).count(True) == 1
    assert _race(two, lambda store, i: store.finish_job("exp-1")).count(True) == 1
    assert two[1].job("exp-1").done_at is not None


def test_a_replayed_request_is_refused_by_every_replica(two):
    assert _race(two, lambda store, i: store.first_time_seen("v0=signature")).count(True) == 1
    assert _race(two, lambda store, i: store.happens_once("done:op-1", utcnow())).count(True) == 1


def test_check_then_change_never_loses_a_write(two):
    """Read-then-write transactions lock what they read: twelve replicas' merges all land,
    and a double-submitted checklist changes each item once."""
    op = _operation(two[0])
    _race(two, lambda store, i: store.merge_params(op.id, {f"k{i}": i}))
    assert two[1].operation(op.id).params == {f"k{i}": i for i in range(12)}

    changes = _race(two, lambda store, i: store.tick(op.id, "before", {"backup"}, "U_A", utcnow()))
    assert sum(len(c) for c in changes) == 1
    assert _race(two, lambda store, i: store.claim_step(op.id, "a", utcnow())).count(True) == 1
    assert two[0].step(op.id, "a").attempts == 1


def test_the_bots_role_can_only_append_to_the_audit_log(pg_server):
    """docs/state-privileges.sql as written: the role the replicas connect as runs the
    store, and the database itself refuses it any change to the audit log."""
    owner_url = pg_server.create_database()
    role = f"rollback_bot_{uuid.uuid4().hex[:8]}"
    Store(owner_url).close()  # the owner creates the tables
    with psycopg.connect(owner_url, autocommit=True) as conn:
        conn.execute(f"CREATE ROLE {role} LOGIN PASSWORD 'bot-pw'")
        conn.execute(PRIVILEGES.read_text().replace("rollback_bot", role))
    bot_url = owner_url.replace(f"{pg_server.user}:{pg_server.password}", f"{role}:bot-pw")
    assert bot_url != owner_url
    store = Store(bot_url)
    op = _operation(store)
    store.append_audit(op.id, "U_A", "started")
    assert store.merge_params(op.id, {"x": 1}) == {"x": 1}
    store.first_time_seen("sig")
    store.forget_seen_before(utcnow())
    # Every other statement the store makes, as the role (a table the file forgets to grant
    # fails here with "permission denied").
    now = iso(utcnow())
    approval = Approval("apr-1", op.id, "a", "plan", "h" * 64, "U_A", now, now)
    store.add_approval(approval, ScheduledJob("exp-1", op.id, "approval_expiry", now))
    store.add_approval_copy("apr-1", "D_B", "1.1")
    assert store.approval_copies("apr-1") == [("D_B", "1.1")]
    assert store.decide_approval("apr-1", ApprovalStatus.APPROVED, "U_B", utcnow())
    assert store.finish_job("exp-1")
    store.add_bot_channel("C_1", "prod", op.id, reused=False)
    store.channel_archived("C_1")
    assert store.is_archived("C_1")
    store.set_card_message("k", "C_1", "1.2")
    store.set_card_message("k", "C_1", "1.3")
    assert store.card_message("k") == ("C_1", "1.3")
    for statement in ("UPDATE audit SET message = ''", "DELETE FROM audit", "TRUNCATE audit"):
        with pytest.raises(Refused, match="permission denied"), store.transaction() as db:
            db.execute(statement)
    assert len(store.audit()) == 1
    store.close()
    with psycopg.connect(owner_url, autocommit=True) as conn:
        with pytest.raises(psycopg.errors.RaiseException, match="append-only"):
            conn.execute("TRUNCATE audit")
        conn.execute(f"DROP OWNED BY {role}")
        conn.execute(f"DROP ROLE {role}")
    pg_server.drop_database(database_name(owner_url))


def test_the_privileges_file_grants_every_table_of_the_state(pg_server):
    """A migration that adds a table must add its grant to docs/state-privileges.sql."""
    url = pg_server.create_database()
    store = Store(url)
    tables = store.table_names()
    store.close()
    pg_server.drop_database(database_name(url))
    granted = set()
    for grant in re.findall(r"(?is)\bGRANT\b.*?\bON\b(.*?)\bTO\b", PRIVILEGES.read_text()):
        granted |= {name.strip() for name in grant.replace("SEQUENCE", "").split(",")}
    assert "operations" in tables and tables - granted == set()


def test_an_unreachable_state_database_is_one_clear_line_without_its_password(pg_server):
    url = f"postgresql://bot:hunter2-pw@127.0.0.1:{pg_server.port}/no_such_database"
    with pytest.raises(ConfigError, match="state_db: cannot connect to") as error:
        Store(url)
    assert "hunter2-pw" not in str(error.value) and "bot:***@" in str(error.value)


def test_the_schema_version_reads_alike_on_both_stores(any_state_db):
    """doctor's "schema version" line (bot/store/schema.py version_of): the latest release's
    version once a store has opened the database, and a newer release's when one wrote it."""
    store = Store(any_state_db)
    try:
        assert version_of(store.location) == migrations.latest_version()
        with store.transaction() as db:
            db.execute("INSERT INTO schema_version VALUES (999, 'future', 'x')")
        assert version_of(store.location) == 999
    finally:
        store.close()


def test_the_newest_operations_are_read_through_the_time_index(any_state_db):
    """History and App Home list the newest operations: with thousands of them the database
    walks operations_by_time from the newest end (bench/results.md), on both stores."""
    store = Store(any_state_db)
    try:
        with store.transaction() as db:
            for i in range(3000):
                at = f"2026-01-01T00:00:00.{i:06d}Z"
                db.insert(
                    "operations",
                    {
                        "id": f"op-{i:05d}",
                        "runbook": "drill",
                        "environment": f"env{i}",
                        "status": "succeeded",
                        "requester": "U_ALICE",
                        "created_at": at,
                        "updated_at": at,
                        "holds_environment": 1 if i % 1000 == 0 else None,
                    },
                )
        postgres = str(any_state_db).startswith("postgresql")
        with store.transaction() as db:
            db.execute("ANALYZE")
            explain = "EXPLAIN" if postgres else "EXPLAIN QUERY PLAN"
            for active in (None, False):
                rows = db.query(f"{explain} {OPERATIONS_LISTING[active]}", (20,))
                plan = "\n".join(str(list(r.values())[-1]) for r in rows)
                assert "operations_by_time" in plan, (active, plan)
                assert ("Sort" if postgres else "TEMP B-TREE") not in plan, (active, plan)
            # The active ones (one per environment at most) through the environment lock's
            # partial index, sorted afterwards: a handful of rows.
            rows = db.query(f"{explain} {OPERATIONS_LISTING[True]}", (20,))
            plan = "\n".join(str(list(r.values())[-1]) for r in rows)
            assert "one_active_operation_per_environment" in plan or "operations_by_time" in plan
        assert [o.id for o in store.operations(active=False, limit=3)] == [
            "op-02999",
            "op-02998",
            "op-02997",
        ]
    finally:
        store.close()
