"""The test rig: every test uses these fixtures the same way.

- ``pg_server`` / ``pg_url``: a real PostgreSQL server started by the suite, and a
  throw-away database per test (tests/rig/postgres.py).
- ``moto_server`` / ``aws``: moto's threaded server on 127.0.0.1, reached by boto3
  through AWS_ENDPOINT_URL (tests/rig/aws.py).
- ``fake_slack``: a fake Slack Web API on 127.0.0.1 that records and validates calls
  (tests/rig/fake_slack.py).
- ``bot``: the real app served over HTTP (uvicorn) on 127.0.0.1, configured against the
  fakes, plus a request ``signer`` (tests/rig/bot_server.py, tests/rig/signer.py).
"""

pytest_plugins = [
    "tests.rig.postgres",
    "tests.rig.aws",
    "tests.rig.fake_slack",
    "tests.rig.bot_server",
]
