"""Every action_id and callback_id in one place (Dispatch does the same with enums)."""

from enum import StrEnum


class Action(StrEnum):
    APPROVE = "approval_approve"
    DENY = "approval_deny"
    REQUEST_AGAIN = "approval_request_again"
    OPEN_CHECKLIST = "checklist_open"
    CANCEL = "operation_cancel"
    DECIDE = "decision_choose"  # suffixed with _<choice>
    RERUN_MIGRATIONS = "migrations_rerun"
    PITR_UNDO_SWITCH = "pitr_undo_switch"
    PITR_CLEANUP = "pitr_cleanup"
    PITR_CLEANUP_CANCEL = "pitr_cleanup_cancel"
    PITR_CLEANUP_FINAL_SNAPSHOT = "pitr_cleanup_final_snapshot"  # value: {"op", "skip"}
    CHECK_REVIEW = "check_review"  # value: CheckRef
    VIEW_PLAN = "approval_view_plan"  # value: PlanPage; opens the whole plan
    PLAN_PAGE = "approval_plan_page"  # suffixed with _previous / _next; value: PlanPage


class Callback(StrEnum):
    CHECKLIST = "checklist_submit"
    RESOLVE = "resolve_submit"
    PITR = "pitr_submit"
    SQL = "sql_submit"
    REVERT = "revert_submit"
    DEPLOY = "deploy_submit"
    CHECK = "check_submit"
    PLAN = "approval_plan"  # the whole plan, read-only
    CHECKLIST_SAVED = "checklist_saved"  # what a save kept, read-only


class Block(StrEnum):
    CHECKLIST_ITEMS = "checklist_items"  # suffixed with _0, _1 ... one per 10 options
    PITR_MODE = "pitr_mode"
    PITR_DATE = "pitr_date"
    PITR_TIME = "pitr_time"
    PITR_TARGET = "pitr_target"
    PITR_CLASS = "pitr_instance_class"
    PITR_BACKUP = "pitr_backup"
    RESOLVE_CONFIRM_PARTIAL = "resolve_confirm_partial"
    SQL_TEXT = "sql_text"
    SQL_VERIFICATION = "sql_verification"
    SQL_REASON = "sql_reason"
    REVERT_SQL = "revert_sql"
    SQL_HISTORY = "sql_history_migration"
    SQL_HISTORY_ACTION = "sql_history_action"
    CHECK_CONFIRMED = "check_confirmed"
    CHECK_NOTE = "check_note"
