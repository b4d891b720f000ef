"""The params of a resolve operation (``ResolvePlan.params()``), checked at start."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class ResolveParams:
    migration: str
    mode: str  # "rolled_back" or "applied"
    diagnosis: str
    reasons: list[str]
    undo_sql: list[str]  # run first, in one transaction: what the failed migration left
    # what the undo does (drops with row counts, the backup tables it copies them to first)
    undo_effects: list[str] = field(default_factory=list)
    backup_stamp: str | None = None
    # --applied: statements of the failed migration that did not take effect (confirmed)
    not_applied: list[str] = field(default_factory=list)
