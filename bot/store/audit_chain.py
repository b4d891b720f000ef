"""The audit log's hash chain: each record carries ``chain``, the SHA-256 of the previous
record's ``chain`` and its own columns. A record edited, removed or inserted after the fact
(by hand, with the append-only triggers dropped) breaks the chain from that record on;
``rollback-bot state check`` recomputes it. It shows tampering by someone who did not also
recompute every later hash: an integrity check, not a signature.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from dataclasses import dataclass

# The columns a link covers, in this order (id is left out: the chain itself fixes the order).
CHAINED = ("operation_id", "at", "actor", "event", "step_id", "message", "detail")
GENESIS = ""


def link(previous: str, row: dict) -> str:
    body = json.dumps([row[name] for name in CHAINED], ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(f"{previous}\n{body}".encode()).hexdigest()


@dataclass(frozen=True)
class Break:
    audit_id: int
    reason: str


def first_break(rows: Iterable[dict]) -> Break | None:
    """The first record (by id) whose ``chain`` is not what the records before it give."""
    previous = GENESIS
    for row in rows:
        expected = link(previous, row)
        if row["chain"] != expected:
            reason = "has no chain value" if row["chain"] is None else "does not match its chain"
            return Break(row["id"], reason)
        previous = expected
    return None
