"""Logging set-up: every log record the process makes is scrubbed of secret values when it
is made (a record factory, so every handler sees the clean text, whoever added it), written
as text lines or, with ``--log-format json``, one JSON object per line carrying the
operation id.

Secrets are passed around as ``Secret`` and never formatted on purpose; this is the second
line of defence for a library that logs a URL or a payload it was given. A line is cut to
``MAX_LINE`` characters before the scrub (whatever a sender makes us log, the cost is
bounded), and Bolt's record of a request that failed its signature check, which quotes the
whole body an unauthenticated sender chose, becomes one line without it.
"""

from __future__ import annotations

import contextvars
import json
import logging
import re
import threading
from collections.abc import Callable
from typing import Any

from bot.clock import iso
from bot.redaction import MASK, register, registered, scrub

FORMATS = ("text", "json")
MAX_LINE = 8_000
# slack_bolt/middleware/request_verification: "Invalid request signature detected
# (signature: ..., timestamp: ..., body: <the raw body>)" at INFO.
_BOLT_INVALID_SIGNATURE = "Invalid request signature detected"
_install_lock = threading.Lock()
_base_factory = None

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


def clean_line(message: str) -> str:
    """One log line: cut to MAX_LINE, then registered values and password shapes masked
    (a registered value the cut split keeps none of its characters)."""
    if message.startswith(_BOLT_INVALID_SIGNATURE):
        return f"{_BOLT_INVALID_SIGNATURE} (body not logged)"
    if len(message) <= MAX_LINE:
        return scrub(message)
    cut = _mask_split_value(message[:MAX_LINE])
    return scrub(cut, truncated=True) + f" ... ({len(message) - MAX_LINE} characters cut)"


def _mask_split_value(text: str) -> str:
    for value in registered():
        for length in range(len(value) - 1, 2, -1):
            if text.endswith(value[:length]):
                return text[:-length] + MASK
    return text


def _clean(record: logging.LogRecord) -> logging.LogRecord:
    try:
        message = record.getMessage()
    except (TypeError, ValueError):  # a bad format string: logging reports it at emit
        return record
    clean = clean_line(message)
    if clean != message:
        record.msg, record.args = clean, ()
    if record.exc_info and record.exc_info[1] is not None:
        # The traceback is formatted here, scrubbed, and kept as text.
        text = logging.Formatter().formatException(record.exc_info)
        record.exc_text, record.exc_info = clean_line(text), None
    return record


def _scrubbing_factory(*args, **kwargs) -> logging.LogRecord:
    return _clean(_base_factory(*args, **kwargs))


class RedactSecrets(logging.Filter):
    """The same scrub as a handler filter, for a handler of records made before the factory
    was installed; ``values`` are registered."""

    def __init__(self, values: list[str] = ()):
        super().__init__()
        register(*values)

    def filter(self, record: logging.LogRecord) -> bool:
        _clean(record)
        return True


def scrub_every_record(secrets: list[str] = ()) -> None:
    """Registers ``secrets`` and installs the scrubbing record factory (once)."""
    global _base_factory
    register(*secrets)
    with _install_lock:
        if _base_factory is None:
            _base_factory = logging.getLogRecordFactory()
            logging.setLogRecordFactory(_scrubbing_factory)


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
    scrub_every_record(secrets)
    handler = logging.StreamHandler()
    if log_format == "json":
        handler.setFormatter(JsonLines())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    handler.addFilter(RedactSecrets())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
