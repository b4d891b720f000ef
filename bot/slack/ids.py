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


class Callback(StrEnum):
    CHECKLIST = "checklist_submit"
    RESOLVE = "resolve_submit"
    SQL = "sql_submit"


class Block(StrEnum):
    CHECKLIST_ITEMS = "checklist_items"  # suffixed with _0, _1 ... one per 10 options
    SQL_TEXT = "sql_text"
    SQL_VERIFICATION = "sql_verification"
    SQL_REASON = "sql_reason"
