"""What people call things: runbooks and how an operation stands, in human words
(docs/messages.md, rule 5). Every front end and the engine's own lines use these, so no
internal id (`pitr_undo_switch`) or enum value (`cancelled_after_changes`) reaches a person.
Free of Slack so the engine may use it (tests/test_architecture.py)."""

from __future__ import annotations

from bot.store.records import OperationStatus

STATUS_WORDS = {
    OperationStatus.RUNNING: "Running",
    OperationStatus.WAITING_CHECKLIST: "Waiting for the before-rollback checklist",
    OperationStatus.WAITING_APPROVAL: "Waiting for approval",
    OperationStatus.SUCCEEDED: "Finished",
    OperationStatus.SUCCEEDED_WITH_DECLINED: "Finished, with steps declined",
    OperationStatus.ROLLED_BACK: "Rolled back on purpose",
    OperationStatus.FAILED: "Failed",
    OperationStatus.CANCELLED: "Cancelled before any change",
    OperationStatus.CANCELLED_AFTER_CHANGES: "Cancelled after changes",
    OperationStatus.STOPPED: "Stopped",
}

# What people call each runbook, never the internal id.
RUNBOOK_NAMES = {
    "drill": "Rollback drill",
    "resolve": "Migration resolve (option 1)",
    "revert": "Reverse migration (option 2)",
    "pitr": "Point-in-time recovery (option 3)",
    "sql": "Manual SQL (option 4)",
    "deploy": "Re-run migrations",
    "pitr_undo_switch": "Undo of the PITR traffic switch",
    "pitr_cleanup": "PITR cleanup",
    "backup_retention": "Backup retention review",
}


def runbook_name(runbook: str) -> str:
    return RUNBOOK_NAMES.get(runbook, runbook.replace("_", " ").capitalize())


def status_words(status: str) -> str:
    """How an operation stands, as the status message's headline says it."""
    return STATUS_WORDS.get(status, status.replace("_", " ").capitalize())
