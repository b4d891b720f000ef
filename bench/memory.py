"""Resident memory of `rollback-bot serve` as a real process (HTTP mode, against the fake
Slack): idle after start, and after 100 whole drills (checklist, steps, progress, finish)."""

from __future__ import annotations

import math
import os
import shutil
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from urllib.request import ProxyHandler, build_opener

from bench.inproc import free_port, submit_checklist
from bot.slack.ids import Callback

DRILLS = 100
ENVS = 20  # drills run 20 at a time, one per environment (one active operation each)
TARGET_IDLE_MB = 120
SETTLE_S = 3.0

CONFIG = """
default_environment = "e0"
state_db = "{state_db}"

[drill]
slow_step_seconds = 0.5
progress_events = 10
{envs}
"""

ENV = """
[environments.e{n}]
database_url = "postgresql://unused@127.0.0.1/unused"
protected = false
notify_channel = "#bench-notify-{n}"
"""


def rss_mb(pid: int) -> float:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS")


def _command() -> list[str]:
    script = Path(sys.executable).with_name("rollback-bot")
    found = str(script) if script.exists() else shutil.which("rollback-bot")
    return [found] if found else [sys.executable, "-m", "bot.main"]


def run(tmp: Path, log) -> dict:
    from tests.rig.fake_slack import FakeSlack
    from tests.rig.signer import Signer

    slack = FakeSlack().start()
    # Not a rate-limit test (bench/progress.py is): lifted so 100 drills take seconds.
    for method in list(slack._limits):
        slack.set_rate_limit(method, math.inf, 1)
    for n in range(ENVS):
        slack.add_channel(f"bench-notify-{n}")
        # One requester per environment: Slack keeps one modal stack per user.
        slack.add_user(f"U_BENCH{n}", f"bench{n}")
    state_db = tmp / "memory.db"
    config = tmp / "memory.toml"
    config.write_text(
        CONFIG.format(state_db=state_db, envs="".join(ENV.format(n=n) for n in range(ENVS)))
    )
    secret = "bench-" + os.urandom(8).hex()
    port = free_port()
    env = {
        **os.environ,
        "SLACK_BOT_TOKEN": slack.token,
        "SLACK_SIGNING_SECRET": secret,
        "SLACK_API_URL": slack.url,
    }
    env.pop("SLACK_APP_TOKEN", None)
    proc = subprocess.Popen(
        [*_command(), "serve", "--config", str(config), "--host", "127.0.0.1"]
        + ["--port", str(port), "--log-level", "warning"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        _wait_healthy(port, proc)
        time.sleep(SETTLE_S)
        idle = rss_mb(proc.pid)
        signer = Signer(f"http://127.0.0.1:{port}/slack/events", secret, slack)
        began = time.monotonic()
        done = 0
        while done < DRILLS:
            batch = min(ENVS, DRILLS - done)
            _drill_batch(signer, slack, state_db, batch)
            done += batch
        drills_s = time.monotonic() - began
        time.sleep(SETTLE_S)
        after = rss_mb(proc.pid)
        finished = _count(state_db, "status = 'succeeded'")
    finally:
        proc.terminate()
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        slack.stop()
    result = {
        "idle_mb": idle,
        "after_drills_mb": after,
        "drills": DRILLS,
        "succeeded": finished,
        "drills_s": drills_s,
    }
    log(
        f"memory: idle {idle:.1f} MB, after {finished}/{DRILLS} drills {after:.1f} MB"
        f" ({drills_s:.1f} s of drills)"
    )
    return result


def _wait_healthy(port: int, proc: subprocess.Popen) -> None:
    opener = build_opener(ProxyHandler({}))
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"rollback-bot serve exited: {proc.stderr.read()[-2000:]}")
        try:
            with opener.open(f"http://127.0.0.1:{port}/healthz", timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError("rollback-bot serve did not become healthy")


def _count(state_db: Path, where: str) -> int:
    with sqlite3.connect(f"file:{state_db}?mode=ro", uri=True) as db:
        return db.execute(f"SELECT count(*) FROM operations WHERE {where}").fetchone()[0]


def _drill_batch(signer, slack, state_db: Path, count: int) -> None:
    before = _count(state_db, "status IN ('succeeded', 'failed', 'cancelled')")
    triggers = {}
    for n in range(count):
        response = signer.slash(f"drill --env e{n}", user=f"U_BENCH{n}")
        if response.status != 200:
            raise RuntimeError(f"drill: HTTP {response.status}")
        triggers[response.sent["trigger_id"]] = n
    opened = slack.wait_for(
        "views.open",
        count,
        timeout=60,
        where=lambda c: (
            c.args.get("trigger_id") in triggers
            and c.args["view"]["callback_id"] == Callback.CHECKLIST
        ),
    )
    for call in opened:
        user = f"U_BENCH{triggers[call.args['trigger_id']]}"
        submit_checklist(signer, slack, call.response["view"]["id"], user)
    deadline = time.monotonic() + 120
    while _count(state_db, "status IN ('succeeded', 'failed', 'cancelled')") < before + count:
        if time.monotonic() > deadline:
            raise RuntimeError("drills did not finish in 120 s")
        time.sleep(0.1)
