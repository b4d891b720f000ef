"""Two real `rollback-bot serve` replicas on one PostgreSQL state. Commands and clicks go to
either at random; at each step boundary of drill, resolve and sql the replica running the
step is killed with SIGKILL (bot/faults.py: both are armed, the first to reach the point
dies). The other must resume the operation within the lease's time, by the restart rule:

- no step ran twice unless it is safe to repeat, and none was recorded twice;
- every operation finished, or stopped safely saying why;
- the audit log has every event once (one start, one finish, one "resumed on another
  replica", a step's success at most once);
- the incident feed carries on: the survivor edits the same status message and says once
  that it resumed the operation.
"""

from __future__ import annotations

import dataclasses
import os
import random
import signal
import threading
import time
from collections import Counter

import pytest

from bot.faults import ONCE_ENV
from bot.runbooks import RUNBOOKS
from bot.store import Store
from tests.crash.test_crash_resume import (
    BotProcess,
    answer_gates,
    bot_env,
    project,  # noqa: F401 - the fixture: the migrations resolve and sql run on
    start_drill,
    start_resolve,
    start_sql,
)
from tests.rig.bot_server import DEFAULT_CONFIG, free_port, wait_until
from tests.rig.postgres import database_name
from tests.rig.signer import Signer

COVERED = ("drill", "resolve", "sql")
LEASE_SECONDS = 2


def boundaries() -> list[tuple[str, str, str]]:
    points = []
    for name in COVERED:
        for step in RUNBOOKS[name].steps:
            moments = ["started", "finished"] + ([] if step.idempotent else ["acted"])
            points += [(name, step.id, m) for m in moments]
    return points


BOUNDARIES = boundaries()


class AnyReplica(Signer):
    """Each request goes to a replica chosen at random among those still alive."""

    def __init__(self, replicas: list[BotProcess], secret: str, slack):
        super().__init__(replicas[0].signer.app_url, secret, slack)
        self.replicas = replicas
        self.random = random.Random(os.environ.get("PYTEST_XDIST_WORKER", "seed"))

    def post(self, *args, **kwargs):
        alive = [r for r in self.replicas if r.proc and r.proc.poll() is None]
        self.app_url = self.random.choice(alive or self.replicas).signer.app_url
        return super().post(*args, **kwargs)


class _AnyDied:
    def __init__(self, replicas: list[BotProcess]):
        self.replicas = replicas

    def poll(self):
        codes = [r.proc.poll() for r in self.replicas]
        return next((c for c in codes if c is not None), None)


@dataclasses.dataclass
class Replicas:
    """What the crash harness's drivers hold as ``bot``: a signer, the fake Slack, the
    store, and a process whose death ends the first phase (any replica's)."""

    members: list[BotProcess]
    signer: AnyReplica
    slack: object
    state_url: str
    _store: Store | None = None

    @property
    def store(self) -> Store:
        if self._store is None:
            self._store = Store(self.state_url)
        return self._store

    @property
    def proc(self) -> _AnyDied:
        return _AnyDied(self.members)

    def wait_until(self, predicate, timeout: float = 20, what: str = "condition"):
        return wait_until(predicate, timeout, what)

    def stop(self) -> None:
        for member in self.members:
            member.stop()
        if self._store is not None:
            self._store.close()


def two_replicas(fake_slack, secret: str, config, pg_url: str, tmp_path, state_url) -> Replicas:
    """Two `serve` processes (not started) on one state, both armed to crash at the same
    point, the first to reach it dying (bench/failover.py uses them too)."""
    base = bot_env(fake_slack, secret, config, pg_url)
    members = []
    for name in ("replica-a", "replica-b"):
        port = free_port()
        env = base | {"ROLLBACK_BOT_REPLICA": name, ONCE_ENV: str(tmp_path / "crashed")}
        signer = Signer(f"http://127.0.0.1:{port}/slack/events", secret, fake_slack)
        members.append(BotProcess(env, port, tmp_path / "unused", fake_slack, signer))
    return Replicas(members, AnyReplica(members, secret, fake_slack), fake_slack, state_url)


@pytest.fixture
def replicas(tmp_path, fake_slack, pg_url, project, pg_server):  # noqa: F811
    state_url = pg_server.create_database()
    secret = "replica-signing-secret"
    config = tmp_path / "rollback.toml"
    config.write_text(
        DEFAULT_CONFIG.format(
            state_db=state_url,
            approval_expiry_minutes=30,
            reminder_delay_minutes=30,
            progress_edit_interval_seconds=0.2,
            drill_seconds=0.3,
            drill_events=3,
            top_extra=f"lease_seconds = {LEASE_SECONDS}",
            production_extra="",
            development_extra="",
            tables_extra="",
            staging_extra=f'migrations_dir = "{project}"',
        )
    )
    pair = two_replicas(fake_slack, secret, config, pg_url, tmp_path, state_url)
    yield pair
    pair.stop()
    pg_server.drop_database(database_name(state_url))


def test_report_coverage(capsys):
    with capsys.disabled():
        print(f"\nreplicas: {len(BOUNDARIES)} step boundaries across {', '.join(COVERED)}")
    assert len(BOUNDARIES) >= 20


@pytest.mark.parametrize(
    ("runbook", "step_id", "moment"), BOUNDARIES, ids=[":".join(b) for b in BOUNDARIES]
)
def test_the_other_replica_resumes_when_the_one_running_a_step_is_killed(
    replicas, runbook, step_id, moment, pg_url
):
    starting = [
        threading.Thread(target=m.start, args=(f"{runbook}:{step_id}:{moment}", 60))
        for m in replicas.members
    ]
    for thread in starting:
        thread.start()
    for thread in starting:
        thread.join()
    assert all(m.proc.poll() is None for m in replicas.members), "a replica did not start"
    {
        "drill": lambda: start_drill(replicas),
        "resolve": lambda: start_resolve(replicas),
        "sql": lambda: start_sql(replicas, pg_url),
    }[runbook]()
    op = replicas.wait_until(lambda: replicas.store.operations(limit=1), what="the op")[0]
    answer_gates(replicas, op.id, until_dead=True)
    killed = next(m for m in replicas.members if m.proc.poll() is not None)
    assert killed.wait_killed() == -signal.SIGKILL, "the crash point was not reached"
    survivor = next(m for m in replicas.members if m is not killed)
    status_ts = replicas.store.operation(op.id).status_ts
    edits_before = len(_status_edits(replicas, status_ts))
    died_at = time.monotonic()

    answer_gates(replicas, op.id, until_dead=False, timeout=60)

    assert survivor.proc.poll() is None, "the survivor must not have crashed too"
    final = replicas.store.operation(op.id)
    step = RUNBOOKS[runbook].step(step_id)
    row = replicas.store.step(op.id, step_id)
    if moment == "finished":
        assert row.attempts == 1 and final.status == "succeeded", final.result
    elif step.idempotent:
        # done: "todo" for a step whose part is telling a person what to do (resolve's next
        # step is a to-do for the requester, not a tick)
        assert row.attempts == 2 and row.status in ("succeeded", "todo"), row.error
        assert final.status == "succeeded", final.result
    else:
        assert final.status == "stopped" and "not safe to repeat" in final.result, final
        assert row.attempts == 1
    # The operation's end is recorded, then said (audited) a moment later.
    replicas.wait_until(
        lambda: any(a.event == "finished" for a in replicas.store.audit(op.id)),
        what="the end audited",
    )
    _assert_every_event_once(replicas.store, op.id, (step_id, moment))
    resumed = [a for a in replicas.store.audit(op.id) if a.event == "resumed"]
    assert "another replica" in resumed[0].message
    assert resumed[0].at and time.monotonic() - died_at < 60
    # The feed carries on: the survivor says so in the thread and edits the same message.
    channel = final.incident_channel
    replicas.wait_until(
        lambda: any(
            "another replica" in r["text"]
            for m in replicas.slack.messages(channel)
            for r in [m, *replicas.slack.thread(channel, m["ts"])]
        ),
        what="the takeover said in the incident channel",
    )
    if status_ts is None:
        # Killed before the status message was posted: the survivor posts it, once.
        status_ts = replicas.wait_until(
            lambda: replicas.store.operation(op.id).status_ts, what="the status message"
        )
        edits_before = 0
    assert replicas.store.operation(op.id).status_ts == status_ts
    replicas.wait_until(
        lambda: len(_status_edits(replicas, status_ts)) > edits_before,
        what="the survivor editing the same status message",
    )
    # No line said twice in the thread: the survivor says what is new, not the story again.
    lines = Counter(r["text"] for r in replicas.slack.thread(channel, status_ts))
    assert [t for t, n in lines.items() if n > 1] == []


def _status_edits(replicas: Replicas, ts: str | None) -> list:
    return [c for c in replicas.slack.calls_to("chat.update") if c.args.get("ts") == ts]


def _assert_every_event_once(store: Store, op_id: str, killed_at: tuple[str, str]) -> None:
    audit = store.audit(op_id)
    counts = Counter(a.event for a in audit)
    assert counts["started"] == 1 and counts["finished"] == 1 and counts["resumed"] == 1
    per_step = Counter((a.event, a.step_id) for a in audit)
    for record in store.steps(op_id):
        assert per_step[("step_succeeded", record.step_id)] <= 1, record.step_id
        # Killed at "started", the replica had claimed the step but not yet said so.
        unsaid = int(killed_at == (record.step_id, "started"))
        started = per_step[("step_started", record.step_id)]
        assert started == record.attempts - unsaid, record.step_id
    # Nothing recorded twice: no two records alike but for their id and time.
    seen = Counter((a.event, a.step_id, a.actor, a.message) for a in audit)
    repeated = {k: n for k, n in seen.items() if n > 1 and k[0] not in _MAY_REPEAT}
    assert not repeated, repeated


# A rerun step starts again (step_started, its notes and cards); everything else is once.
_MAY_REPEAT = {"step_started", "step_note", "card", "checklist_ticked"}
