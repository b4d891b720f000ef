"""Secret values, and the one place that scrubs them out of text.

Tokens, signing secrets and database URLs travel as ``Secret`` so that a log line, a
repr() in a traceback or an f-string in a Slack message cannot leak them by accident.
Where text that may hold one must be shown anyway (a PostgreSQL error that quotes the
connection string, a library's log line), ``scrub`` masks it.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from urllib.parse import urlsplit

MASK = "***"


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
    return _URL_PASSWORD.sub(lambda m: m.group("scheme") + MASK, url)


def secret_values(secrets: Iterable[str]) -> set[str]:
    """Each value, and for a URL also its password alone (an error may quote just that)."""
    values: set[str] = set()
    for value in filter(None, secrets):
        values.add(value)
        try:
            password = urlsplit(value).password
        except ValueError:
            password = None
        if password:
            values.add(password)
    return values


def scrub(text: str, values: Iterable[str] = ()) -> str:
    """``text`` with every one of ``values`` (longest first) and every URL password masked."""
    for value in sorted(set(values), key=len, reverse=True):
        text = text.replace(value, MASK)
    return redact_url(text)
