"""`rollback-bot state migrate --to postgresql://...` (bot/main.py, bot/store/copy.py), run as
a real process: a SQLite state with real operations (one finished, one waiting at its
checklist) is copied whole into an empty PostgreSQL database, which the bot then runs on."""

from __future__ import annotations

import json
from datetime import timedelta

from bot.clock import iso, utcnow
from bot.engine.engine import Engine
from bot.engine.model import Runbook, Step
from bot.settings import load_config
from bot.store import Store
from bot.store.copy import NOT_COPIED
from bot.store.records import Approval, OperationStatus, ScheduledJob
from tests.rig.postgres import database_name
from tests.unit.test_main import run_cli

CONFIG = """
default_environment = "dev"
state_db = "{state_db}"
[environments.dev]
database_url_env = "X"
protected = false
[environments.prod]
database_url_env = "Y"
protected = true
approvers = ["U_BOB"]
"""


def _sqlite_state(tmp_path):
    """A state file as a running bot leaves it: audit, steps, checklists, jobs, markers."""
    config_path = tmp_path / "rollback.toml"
    config_path.write_text(CONFIG.format(state_db=tmp_path / "state.db"))
    config = load_config(config_path)
    rb = Runbook("t", "test", (Step("a", "A", lambda ctx: "done"),))
    gated = Runbook("g", "gated", (Step("d", "D", lambda ctx: None, destructive=True),))
    store = Store(config.state_db)
    engine = Engine(store, config, {"t": rb, "g": gated}, members_of=lambda h: set())
    done = engine.start("t", "dev", "U_ALICE")
    waiting = engine.start("g", "prod", "U_ALICE")
    deadline = utcnow() + timedelta(seconds=20)
    while store.operation(done.id).status != OperationStatus.SUCCEEDED or (
        store.operation(waiting.id).status != OperationStatus.WAITING_CHECKLIST
    ):
        assert utcnow() < deadline, "the operations did not settle"
    store.schedule_job(ScheduledJob("j1", None, "approval_expiry", iso(utcnow()), {"k": "v"}))
    store.first_time_seen("v0=abc")
    # What the Slack side records: an approver's DM copy of an approval request, the
    # incident channel the bot made, a card edited later.
    now = iso(utcnow())
    approval = Approval("apr-1", waiting.id, "d", "plan", "h" * 64, "U_ALICE", now, now)
    store.add_approval(approval, ScheduledJob("exp-1", waiting.id, "approval_expiry", now))
    store.add_approval_copy("apr-1", "D_BOB", "1.2")
    store.add_bot_channel("C_INC", "prod", waiting.id, reused=False)
    store.set_card_message(f"cleanup:{waiting.id}", "C_INC", "1.3")
    engine.shutdown()
    store.close()
    return config_path, config, waiting.id


def _rows(store: Store) -> dict[str, list[dict]]:
    """Every table's rows (every table the database holds, not the copy's own list), in one
    order whatever the database's collation."""
    return {
        t: sorted(store._query(f"SELECT * FROM {t}"), key=lambda r: json.dumps(r, sort_keys=True))
        for t in sorted(store.table_names() - NOT_COPIED)
    }


def test_the_state_moves_from_sqlite_to_postgresql_whole(tmp_path, pg_server):
    config_path, config, waiting_id = _sqlite_state(tmp_path)
    target = pg_server.create_database()
    result = run_cli(
        "state",
        "migrate",
        "--config",
        str(config_path),
        "--to-env",
        "STATE_TARGET",
        env={"STATE_TARGET": target},
    )

    assert result.returncode == 0, result.stderr
    assert pg_server.password not in result.stdout + result.stderr
    assert "audit: " in result.stdout and "operations: 2 rows" in result.stdout
    source, copied = Store(config.state_db), Store(target)
    before, after = _rows(source), _rows(copied)
    for row in before["operations"]:
        row.update(lease_owner=None, lease_expires_at=None)  # the stopped bot's leases go
    before["operations"].sort(key=lambda r: json.dumps(r, sort_keys=True))
    assert after == before
    assert set(after) == set(before)
    assert all(after[t] for t in ("steps", "checklist_items", "audit", "scheduled_jobs"))
    assert all(after[t] for t in ("approval_copies", "bot_channels", "card_messages"))
    # The audit log continues after the copied ids, and stays append-only.
    last = max(a.id for a in copied.audit())
    assert copied.append_audit(None, "U_A", "x").id == last + 1
    # A replica of the new store takes the waiting operation at once.
    assert copied.take_lease(waiting_id, "replica-a", utcnow(), 15) is not None

    again = run_cli("state", "migrate", "--config", str(config_path), "--to", target)
    assert again.returncode == 2 and "already holds operations" in again.stderr
    assert pg_server.password not in again.stderr
    source.close()
    copied.close()
    pg_server.drop_database(database_name(target))


def test_a_target_that_is_not_postgresql_is_refused(tmp_path):
    config_path = tmp_path / "rollback.toml"
    config_path.write_text(CONFIG.format(state_db=tmp_path / "state.db"))
    result = run_cli("state", "migrate", "--config", str(config_path), "--to", "mysql://x")
    assert result.returncode == 2
    assert "--to must be a postgresql:// URL" in result.stderr
