"""`/rollback history` and App Home on a large state: 10,000 operations (4 steps and one
approval each) and 100,000 audit records, on SQLite and on PostgreSQL. What is timed is
what the state's size can slow: the store's reads and the view built from them, as
commands/history.py and handlers/app_home.py do them (the Slack round trip is not).

The rows are written in bulk straight into the tables (the audit records with their hash
chain, as bot/store/audit_chain.py links them), then read through ``Store``.
"""

from __future__ import annotations

import json
import os
import sqlite3
import statistics
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace

import psycopg

import commands.history
from bot.clock import iso, parse_iso
from bot.slack import views
from bot.store import Store, audit_chain
from bot.store.transactions import is_postgres_url

OPERATIONS = 10_000
AUDIT_ROWS = 100_000
ACTIVE = 5  # operations still holding their environment (App Home's first list)
REPEATS = 20
TARGET_MS = 100.0
RUNBOOKS = ("drill", "resolve", "revert", "pitr", "sql")
STEPS = ("check", "backup", "apply", "verify")


def run(pg, tmp: Path, log) -> list[dict]:
    results = []
    for store_kind, location in (("SQLite", str(tmp / "big-state.db")), ("PostgreSQL", None)):
        location = location or pg.create_database()
        Store(location).close()  # the schema, as the bot creates it
        began = time.monotonic()
        fill(location)
        log(f"{store_kind}: filled in {time.monotonic() - began:.0f} s")
        store = Store(location)
        try:
            row = {"store": store_kind, **measure(store)}
            if is_postgres_url(location):
                row["plan"] = explain_listing(location)
        finally:
            store.close()
        log(
            f"{store_kind}: history median {row['history_ms']:.1f} ms (max"
            f" {row['history_max_ms']:.1f}); App Home median {row['home_ms']:.1f} ms (max"
            f" {row['home_max_ms']:.1f}); load {row['load']:.1f}"
        )
        results.append(row)
    return results


def measure(store: Store) -> dict:
    ctx = SimpleNamespace(services=SimpleNamespace(store=store))

    def home() -> dict:
        # handlers/app_home.py's reads and view
        active = store.operations(active=True, limit=20)
        recent = store.operations(active=False, limit=15)
        approvers = store.approvers_by_operation([o.id for o in active + recent])
        assert len(active) == ACTIVE and len(recent) == 15
        return views.home_view(active, recent, approvers)

    history = _timed(lambda: commands.history.run(ctx))
    app_home = _timed(home)
    return {
        "operations": OPERATIONS,
        "audit_rows": AUDIT_ROWS,
        "history_ms": statistics.median(history),
        "history_max_ms": max(history),
        "home_ms": statistics.median(app_home),
        "home_max_ms": max(app_home),
        "load": os.getloadavg()[0],
    }


def _timed(fn) -> list[float]:
    fn()  # warm-up: caches, the first statement's planning
    samples = []
    for _ in range(REPEATS):
        began = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - began) * 1000)
    return samples


def explain_listing(url: str) -> str:
    """How PostgreSQL runs the listing both views read (the store's statement)."""
    with psycopg.connect(url) as conn:
        rows = conn.execute(
            "EXPLAIN SELECT * FROM operations WHERE holds_environment IS NULL"
            " ORDER BY created_at DESC, id DESC LIMIT 20"
        ).fetchall()
    return "\n".join(r[0] for r in rows)


# --- the fill ----------------------------------------------------------------------------


def fill(location: str) -> None:
    tables = dict(zip(("operations", "steps", "approvals", "audit"), _rows(), strict=True))
    if is_postgres_url(location):
        with psycopg.connect(location) as conn, conn.cursor() as cur:
            for table, rows in tables.items():
                names = list(rows[0])
                with cur.copy(f"COPY {table} ({', '.join(names)}) FROM STDIN") as copy:
                    for r in rows:
                        copy.write_row([r[n] for n in names])
            # What autovacuum does after a bulk load; the bot never runs ANALYZE on a
            # SQLite file, so that one is measured without statistics.
            cur.execute("ANALYZE")
        return
    conn = sqlite3.connect(location)
    with conn:
        for table, rows in tables.items():
            names = list(rows[0])
            conn.executemany(
                f"INSERT INTO {table} ({', '.join(names)}) VALUES ({', '.join('?' * len(names))})",
                [tuple(r[n] for n in names) for r in rows],
            )
    conn.close()


def _rows() -> tuple[list[dict], list[dict], list[dict], list[dict]]:
    start = datetime(2025, 12, 1, tzinfo=UTC)
    ops, steps, approvals = [], [], []
    for i in range(OPERATIONS):
        at = start + timedelta(minutes=50 * i)
        active = i >= OPERATIONS - ACTIVE
        op_id = f"op-{i:06d}"
        ops.append(
            {
                "id": op_id,
                "runbook": RUNBOOKS[i % len(RUNBOOKS)],
                "environment": f"env{i % ACTIVE}" if active else f"env{i % 40}",
                "status": "running" if active else "succeeded",
                "requester": f"U{i % 30:04d}",
                "params": json.dumps({"migration": f"2025_{i:06d}_change"}),
                "summary": f"operation {i}",
                "created_at": iso(at),
                "updated_at": iso(at + timedelta(minutes=5)),
                "finished_at": None if active else iso(at + timedelta(minutes=5)),
                "result": None if active else "Finished: every step succeeded.",
                "holds_environment": 1 if active else None,
            }
        )
        for n, step in enumerate(STEPS):
            steps.append(
                {
                    "operation_id": op_id,
                    "position": n,
                    "step_id": step,
                    "title": step.title(),
                    "destructive": int(step == "apply"),
                    "idempotent": int(step != "apply"),
                    "status": "succeeded",
                    "attempts": 1,
                }
            )
        approvals.append(
            {
                "id": f"ap-{i:06d}",
                "operation_id": op_id,
                "step_id": "apply",
                "plan_text": "ALTER TABLE ...",
                "plan_hash": f"{i:064x}",
                "requested_by": f"U{i % 30:04d}",
                "requested_at": iso(at + timedelta(minutes=1)),
                "expires_at": iso(at + timedelta(minutes=31)),
                "status": "approved",
                "decided_by": f"U{(i + 1) % 30:04d}",
                "decided_at": iso(at + timedelta(minutes=2)),
            }
        )
    return ops, steps, approvals, _audit(ops)


def _audit(ops: list[dict]) -> list[dict]:
    per_op = AUDIT_ROWS // len(ops)
    rows, previous = [], audit_chain.GENESIS
    for op in ops:
        at = parse_iso(op["created_at"])
        for k in range(per_op):
            row = {
                "id": len(rows) + 1,
                "operation_id": op["id"],
                "at": iso(at + timedelta(seconds=k)),
                "actor": op["requester"],
                "event": "step_succeeded" if k else "started",
                "step_id": STEPS[k % len(STEPS)] if k else None,
                "message": f"event {k} of {op['id']}",
                "detail": "{}",
            }
            previous = audit_chain.link(previous, row)
            rows.append(row | {"chain": previous})
    return rows
