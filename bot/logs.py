"""Logging set-up with a filter that scrubs secret values from every record.

Secrets are passed around as ``Secret`` and never formatted on purpose; this filter is the
second line of defence for a library that logs a URL or a payload it was given.
"""

from __future__ import annotations

import logging

from bot.secrets import redact_url


class RedactSecrets(logging.Filter):
    def __init__(self, values: list[str]):
        super().__init__()
        self.values = sorted({v for v in values if v and len(v) >= 6}, key=len, reverse=True)

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        clean = redact_url(message)
        for value in self.values:
            clean = clean.replace(value, "***")
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
