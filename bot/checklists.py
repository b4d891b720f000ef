"""The runbook's checklists, word for word (database-rollback-procedures.md).

"Rollback Checklist" has a before part (7 items) and an after part (5 items); the
"Migration Safety Checklist" has 5 questions. Item ids are stable: the store keeps
ticks by id, and later issues tick some items themselves (``BOT_VERIFIABLE``).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ChecklistItem:
    id: str
    title: str
    description: str

    @property
    def label(self) -> str:
        return f"{self.title} - {self.description}" if self.description else self.title


@dataclass(frozen=True)
class Checklist:
    name: str
    title: str
    intro: str
    items: tuple[ChecklistItem, ...]


BEFORE = Checklist(
    "before",
    "Before rollback",
    "Before performing any rollback:",
    (
        ChecklistItem("backup", "Backup current state", "Take a snapshot before making changes"),
        ChecklistItem("notify", "Notify team", "Alert via Slack #engineering"),
        ChecklistItem(
            "dependencies", "Check dependencies", "Ensure no application code depends on changes"
        ),
        ChecklistItem("staging", "Test in staging", "Verify rollback works in staging first"),
        ChecklistItem(
            "maintenance", "Schedule maintenance window", "If user-facing impact expected"
        ),
        ChecklistItem("verification", "Prepare verification queries", "Know how to verify success"),
        ChecklistItem("document", "Document everything", "Keep record of all actions taken"),
    ),
)

AFTER = Checklist(
    "after",
    "After rollback",
    "After rollback:",
    (
        ChecklistItem("functionality", "Verify application functionality", "Test critical paths"),
        ChecklistItem("error_rates", "Check error rates", "Monitor for new errors"),
        ChecklistItem("incident", "Update incident", "Document resolution"),
        ChecklistItem("rca", "Root cause analysis", "Understand what went wrong"),
        ChecklistItem("procedures", "Update procedures", "Improve for next time"),
    ),
)

MIGRATION_SAFETY = Checklist(
    "safety",
    "Migration safety",
    "Before creating a migration:",
    (
        ChecklistItem("compatible", "Is this change backward compatible?", ""),
        ChecklistItem("both_schemas", "Can the application work with both old and new schema?", ""),
        ChecklistItem("data_migration", "Is there a data migration needed?", ""),
        ChecklistItem("rollback_plan", "What's the rollback plan?", ""),
        ChecklistItem("reversible", "Is this change reversible?", ""),
    ),
)

CHECKLISTS = {c.name: c for c in (BEFORE, AFTER, MIGRATION_SAFETY)}

# Items the bot can verify itself; a runbook step (or the incident log) ticks them with
# Engine.tick_by_bot and they are shown as "ticked by rollback-bot".
BOT_VERIFIABLE = {("before", "backup"), ("before", "notify"), ("before", "document")}
