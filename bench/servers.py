"""The processes the ack-latency benchmark talks to, one per process so the load generator,
the fake Slack and each app do not share a GIL:

    python -m bench.servers fake OUT.json   the fake Slack Web API (tests.rig.fake_slack),
                                            with pre-issued trigger ids and response urls
    python -m bench.servers bot PORT CONFIG the real app: build_services/build_app served by
                                            bot.server (Bolt's ASGI adapter) under uvicorn
    python -m bench.servers bare PORT       a bare Bolt app whose only listener acks, under
                                            Bolt's ASGI adapter and the same uvicorn config

Each prints "ready" once it serves, then reads commands from stdin ("reap": cancel every
active operation, so the next round's drills start afresh); EOF stops it.
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
import threading
import time
from pathlib import Path

DRILL_ENVS = 10  # drill environments: one active operation each, reaped between rounds
USERS = ("U_ALICE", "U_BOB", "U_CAROL", "U_DAVE")


def _ready() -> None:
    print("ready", flush=True)


def _serve_in_thread(server) -> threading.Thread:
    thread = threading.Thread(target=server.run, name="http", daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise SystemExit("the HTTP server did not start")
        time.sleep(0.01)
    return thread


def fake(out: str, count: int) -> None:
    from tests.rig.fake_slack import FakeSlack

    slack = FakeSlack().start()
    # Pre-issued below and used minutes later: Slack's 3 s trigger window is not what is
    # measured here (the app opens the modal right after the ack either way).
    slack.trigger_ttl = 3600.0
    for n in range(DRILL_ENVS):
        slack.add_channel(f"bench-inc-{n}")
        slack.add_channel(f"bench-notify-{n}")
    issued = [
        {
            "user": USERS[i % len(USERS)],
            "trigger_id": slack.new_trigger_id(USERS[i % len(USERS)]),
            "response_url": slack.new_response_url(channel="C_ENG", user=USERS[i % len(USERS)]),
        }
        for i in range(count)
    ]
    with open(out, "w") as f:
        json.dump(
            {
                "url": slack.url,
                "token": slack.token,
                "verification_token": slack.verification_token,
                "team_id": slack.team_id,
                "team_domain": slack.team_domain,
                "app_id": slack.app_id,
                "issued": issued,
            },
            f,
        )
    _ready()
    sys.stdin.read()
    slack.stop()


def bot(port: int, config: str) -> None:
    import logging

    import bot.app
    from bot.app import build_app, build_services
    from bot.server import RollbackBotASGI, uvicorn_server
    from bot.settings import Settings, load_config, slack_settings_from_env

    logging.basicConfig(level=logging.CRITICAL)
    settings = Settings(slack=slack_settings_from_env(), config=load_config(Path(config)))
    if os.environ.get("BENCH_LISTENER_THREADS"):
        # To measure the app as it was before the fix: Bolt's default pool of 5.
        bot.app.LISTENER_THREADS = int(os.environ["BENCH_LISTENER_THREADS"])
    services = build_services(settings)
    app = build_app(services)
    services.start()
    server = uvicorn_server(
        RollbackBotASGI(app, on_refused=services.refused_request), "127.0.0.1", port, "warning"
    )
    thread = _serve_in_thread(server)
    _ready()
    for line in sys.stdin:
        if line.strip() == "reap":
            for op in services.store.operations(active=True, limit=1000):
                # A step may be running (it cannot be cancelled half-way): the next reap.
                with contextlib.suppress(Exception):
                    services.engine.cancel(op.id, op.requester)
            print("reaped", flush=True)
    server.should_exit = True
    thread.join(10)
    services.stop()


def bare(port: int) -> None:
    from slack_bolt import App
    from slack_bolt.adapter.asgi import SlackRequestHandler
    from slack_sdk import WebClient

    from bot.server import EVENTS_PATH, uvicorn_server

    # Bolt's single-team authorization asks auth.test once: the fake Slack answers it.
    client = WebClient(token=os.environ["SLACK_BOT_TOKEN"], base_url=os.environ["SLACK_API_URL"])
    app = App(
        client=client,
        signing_secret=os.environ["SLACK_SIGNING_SECRET"],
        token_verification_enabled=False,
        process_before_response=False,
    )

    @app.command("/rollback")
    def only_ack(ack):
        ack()

    server = uvicorn_server(
        SlackRequestHandler(app, path=EVENTS_PATH), "127.0.0.1", port, "warning"
    )
    thread = _serve_in_thread(server)
    _ready()
    for line in sys.stdin:
        if line.strip() == "reap":
            print("reaped", flush=True)
    server.should_exit = True
    thread.join(10)


if __name__ == "__main__":
    kind, *args = sys.argv[1:]
    if kind == "fake":
        fake(args[0], int(args[1]))
    elif kind == "bot":
        bot(int(args[0]), args[1])
    elif kind == "bare":
        bare(int(args[0]))
    else:
        raise SystemExit(f"unknown server {kind!r}")
