"""The params of option 3's operations, checked at start: what the front end chose
(``choices.restore_params`` + ``choices.pitr_settings``), then what each step records so a
rerun after a restart, a later step and the incident report see it."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class PitrParams:
    source: str  # the RDS instance restored from (the live one)
    target: str  # the new instance
    instance_class: str
    mode: str  # "snapshot" or "time"
    restore_time: str | None  # ISO, for mode "time"
    chosen_point: str
    snapshot_id: str | None  # for mode "snapshot"
    snapshot_created: str | None
    poll_seconds: float
    snapshot_max_age_minutes: float
    statement_timeout: str
    decision_timeout_seconds: float
    # identify recovery point
    source_settings: dict[str, Any] = field(default_factory=dict)
    source_class: str | None = None
    harmful_migration: str | None = None
    harmful_migration_state: str | None = None
    # backup current state: a fresh snapshot unless the requester chose to reuse this one
    backup_reuse_chosen: str | None = None
    backup_snapshot_id: str | None = None
    backup_reused: bool = False
    # restore and wait
    restore_requested_at: str | None = None
    restore_target: str | None = None
    restore_events_reported: int = 0
    restored_address: str | None = None
    restored_port: int | None = None
    # verify
    verification_failed: list[str] = field(default_factory=list)
    # switch traffic
    switch_secret_id: str | None = None
    switch_previous_version: str | None = None
    switch_version: str | None = None
    switch_from: str | None = None  # redacted URLs
    switch_to: str | None = None
    # re-apply safe migrations
    reapply_migrations: list[str] = field(default_factory=list)
    reapply_left_out: list[str] = field(default_factory=list)
    # the chosen ones as analysed (class, effects with row counts, squawk, SQL): the plan
    reapply_analysis: list[dict[str, Any]] = field(default_factory=list)


@dataclass(frozen=True)
class UndoSwitchParams:
    pitr_operation: str
    switch_secret_id: str
    switch_previous_version: str
    switch_version: str
    switch_from: str | None
    switch_to: str | None
    restore_target: str | None
    source: str


@dataclass(frozen=True)
class CleanupParams:
    pitr_operation: str
    old_instance: str
    final_snapshot_id: str | None  # None: deleted without one, explicitly chosen by
    skip_final_snapshot_by: str | None
    switch_secret_id: str
    # the bot's record of the switch: the secret must still be at switch_version
    switch_previous_version: str | None = None
    switch_version: str | None = None
