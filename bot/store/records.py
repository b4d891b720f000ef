"""What the state store holds, typed: one dataclass per table row, and every status and kind
as an enum.

The enums are ``StrEnum``s: the store keeps their values as text, and the values are the
words the audit log, the incident report and the tests have always used.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, fields
from enum import StrEnum
from typing import Any


class OperationStatus(StrEnum):
    """How an operation stands, and how it ended: what happened, not just that it stopped."""

    RUNNING = "running"
    WAITING_CHECKLIST = "waiting_checklist"
    WAITING_APPROVAL = "waiting_approval"
    SUCCEEDED = "succeeded"
    # every step ran except optional ones an approver declined ("traffic switched;
    # re-apply declined")
    SUCCEEDED_WITH_DECLINED = "succeeded_with_steps_declined"
    # A step's work rolled back on purpose by a person (option 4's Roll back): nothing
    # changed, and it is not a failure.
    ROLLED_BACK = "rolled_back"
    FAILED = "failed"  # its result says what changed before the failure
    CANCELLED = "cancelled"  # before any change
    CANCELLED_AFTER_CHANGES = "cancelled_after_changes"  # its result names the changes
    STOPPED = "stopped"


# "Active" operations hold their environment's lock; final ones never change again.
ACTIVE_STATES = frozenset(
    {OperationStatus.RUNNING, OperationStatus.WAITING_CHECKLIST, OperationStatus.WAITING_APPROVAL}
)
FINAL_STATES = frozenset(set(OperationStatus) - ACTIVE_STATES)


class StepStatus(StrEnum):
    PENDING = "pending"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    SKIPPED = "skipped"
    ROLLED_BACK = "rolled_back"
    DECLINED = "declined"  # an optional step whose approval was denied: not run
    TODO = "todo"  # the bot's part is done; a person must do what the step says


class ApprovalStatus(StrEnum):
    PENDING = "pending"
    APPROVED = "approved"
    DENIED = "denied"
    EXPIRED = "expired"
    SUPERSEDED = "superseded"


class DecisionStatus(StrEnum):
    PENDING = "pending"
    DECIDED = "decided"
    EXPIRED = "expired"


class EventKind(StrEnum):
    """What happened to an operation: an engine event, and the audit record's ``event``."""

    STARTED = "started"
    RESUMED = "resumed"
    FINISHED = "finished"
    STEP_STARTED = "step_started"
    STEP_SUCCEEDED = "step_succeeded"
    STEP_FAILED = "step_failed"
    STEP_SKIPPED = "step_skipped"
    STEP_RESUMED = "step_resumed"
    STEP_NOTE = "step_note"
    STEP_ROLLED_BACK = "step_rolled_back"
    # The step found its approved plan no longer true (undone; a new approval is needed).
    PLAN_CHANGED = "plan_changed"
    # Output only the requester may see (sample rows before approval): never audited.
    FOR_REQUESTER = "for_requester"
    PROGRESS = "progress"  # not audited: it only moves the live status message
    CARD = "card"
    GATE_WAITING = "gate_waiting"
    APPROVAL_REQUESTED = "approval_requested"
    APPROVAL_GRANTED = "approval_granted"
    APPROVAL_DENIED = "approval_denied"
    APPROVAL_EXPIRED = "approval_expired"
    APPROVAL_SUPERSEDED = "approval_superseded"
    APPROVAL_REFUSED = "approval_refused"
    DECISION_REQUESTED = "decision_requested"
    DECISION_MADE = "decision_made"
    DECISION_EXPIRED = "decision_expired"
    DECISION_REFUSED = "decision_refused"
    CHECKLIST_TICKED = "checklist_ticked"
    CHECKLIST_UNTICKED = "checklist_unticked"
    CHECKLIST_COMPLETED = "checklist_completed"
    AFTER_CHECKLIST_REMINDER = "after_checklist_reminder"
    REQUEST_REFUSED = "request_refused"  # not signed, stale, replayed or not a requester
    REDELIVERY_IGNORED = "redelivery_ignored"  # a Socket Mode envelope already handled
    CLEANUP_STARTED = "cleanup_started"
    CLEANUP_NOT_STARTED = "cleanup_not_started"
    CLEANUP_CANCELLED = "cleanup_cancelled"
    CHECK_REVIEWED = "check_reviewed"  # a person reviewed a migration's check card
    STEP_DECLINED = "step_declined"
    SNAPSHOT_TAKEN = "snapshot_taken"  # a manual pre-migration snapshot was requested
    # the snapshot retention review ran: what it proposed, or why it started nothing
    RETENTION_REVIEWED = "retention_reviewed"
    TAKEN_OVER = "taken_over"  # an approver became the requester, with a reason
    APPROVAL_REMINDER = "approval_reminder"
    BREAK_GLASS_IDENTITY = "break_glass_identity"  # how the CLI established who acted


class JobKind(StrEnum):
    APPROVAL_EXPIRY = "approval_expiry"
    AFTER_CHECKLIST_REMINDER = "after_checklist_reminder"
    PITR_CLEANUP_DUE = "pitr_cleanup_due"
    RETENTION_REVIEW_DUE = "retention_review_due"
    IDLE_TIMEOUT = "idle_timeout"
    APPROVAL_REMINDER = "approval_reminder"
    ARCHIVE_CHANNEL = "archive_channel"


class CardKind(StrEnum):
    """A rich result a step publishes (``ctx.card``); each front end renders it by kind."""

    MIGRATION_STATUS = "migration_status"
    RESOLVE_NEXT = "resolve_next"
    REVERT_REVIEW = "revert_review"
    SQL_DRY_RUN = "sql_dry_run"
    SQL_BEFORE_COMMIT = "sql_before_commit"
    SQL_ROWS = "sql_rows"  # sample rows and the verification result, for the requester
    PITR_RECOVERY_POINT = "pitr_recovery_point"
    PITR_VERIFICATION = "pitr_verification"
    PITR_SWITCH = "pitr_switch"
    PITR_SWITCH_NOTICE = "pitr_switch_notice"
    PITR_CLEANUP_SCHEDULED = "pitr_cleanup_scheduled"
    RETENTION_REVIEW = "retention_review"  # manual snapshots past retention: delete or keep


# --- rows ---------------------------------------------------------------------------------


class _Row:
    """``from_row``: a sqlite row (a dict) as the dataclass: 0/1 as bool, JSON text as data,
    status text as its enum (each class says which columns are which)."""

    _json: tuple[str, ...] = ()
    _enums: dict[str, type[StrEnum]] = {}

    @classmethod
    def from_row(cls, row: dict):
        names = {f.name for f in fields(cls)}  # type: ignore[arg-type]
        values = {k: v for k, v in row.items() if k in names}
        for name in cls._json:
            values[name] = json.loads(values[name] or "{}")
        for name, enum in cls._enums.items():
            values[name] = enum(values[name])
        for f in fields(cls):  # type: ignore[arg-type]
            if f.type == "bool" and f.name in values:
                values[f.name] = bool(values[f.name])
        return cls(**values)


@dataclass(frozen=True)
class Operation(_Row):
    id: str
    runbook: str
    environment: str
    status: OperationStatus
    requester: str
    params: dict[str, Any]
    summary: str
    created_at: str
    updated_at: str
    finished_at: str | None = None
    result: str | None = None
    incident_channel: str | None = None
    status_ts: str | None = None
    notify_channel: str | None = None
    notify_ts: str | None = None
    # Set while a step runs; the walker cancels when that step ends.
    cancel_requested_by: str | None = None
    # Which replica walks it, until when, and the fencing token (bot/store/leases.py).
    lease_owner: str | None = None
    lease_token: int = 0
    lease_expires_at: str | None = None

    _json = ("params",)
    _enums = {"status": OperationStatus}

    @property
    def active(self) -> bool:
        return self.status in ACTIVE_STATES


@dataclass(frozen=True)
class StepRecord(_Row):
    operation_id: str
    position: int
    step_id: str
    title: str
    destructive: bool
    idempotent: bool
    status: StepStatus = StepStatus.PENDING
    started_at: str | None = None
    finished_at: str | None = None
    detail: str = ""
    error: str | None = None
    attempts: int = 0

    _enums = {"status": StepStatus}


@dataclass(frozen=True)
class ChecklistEntry(_Row):
    """One item of an operation's checklist and who ticked it."""

    operation_id: str
    checklist: str
    item_id: str
    position: int
    label: str
    checked: bool = False
    checked_by: str | None = None
    checked_at: str | None = None
    by_bot: bool = False
    note: str | None = None


@dataclass(frozen=True)
class Approval(_Row):
    id: str
    operation_id: str
    step_id: str
    plan_text: str
    plan_hash: str
    requested_by: str
    requested_at: str
    expires_at: str
    status: ApprovalStatus = ApprovalStatus.PENDING
    decided_by: str | None = None
    decided_at: str | None = None
    channel: str | None = None
    message_ts: str | None = None

    _enums = {"status": ApprovalStatus}


@dataclass(frozen=True)
class Decision(_Row):
    """A question only the requester answers mid-step (Commit or Roll back)."""

    id: str
    operation_id: str
    step_id: str
    prompt: str
    choices: dict[str, str]  # value -> label, in the order shown
    default_choice: str
    asked_at: str
    expires_at: str
    status: DecisionStatus = DecisionStatus.PENDING
    choice: str | None = None
    decided_by: str | None = None
    decided_at: str | None = None
    channel: str | None = None
    message_ts: str | None = None
    # Evidence laid out as a fixed-width table (the verification query's result), shown
    # in a code block of its own, never inside the prompt's mrkdwn; "" when there is none.
    evidence_table: str = ""

    _json = ("choices",)
    _enums = {"status": DecisionStatus}


@dataclass(frozen=True)
class AuditRecord(_Row):
    id: int
    operation_id: str | None
    at: str
    actor: str
    event: str  # an EventKind
    step_id: str | None = None
    message: str = ""
    detail: dict[str, Any] = field(default_factory=dict)

    _json = ("detail",)


@dataclass(frozen=True)
class ScheduledJob(_Row):
    id: str
    operation_id: str | None
    kind: str  # a JobKind; text, so a row of an unknown kind is logged, not fatal
    run_at: str
    payload: dict[str, Any] = field(default_factory=dict)
    done_at: str | None = None

    _json = ("payload",)
