"""Ack latency over Socket Mode: 20 slash commands (help, status, drill) sent at once as
envelopes by the rig's Socket Mode server, to the real app (bot.socket_mode, as `serve`
runs it) and to a bare Bolt app under Bolt's own SocketModeHandler, rounds interleaved.
Latency: from the envelope leaving the server to its ack arriving (what Slack's 3 s
deadline counts)."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

from bench.ack import CONFIG, DRILL_ENV, ROOT, TARGET_RATIO, WARMUP_ROUNDS, _Child, command_texts
from bench.common import percentile, write_history
from bench.servers import DRILL_ENVS

LEVEL = 20
ROUNDS = 20

__all__ = ["LEVEL", "TARGET_RATIO", "run"]


def _round(fake: _Child, name: str, n: int) -> list[float]:
    fake.proc.stdin.write(f"round {name} {'|'.join(command_texts(n))}\n")
    fake.proc.stdin.flush()
    latencies = json.loads(fake.proc.stdout.readline())
    if None in latencies:
        raise RuntimeError(f"socket ack benchmark: {latencies.count(None)} envelopes not acked")
    return latencies


def run(pg, tmp: Path, log) -> dict:
    slack_file = tmp / "fake-socket.json"
    base_env = {**os.environ, "PYTHONPATH": str(ROOT)}
    fake = _Child(["fake-socket", str(slack_file)], base_env)
    children = [fake]
    try:
        slack = json.loads(slack_file.read_text())
        url = pg.create_database()
        migrations = tmp / "socket-ack-migrations"
        write_history(migrations, url, 100)
        config = tmp / "socket-ack.toml"
        config.write_text(
            CONFIG.format(
                state_db=tmp / "socket-ack-state.db",
                migrations_dir=migrations,
                drill_envs="".join(DRILL_ENV.format(n=n) for n in range(DRILL_ENVS)),
            )
        )
        env = {
            **base_env,
            "SLACK_BOT_TOKEN": slack["token"],
            "SLACK_APP_TOKEN": slack["app_token"],
            "SLACK_API_URL": slack["url"],
            "BENCH_DATABASE_URL": url,
        }
        env.pop("SLACK_SIGNING_SECRET", None)
        apps = {"bot": _Child(["bot-socket", str(config)], env)}
        children.append(apps["bot"])
        apps["bare"] = _Child(["bare-socket"], env)
        children.append(apps["bare"])
        samples: dict[str, list[float]] = {"bot": [], "bare": []}
        for r in range(WARMUP_ROUNDS + ROUNDS):
            order = ("bot", "bare") if r % 2 == 0 else ("bare", "bot")
            for name in order:
                latencies = _round(fake, name, LEVEL)
                if r >= WARMUP_ROUNDS:
                    samples[name] += latencies
                apps[name].command("reap")
                time.sleep(0.05)
        row = {"concurrency": LEVEL, "samples": len(samples["bot"])}
        for name in ("bot", "bare"):
            row[f"{name}_p50"] = percentile(samples[name], 50)
            row[f"{name}_p99"] = percentile(samples[name], 99)
        row["ratio_p99"] = row["bot_p99"] / row["bare_p99"]
        log(
            f"socket ack x{LEVEL}: bot p50 {row['bot_p50'] * 1000:.1f} ms p99"
            f" {row['bot_p99'] * 1000:.1f} ms; bare p50 {row['bare_p50'] * 1000:.1f} ms p99"
            f" {row['bare_p99'] * 1000:.1f} ms; p99 ratio {row['ratio_p99']:.2f}"
        )
        return row
    finally:
        for child in reversed(children):
            child.stop()
