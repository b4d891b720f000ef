"""`rollback-bot serve` at start, as a real process: what would only fail mid-incident is
refused in one line with exit 2 (Slack unreachable, a missing migrations directory, a state
file from a newer release); with --log-format json every line is a JSON object."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys

import pytest

from bot.store import Store
from tests.rig.bot_server import free_port, wait_until
from tests.rig.http_get import get
from tests.unit.test_main import run_cli


def _config(tmp_path, extra: str = "") -> str:
    config = tmp_path / "rollback.toml"
    config.write_text(
        f'default_environment = "dev"\nstate_db = "{tmp_path}/s.db"\n'
        '[environments.dev]\ndatabase_url_env = "X"\nprotected = false\n' + extra
    )
    return str(config)


def _slack_env(fake_slack) -> dict:
    return {
        "SLACK_BOT_TOKEN": fake_slack.token,
        "SLACK_SIGNING_SECRET": "s",
        "SLACK_API_URL": fake_slack.url,
    }


@pytest.mark.parametrize("mode", ["http", "socket_mode"])
def test_slack_unreachable_at_start_is_one_line_and_exit_2(tmp_path, mode):
    closed = f"http://127.0.0.1:{free_port()}/api/"
    env = {"SLACK_BOT_TOKEN": "xoxb-1", "SLACK_API_URL": closed}
    env |= {"SLACK_APP_TOKEN": "xapp-1"} if mode == "socket_mode" else {"SLACK_SIGNING_SECRET": "s"}
    result = run_cli("serve", "--config", _config(tmp_path), "--port", "0", env=env)
    assert result.returncode == 2
    lines = (result.stdout + result.stderr).strip().splitlines()
    assert lines == [
        f"rollback-bot: cannot reach Slack at {closed} (URLError: [Errno 111] Connection"
        " refused): the bot needs HTTPS to slack.com (check DNS, proxy and egress rules) or a"
        " correct SLACK_API_URL."
    ]


def test_a_missing_migrations_dir_is_refused_naming_the_environment(tmp_path, fake_slack):
    config = _config(tmp_path, f'migrations_dir = "{tmp_path}/nowhere"\n')
    result = run_cli("serve", "--config", config, env=_slack_env(fake_slack))
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        f"rollback-bot: {config}: [environments.dev]: migrations_dir {tmp_path}/nowhere is not"
        " a directory: mount the project's prisma/migrations there or fix the path."
    ]
    assert not fake_slack.calls_to("auth.test")  # refused before anything started


def test_a_state_file_from_a_newer_release_is_refused(tmp_path, fake_slack):
    config = _config(tmp_path)
    Store(tmp_path / "s.db").close()
    conn = sqlite3.connect(tmp_path / "s.db")
    conn.execute("INSERT INTO schema_version VALUES (999, 'future', 'x')")
    conn.commit()
    conn.close()
    result = run_cli("serve", "--config", config, env=_slack_env(fake_slack))
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "has schema version 999, newer than this rollback-bot" in lines[0]


def test_json_log_lines_and_metrics_from_the_real_process(tmp_path, fake_slack):
    port = free_port()
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "ROLLBACK_"))},
        "SLACK_BOT_TOKEN": fake_slack.token,
        "SLACK_SIGNING_SECRET": "s3cret-signing",
        "SLACK_API_URL": fake_slack.url,
    }
    command = [sys.executable, "-m", "bot.main", "serve", "--config", _config(tmp_path)]
    command += ["--host", "127.0.0.1", "--port", str(port), "--log-format", "json"]
    proc = subprocess.Popen(
        command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    try:
        wait_until(
            lambda: proc.poll() is None and get(f"http://127.0.0.1:{port}/readyz")[0] == 200,
            timeout=30,
            what="the bot ready",
        )
        status, content_type, text = get(f"http://127.0.0.1:{port}/metrics")
        assert status == 200 and "rollback_bot_slack_api_calls_total" in text
    finally:
        proc.terminate()
        output = proc.communicate(timeout=15)[0]
    lines = [json.loads(line) for line in output.strip().splitlines()]
    assert any("uvicorn" in line["logger"] for line in lines)
    assert all({"at", "level", "logger", "message", "operation_id"} <= set(line) for line in lines)
    assert "s3cret-signing" not in output and fake_slack.token not in output
