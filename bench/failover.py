"""Failover time: two real `rollback-bot serve` replicas on one PostgreSQL state; the one
running a drill's slow step is killed with SIGKILL there (bot/faults.py, as in
tests/crash/test_replicas.py); time from its death to the other replica recording that it
resumed the operation ("resumed on another replica" in the audit log), and to the operation
ending. The lease is the config's default (``lease_seconds``, 15 s): the survivor may take
the operation over only once the dead replica's lease has expired.
"""

from __future__ import annotations

import os
import signal
import statistics
import threading
import time
from pathlib import Path

from bot.clock import parse_iso
from bot.settings import Config
from tests.crash.test_crash_resume import answer_gates, start_drill
from tests.crash.test_replicas import Replicas, two_replicas
from tests.rig.bot_server import config_text, wait_until
from tests.rig.fake_slack import FakeSlack

RUNS = 5
CRASH_AT = "drill:slow_step:started"
TARGET_S = 30.0
LEASE_SECONDS = Config.__dataclass_fields__["lease_seconds"].default


def run(pg, tmp: Path, log, runs: int = RUNS) -> dict:
    slack = FakeSlack().start()
    samples = []
    try:
        for n in range(runs):
            samples.append(_one(pg, slack, tmp / f"failover-{n}"))
            log(
                f"failover {n + 1}/{runs}: resumed {samples[-1]['resumed_s']:.2f} s,"
                f" ended {samples[-1]['ended_s']:.2f} s after the kill"
                f" (load {os.getloadavg()[0]:.1f})"
            )
            slack.reset()
    finally:
        slack.stop()
    resumed = [s["resumed_s"] for s in samples]
    return {
        "runs": runs,
        "lease_s": LEASE_SECONDS,
        "resumed_median_s": statistics.median(resumed),
        "resumed_max_s": max(resumed),
        "ended_median_s": statistics.median(s["ended_s"] for s in samples),
        "load": [s["load"] for s in samples],
    }


def _one(pg, slack, tmp: Path) -> dict:
    tmp.mkdir(parents=True)
    state_url, app_url = pg.create_database(), pg.create_database()
    config = tmp / "rollback.toml"
    config.write_text(config_text(state_db=state_url, drill_seconds=2, drill_events=5))
    secret = "failover-bench-secret"
    pair = two_replicas(slack, secret, config, app_url, tmp, state_url)
    members = pair.members
    try:
        starting = [threading.Thread(target=m.start, args=(CRASH_AT, 60)) for m in members]
        for thread in starting:
            thread.start()
        for thread in starting:
            thread.join()
        start_drill(pair)
        op = wait_until(lambda: pair.store.operations(limit=1), 30, "the drill")[0]
        died_at = _watch_for_death(pair, op.id)
        killed = next(m for m in members if m.proc.poll() is not None)
        assert killed.wait_killed() == -signal.SIGKILL, "the crash point was not reached"
        answer_gates(pair, op.id, until_dead=False, timeout=120)
        audit = pair.store.audit(op.id)
        resumed = next(a for a in audit if a.event == "resumed")
        ended = next(a for a in audit if a.event == "finished")
        return {
            "resumed_s": _seconds(resumed.at) - died_at,
            "ended_s": _seconds(ended.at) - died_at,
            "load": os.getloadavg()[0],
        }
    finally:
        pair.stop()


def _watch_for_death(pair: Replicas, op_id: str) -> float:
    """Answers the drill's gates until a replica dies; the wall-clock time of its death,
    polled every 10 ms (the audit log's times are wall-clock too)."""
    done = threading.Event()
    gates = threading.Thread(
        target=lambda: (answer_gates(pair, op_id, until_dead=True, timeout=120), done.set())
    )
    gates.start()
    deadline = time.monotonic() + 120
    while pair.proc.poll() is None:
        if time.monotonic() > deadline:
            raise AssertionError("no replica reached the crash point")
        time.sleep(0.01)
    died_at = time.time()
    gates.join()
    return died_at


def _seconds(at: str) -> float:
    return parse_iso(at).timestamp()
