"""`rollback-bot serve` (bot/main.py) run as a real process: wrong settings give one line
and exit 2."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import urllib.request

from tests.rig.bot_server import free_port


def run_cli(*args, env=None, timeout=30):
    base = {k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "ROLLBACK_"))}
    return subprocess.run(
        [sys.executable, "-m", "bot.main", *args],
        env={**base, **(env or {})},
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def test_serve_without_tokens_prints_one_clear_line_and_exits_2():
    result = run_cli("serve")
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "SLACK_BOT_TOKEN is not set" in lines[0]
    assert "Traceback" not in result.stderr


def test_serve_with_a_bad_config_names_file_and_key(tmp_path):
    config = tmp_path / "bad.toml"
    config.write_text(
        'default_environment = "x"\n[environments.x]\nprotected = 1\ndatabase_url_env = "A"\n'
    )
    result = run_cli(
        "serve",
        "--config",
        str(config),
        env={"SLACK_BOT_TOKEN": "xoxb-1", "SLACK_SIGNING_SECRET": "abc"},
    )
    assert result.returncode == 2
    assert f"{config}: [environments.x]: protected must be a boolean" in result.stderr
    assert "Traceback" not in result.stderr


def test_serve_with_a_bad_port_exits_2():
    result = run_cli("serve", "--port", "http")
    assert result.returncode == 2
    assert "--port must be a number" in result.stderr


def test_serve_http_mode_answers_healthz(tmp_path, fake_slack):
    config = tmp_path / "rollback.toml"
    config.write_text(
        f'default_environment = "dev"\nstate_db = "{tmp_path}/s.db"\n'
        '[environments.dev]\ndatabase_url_env = "X"\nprotected = false\n'
    )
    port = free_port()
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("SLACK_")},
        "SLACK_BOT_TOKEN": fake_slack.token,
        "SLACK_SIGNING_SECRET": "s3cret",
        "SLACK_API_URL": fake_slack.url,
        "ROLLBACK_BOT_CONFIG": str(config),
    }
    proc = subprocess.Popen(
        [sys.executable, "-m", "bot.main", "serve", "--host", "127.0.0.1", "--port", str(port)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1) as r:
                    assert r.status == 200
                    break
            except OSError:
                assert proc.poll() is None, proc.stdout.read()
                assert time.monotonic() < deadline, "server did not come up"
                time.sleep(0.2)
        # auth.test at start-up reached the fake Slack with the bot token.
        assert fake_slack.calls_to("auth.test")
    finally:
        proc.terminate()
        output = proc.communicate(timeout=15)[0]
    assert "uvicorn" in output.lower() or "Uvicorn" in output
    assert "s3cret" not in output and fake_slack.token not in output
