"""bot/logs.py: JSON lines carry the operation id; secrets are scrubbed in both formats,
tracebacks included."""

from __future__ import annotations

import io
import json
import logging
import threading

from bot.logs import JsonLines, RedactSecrets, with_operation

SECRET = "postgres://app:hunter2-very-secret@db/prod"


def _logger(stream: io.StringIO) -> logging.Logger:
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonLines())
    handler.addFilter(RedactSecrets([SECRET]))
    logger = logging.getLogger(f"test-logs-{id(stream)}")
    logger.handlers[:] = [handler]
    logger.propagate = False
    logger.setLevel(logging.INFO)
    return logger


def test_a_line_logged_while_walking_an_operation_carries_its_id():
    stream = io.StringIO()
    logger = _logger(stream)

    def step() -> None:
        logger.info("restoring the instance")

    worker = threading.Thread(target=with_operation("op-20261202-abc123", step))
    worker.start()
    worker.join()
    logger.info("nothing to do with an operation")
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    assert [(line["message"], line["operation_id"]) for line in lines] == [
        ("restoring the instance", "op-20261202-abc123"),
        ("nothing to do with an operation", None),
    ]
    assert lines[0]["level"] == "info" and lines[0]["at"].endswith("Z")


def test_a_line_naming_an_operation_carries_it():
    stream = io.StringIO()
    _logger(stream).warning("operation op-20261202-00ff11: store closed")
    assert json.loads(stream.getvalue())["operation_id"] == "op-20261202-00ff11"


def test_secrets_are_scrubbed_from_messages_and_tracebacks():
    stream = io.StringIO()
    logger = _logger(stream)
    try:
        raise RuntimeError(f"could not connect to {SECRET}")
    except RuntimeError:
        logger.exception("connect failed for %s", SECRET)
    line = json.loads(stream.getvalue())
    assert "hunter2-very-secret" not in stream.getvalue()
    assert "RuntimeError" in line["error"] and "connect failed" in line["message"]
