"""How an operation ended, said as what happened: the end state and the result line that
history, the incident report, App Home and the thread show.

A PITR whose restore and traffic switch happened once ended "Cancelled" because its last,
optional step was denied. Now the end state is derived from the steps as recorded: changes
are the destructive steps that succeeded; an optional step whose approval was denied is
declined, not a cancellation; a cancel or a failure names what changed before it.
"""

from __future__ import annotations

from bot.store.records import OperationStatus, StepRecord, StepStatus

# End states after which something in the environment changed: the after-rollback
# checklist is for them (not "rolled back on purpose": its step undid what it did).
CHANGED_STATES = frozenset(
    {
        OperationStatus.SUCCEEDED,
        OperationStatus.SUCCEEDED_WITH_DECLINED,
        OperationStatus.FAILED,
        OperationStatus.CANCELLED_AFTER_CHANGES,
    }
)


def changes(steps: list[StepRecord]) -> list[str]:
    """The titles of the steps that changed something: destructive ones that succeeded."""
    return [s.title for s in steps if s.destructive and s.status == StepStatus.SUCCEEDED]


def outcome(
    steps: list[StepRecord], status: OperationStatus, message: str
) -> tuple[OperationStatus, str]:
    changed = changes(steps)
    declined = [s.title for s in steps if s.status == StepStatus.DECLINED]
    todo = [s.title for s in steps if s.status == StepStatus.TODO]
    done = "; ".join(f"{t}: done" for t in changed)
    if status == OperationStatus.SUCCEEDED and declined:
        said = "; ".join([*([done] if done else []), *(f"{t}: declined" for t in declined)])
        return OperationStatus.SUCCEEDED_WITH_DECLINED, f"{said}."
    if status == OperationStatus.SUCCEEDED and todo:
        return status, "The bot's steps are done; left for a person: " + "; ".join(todo) + "."
    if status == OperationStatus.CANCELLED:
        if changed:
            return (
                OperationStatus.CANCELLED_AFTER_CHANGES,
                f"{message} Changed before the cancel: " + "; ".join(changed) + ".",
            )
        return status, f"{message} Nothing was changed."
    if status == OperationStatus.FAILED:
        if changed:
            return status, f"{message} Changed before the failure: " + "; ".join(changed) + "."
        return status, f"{message} Nothing was changed before it."
    return status, message
