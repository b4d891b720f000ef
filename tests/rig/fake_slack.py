"""The fake Slack Web API of the rig. The server lives in bot/sandbox/fake_slack.py (the
sandbox serves its Slack look-alike page from the same fake); this module re-exports it and
adds the pytest fixtures.

Pytest plugin: ``fake_slack_server`` (session) and ``fake_slack`` (per test, reset).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from bot.sandbox.fake_slack import (
    DEFAULT_RATE_LIMITS,
    MESSAGE_BLOCK_LIMIT,
    MODAL_STACK_LIMIT,
    VIEW_BLOCK_LIMIT,
    Call,
    FakeSlack,
    RateLimit,
    SlackError,
    block_elements,
    block_problems,
    check_blocks,
    check_view,
    public_message,
)

__all__ = [
    "DEFAULT_RATE_LIMITS",
    "MESSAGE_BLOCK_LIMIT",
    "MODAL_STACK_LIMIT",
    "VIEW_BLOCK_LIMIT",
    "Call",
    "FakeSlack",
    "RateLimit",
    "SlackError",
    "block_elements",
    "block_problems",
    "check_blocks",
    "check_view",
    "fake_slack",
    "fake_slack_server",
    "public_message",
]


@pytest.fixture(scope="session")
def fake_slack_server() -> Iterator[FakeSlack]:
    fake = FakeSlack().start()
    yield fake
    fake.stop()


@pytest.fixture
def fake_slack(fake_slack_server: FakeSlack) -> FakeSlack:
    fake_slack_server.reset()
    return fake_slack_server
