"""The params of a resolve operation (``ResolvePlan.params()``), checked at start."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ResolveParams:
    migration: str
    mode: str  # "rolled_back" or "applied"
    diagnosis: str
    reasons: list[str]
    undo_sql: list[str]  # run first, in one transaction: what the failed migration left
