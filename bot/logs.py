"""Logging set-up with a filter that scrubs secret values from every record.

Secrets are passed around as ``Secret`` and never formatted on purpose; this filter is the
second line of defence for a library that logs a URL or a payload it was given.
"""

from __future__ import annotations

import logging

from bot.redaction import scrub, secret_values

# Shorter values are left alone: masking every "abc" in every log line hides more than it
# protects.
_MIN_SECRET_LENGTH = 6


class RedactSecrets(logging.Filter):
    def __init__(self, values: list[str]):
        super().__init__()
        self.values = {v for v in secret_values(values) if len(v) >= _MIN_SECRET_LENGTH}

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        clean = scrub(message, self.values)
        if clean != message:
            record.msg, record.args = clean, ()
        return True


def configure(level: str, secrets: list[str]) -> None:
    handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    handler.addFilter(RedactSecrets(secrets))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
