"""`rollback-bot serve` in Socket Mode, run as a real process against the fake Web API and
the rig's Socket Mode server: a refused app token is one line and exit 2; otherwise it
connects, and /healthz and /readyz answer on --port with the socket's state."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from tests.rig.bot_server import free_port

# The console script, the stable entry point (whatever module implements it).
ROLLBACK_BOT = str(Path(sys.executable).with_name("rollback-bot"))


@pytest.fixture
def config(tmp_path) -> Path:
    path = tmp_path / "rollback.toml"
    path.write_text(
        f'default_environment = "dev"\nstate_db = "{tmp_path}/s.db"\n'
        '[environments.dev]\ndatabase_url_env = "X"\nprotected = false\n'
    )
    return path


def env_for(fake_slack, config: Path, app_token: str) -> dict:
    base = {k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "ROLLBACK_"))}
    return {
        **base,
        "SLACK_BOT_TOKEN": fake_slack.token,
        "SLACK_APP_TOKEN": app_token,
        "SLACK_API_URL": fake_slack.url,
        "ROLLBACK_BOT_CONFIG": str(config),
    }


def serve(env: dict, port: int, timeout: float = 30) -> subprocess.CompletedProcess:
    return subprocess.run(
        [ROLLBACK_BOT, "serve", "--host", "127.0.0.1", "--port", str(port)],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def probe(port: int, path: str) -> tuple[int, dict]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=2) as answer:
            return answer.status, json.loads(answer.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def test_a_wrong_app_token_is_one_line_and_exit_2(fake_slack, socket_mode, config):
    wrong = "xapp-1-A0TEST-1-not-the-token"
    result = serve(env_for(fake_slack, config, wrong), free_port())
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "SLACK_APP_TOKEN" in lines[0] and "invalid_auth" in lines[0]
    assert "Traceback" not in result.stderr and wrong not in result.stderr + result.stdout
    assert not socket_mode.connections(open_only=False)


def test_an_app_token_without_connections_write_is_one_line_and_exit_2(
    fake_slack, socket_mode, config
):
    fake_slack.app_token_scopes = {"authorizations:read"}
    result = serve(env_for(fake_slack, config, fake_slack.app_token), free_port())
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "connections:write" in lines[0] and "missing_scope" in lines[0]
    assert "Traceback" not in result.stderr
    assert fake_slack.app_token not in result.stderr + result.stdout


def test_serve_connects_and_its_probes_report_the_socket(fake_slack, socket_mode, config):
    port = free_port()
    proc = subprocess.Popen(
        [ROLLBACK_BOT, "serve", "--host", "127.0.0.1", "--port", str(port)],
        env=env_for(fake_slack, config, fake_slack.app_token),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                status, body = probe(port, "/readyz")
                break
            except OSError:
                assert proc.poll() is None, proc.stdout.read()
                assert time.monotonic() < deadline, "the probe listener did not come up"
                time.sleep(0.2)
        assert status == 200 and body["mode"] == "socket_mode"
        assert body["checks"]["socket_mode"]["connections"] == 1
        assert probe(port, "/healthz")[0] == 200
        # A slash command over the socket is acked by the real process.
        connected = socket_mode.wait_connected()[0]
        delivery = socket_mode.deliver(
            "slash_commands",
            {
                "command": "/rollback",
                "text": "help",
                "user_id": "U_ALICE",
                "channel_id": "C_ENG",
                "trigger_id": fake_slack.new_trigger_id("U_ALICE"),
                "team_id": fake_slack.team_id,
                "api_app_id": fake_slack.app_id,
            },
        )
        ack = delivery.wait(10)
        assert ack is not None and "/rollback help" in json.dumps(ack.payload)
        assert ack.connection == connected.id

        refreshed = time.monotonic()
        socket_mode.disconnect("refresh_requested")
        socket_mode.wait_connected(after=refreshed)
        # The server counts the new connection once it has sent hello; the bot counts it
        # once it has read that hello: wait (bounded) for the bot's side too.
        deadline = time.monotonic() + 10
        body = probe(port, "/readyz")[1]["checks"]["socket_mode"]
        while body["reconnects"] < 1 and time.monotonic() < deadline:
            time.sleep(0.05)
            body = probe(port, "/readyz")[1]["checks"]["socket_mode"]
        assert body["last_disconnect"] == "refresh_requested" and body["reconnects"] == 1
    finally:
        proc.send_signal(signal.SIGTERM)
        output = proc.communicate(timeout=20)[0]
    assert proc.returncode == 0, output
    assert fake_slack.app_token not in output and fake_slack.token not in output
    deadline = time.monotonic() + 5
    while socket_mode.connections() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not socket_mode.connections(), "serve left a connection open after SIGTERM"
