"""Secret values, and the one place that scrubs them out of text.

Tokens, signing secrets and database URLs travel as ``Secret`` so that a log line, a
repr() in a traceback or an f-string in a Slack message cannot leak them by accident.
Every password the bot resolves (config, environment variable, Secrets Manager, a restored
instance's URL) is ``register``-ed the moment it is resolved; ``scrub`` masks registered
values and every password-shaped part of text: the userinfo of a URL
(``scheme://user:pw@``, ``scheme://:pw@``), its ``password``/``sslpassword`` query
parameters, and the ``password=`` of a keyword/value DSN.

Linear by construction: the text is scanned forward with ``str.find`` and regular
expressions that are a fixed prefix or one character class (no nested or adjacent
quantifiers), so a hostile 1 MB log line costs one pass. The old pattern
``[a-z][a-z0-9+.-]*://[^:/@\\s]+:...`` backtracked: 32,000 characters took 10 s.
"""

from __future__ import annotations

import bisect
import re
import threading
from collections.abc import Iterable
from urllib.parse import parse_qsl, unquote, urlsplit

import psycopg
from psycopg.conninfo import conninfo_to_dict

MASK = "***"
# Registered values shorter than this are left alone: masking every "abc" in every message
# hides more than it protects (a password that short is still masked in URL/DSN shape).
MIN_SECRET_LENGTH = 6
_PASSWORD_KEYS = ("password", "sslpassword")
# libpq's connection keywords that mark ``password=...`` as part of a DSN rather than, say,
# SQL that a person typed (``SET password = ...`` is shown to the approver as typed).
_DSN_KEYWORDS = frozenset(
    ("host", "hostaddr", "port", "dbname", "user", "passfile", "sslmode")
    + ("application_name", "connect_timeout", "options", "service", "target_session_attrs")
)

_registered: set[str] = set()
_registered_lock = threading.Lock()


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


def register(*values: str | Secret | None) -> None:
    """Every value, and each password in it (URL or DSN), is masked from now on wherever
    text leaves the bot (log lines, Slack payloads, audit records)."""
    found = secret_values(v.reveal() if isinstance(v, Secret) else v for v in values)
    with _registered_lock:
        _registered.update(v for v in found if len(v) >= MIN_SECRET_LENGTH)


def registered() -> frozenset[str]:
    with _registered_lock:
        return frozenset(_registered)


def secret_values(secrets: Iterable[str | None]) -> set[str]:
    """Each value, and for a URL or DSN also its password alone (an error may quote just
    that), both as written and percent-decoded."""
    values: set[str] = set()
    for value in filter(None, secrets):
        values.add(value)
        for password in _passwords_in(value):
            values.update(p for p in (password, unquote(password)) if p)
    return values


def _passwords_in(value: str) -> list[str]:
    if "://" in value:
        try:
            parts = urlsplit(value.strip())
            found = [parts.password or ""]
            found += [v for k, v in parse_qsl(parts.query) if k.lower() in _PASSWORD_KEYS]
            return found
        except ValueError:
            return []
    if "=" in value:
        try:
            params = conninfo_to_dict(value)
        except psycopg.Error:
            return []
        return [str(params.get(k) or "") for k in _PASSWORD_KEYS]
    return []


def redact_url(url: str) -> str:
    """postgresql://user:pw@host/db -> postgresql://user:***@host/db (for display only)."""
    return redact(url)


def scrub(text: str, values: Iterable[str] = (), *, truncated: bool = False) -> str:
    """``text`` with every one of ``values`` and every registered value (longest first)
    masked, then every password-shaped part (``redact``)."""
    return _scrub(text, _longest_first(values), truncated)


def scrub_payload(payload):
    """Every string in a JSON-shaped value (a Slack payload, an audit record's detail)
    scrubbed; keys and structure unchanged."""
    values = _longest_first(())

    def clean(value):
        if isinstance(value, str):
            return _scrub(value, values, False)
        if isinstance(value, dict):
            return {k: clean(v) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return [clean(v) for v in value]
        return value

    return clean(payload)


def _longest_first(values: Iterable[str]) -> list[str]:
    """Each value as written and as ``redact`` leaves it (the scrub masks password shapes
    first, so a registered URL is found again by its redacted form)."""
    found = set(values) | registered()
    found |= {redact(v) for v in found if "://" in v or "assword" in v}
    return sorted((v for v in found if v != MASK), key=len, reverse=True)


def _scrub(text: str, values: list[str], truncated: bool) -> str:
    # Shapes first: a registered value that is part of a URL ("postgresql://x") must not
    # break the URL before its password is found.
    text = redact(text, truncated=truncated)
    for value in values:
        if value in text:
            text = text.replace(value, MASK)
    return text


def redact(text: str, *, truncated: bool = False) -> str:
    """Masks URL userinfo passwords, password query parameters and DSN passwords.
    ``truncated``: the text was cut, so a URL at its very end may have lost its '@'."""
    if "://" in text:
        text = _mask_spans(text, _url_password_spans(text, truncated))
    if "assword" in text.lower():
        text = _mask_spans(text, _query_password_spans(text) + _dsn_password_spans(text))
    return text


def _mask_spans(text: str, spans: list[tuple[int, int]]) -> str:
    if not spans:
        return text
    out, pos = [], 0
    for start, end in sorted(spans):
        if start < pos:  # overlaps the span just masked: widen it
            pos = max(pos, end)
            continue
        out += [text[pos:start], MASK]
        pos = end
    out.append(text[pos:])
    return "".join(out)


# The end of a URL's userinfo: '@'; anything that cannot be in an authority stops the scan.
# RFC 3986: userinfo is unreserved, pct-encoded, sub-delims (!$&'()*+,;=) and ':'.
_AUTHORITY_STOP = re.compile(r"[@/?#\s\"<>`|\\]")


def _url_password_spans(text: str, truncated: bool) -> list[tuple[int, int]]:
    """The password of every ``scheme://user:password@`` (the user may be empty). A text
    cut short inside the userinfo has the rest masked too."""
    spans, pos = [], 0
    while (found := text.find("://", pos)) >= 0:
        start = found + 3
        stop = _AUTHORITY_STOP.search(text, start)
        end = stop.start() if stop else len(text)
        colon = text.find(":", start, end)
        at_end = truncated if stop is None else text[end] == "@"
        if colon >= 0 and at_end and end > colon + 1:
            spans.append((colon + 1, end))
        pos = max(end, start)
    return spans


_QUERY_PASSWORD = re.compile(r"[?&;](?:ssl)?password=", re.IGNORECASE)
_QUERY_VALUE_STOP = re.compile(r"[&#\s\"<>`|]")


def _query_password_spans(text: str) -> list[tuple[int, int]]:
    spans, covered = [], 0
    for match in _QUERY_PASSWORD.finditer(text):
        if match.start() < covered:
            continue  # inside a value already masked: scanning it again would be quadratic
        stop = _QUERY_VALUE_STOP.search(text, match.end())
        covered = stop.start() if stop else len(text)
        if covered > match.end():
            spans.append((match.end(), covered))
    return spans


_DSN_PASSWORD = re.compile(r"\b(?:ssl)?password[ \t]*=[ \t]*", re.IGNORECASE)
# Another keyword counts when written key=value (no space): SQL's "user = 'bob'" does not.
_DSN_KEY = re.compile(r"\b(?:" + "|".join(sorted(_DSN_KEYWORDS)) + r")=\S", re.IGNORECASE)
_WHITESPACE = re.compile(r"\s")
# How far around ``password=`` another libpq keyword is looked for: a DSN is one short line.
_DSN_WINDOW = 300


def _dsn_password_spans(text: str) -> list[tuple[int, int]]:
    """``password=value`` (or ``'quoted value'``, libpq's quoting with backslash escapes)
    where another libpq keyword is near: a keyword/value connection string."""
    spans, covered = [], 0
    keywords = [m.start() for m in _DSN_KEY.finditer(text)]  # one pass, then bisect
    for match in _DSN_PASSWORD.finditer(text):
        if match.start() < covered:
            continue  # inside a value already masked
        nearest = bisect.bisect_left(keywords, match.start() - _DSN_WINDOW)
        if nearest == len(keywords) or keywords[nearest] > match.end() + _DSN_WINDOW:
            continue
        covered = _dsn_value_end(text, match.end())
        if covered > match.end():
            spans.append((match.end(), covered))
    return spans


def _dsn_value_end(text: str, start: int) -> int:
    if text.startswith("'", start):
        pos = start + 1
        while pos < len(text):
            if text[pos] == "\\":
                pos += 2
                continue
            if text[pos] == "'":
                return pos + 1
            pos += 1
        return len(text)
    stop = _WHITESPACE.search(text, start)
    return stop.start() if stop else len(text)


def where(url: Secret | str) -> str:
    """How a database is shown to people: host:port/database, never a URL."""
    raw = url.reveal() if isinstance(url, Secret) else url
    try:
        parts = urlsplit(raw)
        host, port = parts.hostname or "localhost", parts.port
    except ValueError:
        return "(an unparseable database URL)"
    database = parts.path.lstrip("/") or "(default database)"
    return f"{host}{f':{port}' if port else ''}/{database}"
