"""Logging set-up with a filter that scrubs secret values from every record, as text lines
or, with ``--log-format json``, one JSON object per line carrying the operation id.

Secrets are passed around as ``Secret`` and never formatted on purpose; this filter is the
second line of defence for a library that logs a URL or a payload it was given.
"""

from __future__ import annotations

import contextvars
import json
import logging
import re
from collections.abc import Callable
from typing import Any

from bot.clock import iso
from bot.redaction import scrub, secret_values

# Shorter values are left alone: masking every "abc" in every log line hides more than it
# protects.
_MIN_SECRET_LENGTH = 6
FORMATS = ("text", "json")

# The operation a thread works for: set around each walk of an operation (bot/engine/
# walker.py), so every line its steps and listeners log carries the id.
_operation: contextvars.ContextVar[str | None] = contextvars.ContextVar("operation", default=None)
# Lines logged elsewhere (a handler, the scheduler) that name an operation carry it too.
_OPERATION_ID = re.compile(r"\bop-\d{8}-[0-9a-f]{6}\b")


def with_operation(op_id: str, fn: Callable[..., Any]) -> Callable[..., Any]:
    """``fn`` wrapped so that what it logs carries ``op_id``."""

    def run(*args, **kwargs):
        token = _operation.set(op_id)
        try:
            return fn(*args, **kwargs)
        finally:
            _operation.reset(token)

    return run


class RedactSecrets(logging.Filter):
    def __init__(self, values: list[str]):
        super().__init__()
        self.values = {v for v in secret_values(values) if len(v) >= _MIN_SECRET_LENGTH}

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        clean = scrub(message, self.values)
        if clean != message:
            record.msg, record.args = clean, ()
        if record.exc_info:
            # The traceback is formatted here, scrubbed, and kept as text.
            text = logging.Formatter().formatException(record.exc_info)
            record.exc_text, record.exc_info = scrub(text, self.values), None
        return True


class JsonLines(logging.Formatter):
    """One JSON object per line: at, level, logger, message, operation_id (when known),
    error (a traceback, when there is one)."""

    def format(self, record: logging.LogRecord) -> str:
        message = record.getMessage()
        found = _OPERATION_ID.search(message)
        line = {
            "at": iso(_utc(record.created)),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": message,
            "operation_id": _operation.get() or (found.group(0) if found else None),
        }
        if record.exc_text:
            line["error"] = record.exc_text
        return json.dumps(line, ensure_ascii=False)


def _utc(timestamp: float):
    from datetime import UTC, datetime

    return datetime.fromtimestamp(timestamp, UTC)


def configure(level: str, secrets: list[str], log_format: str = "text") -> None:
    handler = logging.StreamHandler()
    if log_format == "json":
        handler.setFormatter(JsonLines())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    handler.addFilter(RedactSecrets(secrets))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
