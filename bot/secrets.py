"""A secret value that never prints itself.

Tokens, signing secrets and database URLs travel as ``Secret`` so that a log line, a
repr() in a traceback or an f-string in a Slack message cannot leak them by accident.
"""

from __future__ import annotations

import re


class Secret:
    __slots__ = ("_value",)

    def __init__(self, value: str):
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "Secret('***')"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)

    def __bool__(self) -> bool:
        return bool(self._value)


_URL_PASSWORD = re.compile(r"(?P<scheme>[a-z][a-z0-9+.-]*://[^:/@\s]+:)(?P<pw>[^@\s]+)(?=@)", re.I)


def redact_url(url: str) -> str:
    """postgresql://user:pw@host/db -> postgresql://user:***@host/db (for display only)."""
    return _URL_PASSWORD.sub(lambda m: m.group("scheme") + "***", url)
