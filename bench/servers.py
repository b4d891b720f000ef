"""The processes the ack-latency benchmark talks to, one per process so the load generator,
the fake Slack and each app do not share a GIL:

    python -m bench.servers fake OUT.json   the fake Slack Web API (tests.rig.fake_slack),
                                            with pre-issued trigger ids and response urls
    python -m bench.servers bot PORT CONFIG the real app: build_services/build_app served by
                                            bot.server (Bolt's ASGI adapter) under uvicorn
    python -m bench.servers bare PORT       a bare Bolt app whose only listener acks, under
                                            Bolt's ASGI adapter and the same uvicorn config
    python -m bench.servers fake-socket OUT.json
                                            the fake Web API with the rig's Socket Mode
                                            servers, one per app (bench/socket_ack.py)
    python -m bench.servers bot-socket CONFIG
                                            the real app in Socket Mode, as serve runs it
                                            (bot.socket_mode.SocketModeRunner)
    python -m bench.servers bare-socket     a bare Bolt app whose only listener acks, under
                                            Bolt's own SocketModeHandler (slack_sdk built-in)

Each prints "ready" once it serves, then reads commands from stdin ("reap": cancel every
active operation, so the next round's drills start afresh); EOF stops it.
"""

from __future__ import annotations

import contextlib
import json
import math
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
    from bot import serving
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
    serving.settle_heap()  # as serve does
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


BARE_APP_TOKEN = "xapp-1-A0BARE-1-benchbaretoken"  # the bare app's own Socket Mode server


def fake_socket(out: str) -> None:
    """The fake Web API and one Socket Mode server per app. stdin: "round APP TEXTS" sends
    the slash commands (TEXTS separated by "|") at once and prints their ack latencies."""
    from tests.rig.fake_slack import FakeSlack
    from tests.rig.socket_mode import SocketModeServer

    slack = FakeSlack().start()
    slack.set_rate_limit("apps.connections.open", math.inf, 1)
    for n in range(DRILL_ENVS):
        slack.add_channel(f"bench-inc-{n}")
        slack.add_channel(f"bench-notify-{n}")
    servers = {"bot": SocketModeServer(slack.app_id).start()}
    servers["bare"] = SocketModeServer(slack.app_id).start()
    slack.attach_socket_mode(servers["bot"])
    slack.attach_socket_mode(servers["bare"], BARE_APP_TOKEN)
    with open(out, "w") as f:
        json.dump({"url": slack.url, "token": slack.token, "app_token": slack.app_token}, f)
    _ready()
    issued = 0
    for line in sys.stdin:
        _, name, texts = line.rstrip("\n").split(" ", 2)
        servers[name].wait_connected()
        deliveries = []
        for text in texts.split("|"):
            user = USERS[issued % len(USERS)]
            issued += 1
            deliveries.append(servers[name].deliver("slash_commands", _slash(slack, user, text)))
        acks = [d.wait(15) for d in deliveries]
        print(json.dumps([a.latency if a else None for a in acks]), flush=True)
    slack.stop()


def _slash(slack, user: str, text: str) -> dict:
    return {
        "token": slack.verification_token,
        "team_id": slack.team_id,
        "team_domain": slack.team_domain,
        "channel_id": "C_ENG",
        "channel_name": "engineering",
        "user_id": user,
        "user_name": user.lower(),
        "command": "/rollback",
        "text": text,
        "api_app_id": slack.app_id,
        "is_enterprise_install": "false",
        "response_url": slack.new_response_url(channel="C_ENG", user=user),
        "trigger_id": slack.new_trigger_id(user),
    }


def bot_socket(config: str) -> None:
    import logging

    from bot import serving
    from bot.app import build_app, build_services
    from bot.settings import Settings, load_config, slack_settings_from_env
    from bot.socket_mode import SocketModeRunner

    logging.basicConfig(level=logging.CRITICAL)
    settings = Settings(slack=slack_settings_from_env(), config=load_config(Path(config)))
    runner = SocketModeRunner(settings.slack.app_token.reveal(), api_url=settings.slack.api_url)
    runner.start()
    services = build_services(settings)
    app = build_app(services)
    services.start()
    serving.settle_heap()  # as serve does
    runner.accept(app)
    _ready()
    for line in sys.stdin:
        if line.strip() == "reap":
            _reap(services)
    runner.stop()
    services.stop()


def _reap(services) -> None:
    for op in services.store.operations(active=True, limit=1000):
        # A step may be running (it cannot be cancelled half-way): the next reap.
        with contextlib.suppress(Exception):
            services.engine.cancel(op.id, op.requester)
    print("reaped", flush=True)


def bare_socket() -> None:
    from slack_bolt import App
    from slack_bolt.adapter.socket_mode import SocketModeHandler
    from slack_sdk import WebClient

    client = WebClient(token=os.environ["SLACK_BOT_TOKEN"], base_url=os.environ["SLACK_API_URL"])
    app = App(client=client, token_verification_enabled=False, process_before_response=False)

    @app.command("/rollback")
    def only_ack(ack):
        ack()

    handler = SocketModeHandler(app, BARE_APP_TOKEN)
    handler.connect()
    _ready()
    for line in sys.stdin:
        if line.strip() == "reap":
            print("reaped", flush=True)
    handler.close()


if __name__ == "__main__":
    kind, *args = sys.argv[1:]
    if kind == "fake":
        fake(args[0], int(args[1]))
    elif kind == "bot":
        bot(int(args[0]), args[1])
    elif kind == "bare":
        bare(int(args[0]))
    elif kind == "fake-socket":
        fake_socket(args[0])
    elif kind == "bot-socket":
        bot_socket(args[0])
    elif kind == "bare-socket":
        bare_socket()
    else:
        raise SystemExit(f"unknown server {kind!r}")
