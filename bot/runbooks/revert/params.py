"""The params of a reverse-migration operation (``RevertPlan.params()`` and the review's
edits), checked at start."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class RevertParams:
    migration: str  # the original, as named in the history
    revert_name: str  # the new migration's directory name
    sql: str  # the migration.sql to write and apply
    sql_sha256: str  # what the approval is bound to
    generated_sha256: str
    rows: list[dict[str, Any]]  # the classification table: class, effect, sql, backup...
    lint: dict[str, Any]
    staging_tested: dict[str, Any] | None  # {"name", "checksum", "finished_at"}
    stamp: str  # the moment the plan was made (names and backups derive from it)
    edited: bool = False  # the SQL was edited in review
    # recorded by the apply step
    applied_statements: int | None = None
