"""Ack latency over HTTP: N concurrent signed slash commands (help, status, drill) against
the real app and against a bare Bolt app that only acks, rounds interleaved."""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
import threading
import time
from pathlib import Path

from bench.common import percentile, send, signed_slash, write_history
from bench.servers import DRILL_ENVS
from tests.rig.bot_server import free_port

LEVELS = (1, 10, 20)
ROUNDS = {1: 30, 10: 20, 20: 20}
WARMUP_ROUNDS = 3
TARGET_LEVEL = 20
TARGET_RATIO = 1.5
ROOT = Path(__file__).resolve().parent.parent

CONFIG = """
default_environment = "bench"
state_db = "{state_db}"

[drill]
slow_step_seconds = 2
progress_events = 10

[environments.bench]
database_url_env = "BENCH_DATABASE_URL"
migrations_dir = "{migrations_dir}"
protected = false
{drill_envs}
"""

DRILL_ENV = """
[environments.drill{n}]
database_url_env = "BENCH_DATABASE_URL"
protected = false
notify_channel = "#bench-notify-{n}"
incident_channel = "#bench-inc-{n}"
"""


class _Child:
    def __init__(self, args: list[str], env: dict):
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "bench.servers", *args],
            cwd=ROOT,
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        line = self.proc.stdout.readline().strip()
        if line != "ready":
            self.stop()
            raise RuntimeError(f"bench server {args[0]} did not start: {line!r}")

    def command(self, text: str) -> None:
        self.proc.stdin.write(text + "\n")
        self.proc.stdin.flush()
        self.proc.stdout.readline()

    def stop(self) -> None:
        if self.proc.stdin and not self.proc.stdin.closed:
            self.proc.stdin.close()
        try:
            self.proc.wait(20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def command_texts(n: int) -> list[str]:
    """help, status and drill in turn; each drill on its own environment."""
    mix = ("help", "status", "drill")
    return [
        f"drill --env drill{(i // 3) % DRILL_ENVS}" if mix[i % 3] == "drill" else mix[i % 3]
        for i in range(n)
    ]


def _round(url: str, secret: str, slack: dict, issued: list, n: int) -> list[float]:
    requests = [signed_slash(url, secret, slack, t, issued.pop()) for t in command_texts(n)]
    barrier = threading.Barrier(n)
    latencies: list[float] = [0.0] * n
    errors: list[str] = []

    def one(i: int) -> None:
        barrier.wait()
        began = time.perf_counter()
        try:
            status = send(requests[i])
        except OSError as error:
            errors.append(f"{type(error).__name__}: {error}")
            return
        latencies[i] = time.perf_counter() - began
        if status != 200:
            errors.append(f"HTTP {status}")

    threads = [threading.Thread(target=one, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise RuntimeError(f"ack benchmark: {errors[:3]}")
    return latencies


def run(pg, tmp: Path, log, *, state_on_postgres: bool = False) -> list[dict]:
    """``state_on_postgres``: the bot's state in a database of the rig's PostgreSQL (as
    replicas share it) instead of a SQLite file; then only the target's level is run."""
    levels = (TARGET_LEVEL,) if state_on_postgres else LEVELS
    total = sum((ROUNDS[n] + WARMUP_ROUNDS) * n for n in levels) * 2 + 100
    slack_file = tmp / "fake-slack.json"
    base_env = {**os.environ, "PYTHONPATH": str(ROOT)}
    fake = _Child(["fake", str(slack_file), str(total)], base_env)
    children = [fake]
    try:
        slack = json.loads(slack_file.read_text())
        issued = slack["issued"]
        url = pg.create_database()
        migrations = tmp / "ack-migrations"
        write_history(migrations, url, 100)
        config = tmp / "ack.toml"
        config.write_text(
            CONFIG.format(
                state_db=pg.create_database() if state_on_postgres else tmp / "ack-state.db",
                migrations_dir=migrations,
                drill_envs="".join(DRILL_ENV.format(n=n) for n in range(DRILL_ENVS)),
            )
        )
        secret = secrets.token_hex(16)
        env = {
            **base_env,
            "SLACK_BOT_TOKEN": slack["token"],
            "SLACK_SIGNING_SECRET": secret,
            "SLACK_API_URL": slack["url"],
            "BENCH_DATABASE_URL": url,
        }
        env.pop("SLACK_APP_TOKEN", None)
        bot_port, bare_port = free_port(), free_port()
        bot = _Child(["bot", str(bot_port), str(config)], env)
        children.append(bot)
        bare = _Child(["bare", str(bare_port)], env)
        children.append(bare)
        apps = {
            "bot": (bot, f"http://127.0.0.1:{bot_port}/slack/events"),
            "bare": (bare, f"http://127.0.0.1:{bare_port}/slack/events"),
        }
        results = []
        for n in levels:
            samples: dict[str, list[float]] = {"bot": [], "bare": []}
            for r in range(WARMUP_ROUNDS + ROUNDS[n]):
                # Interleaved, alternating who goes first, so background noise on this
                # machine falls on both alike.
                order = ("bot", "bare") if r % 2 == 0 else ("bare", "bot")
                for name in order:
                    child, app_url = apps[name]
                    latencies = _round(app_url, secret, slack, issued, n)
                    if r >= WARMUP_ROUNDS:
                        samples[name] += latencies
                    child.command("reap")
                    time.sleep(0.05)
            row = {"concurrency": n, "samples": len(samples["bot"])}
            for name in ("bot", "bare"):
                row[f"{name}_p50"] = percentile(samples[name], 50)
                row[f"{name}_p99"] = percentile(samples[name], 99)
            row["ratio_p99"] = row["bot_p99"] / row["bare_p99"]
            row["ratio_p50"] = row["bot_p50"] / row["bare_p50"]
            row["load"] = os.getloadavg()[0]
            log(
                f"ack x{n}: bot p50 {row['bot_p50'] * 1000:.1f} ms p99"
                f" {row['bot_p99'] * 1000:.1f} ms; bare p50 {row['bare_p50'] * 1000:.1f} ms p99"
                f" {row['bare_p99'] * 1000:.1f} ms; p99 ratio {row['ratio_p99']:.2f}"
            )
            results.append(row)
        return results
    finally:
        for child in reversed(children):
            child.stop()
