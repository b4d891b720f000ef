"""The test rig: every test uses these fixtures the same way.

- ``pg_server`` / ``pg_url``: a real PostgreSQL server started by the suite, and a
  throw-away database per test (tests/rig/postgres.py).
- ``moto_server`` / ``aws``: moto's threaded server on 127.0.0.1, reached by boto3
  through AWS_ENDPOINT_URL (tests/rig/aws.py).
- ``state_db``: the state store's location: SQLite under tmp_path, or a fresh PostgreSQL
  database with ``--state-store postgresql`` (tests/rig/state_store.py).
- ``fake_slack``: a fake Slack Web API on 127.0.0.1 that records and validates calls
  (tests/rig/fake_slack.py).
- ``socket_mode``: Slack's side of Socket Mode on 127.0.0.1, whose URLs the fake's
  apps.connections.open hands out (tests/rig/socket_mode.py).
- ``bot``: the real app served over HTTP (uvicorn) on 127.0.0.1, or connected over Socket
  Mode (``bot_transport``; tests marked ``both_transports`` run in both), configured
  against the fakes, plus a ``signer`` that drives it either way (tests/rig/bot_server.py,
  tests/rig/signer.py, tests/rig/socket_mode.py).
"""

pytest_plugins = [
    "tests.rig.postgres",
    "tests.rig.aws",
    "tests.rig.fake_slack",
    "tests.rig.socket_mode",
    "tests.rig.state_store",
    "tests.rig.bot_server",
]
