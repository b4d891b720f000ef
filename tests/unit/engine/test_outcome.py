"""Operation end states that say what happened (bot/engine/outcome.py), from the steps as
the store records them."""

from __future__ import annotations

from bot.engine.outcome import CHANGED_STATES, outcome
from bot.store.records import OperationStatus as Op
from bot.store.records import StepRecord
from bot.store.records import StepStatus as S


def step(step_id: str, status: S, destructive: bool = False, title: str | None = None):
    return StepRecord("op", 0, step_id, title or step_id, destructive, False, status)


RESTORE = step("restore", S.SUCCEEDED, True, "Restore to a new RDS instance")
SWITCH = step("switch", S.SUCCEEDED, True, "Switch traffic")
CHECK = step("check", S.SUCCEEDED)


def test_all_steps_done_is_succeeded_as_said():
    assert outcome([CHECK, RESTORE], Op.SUCCEEDED, "All steps succeeded.") == (
        Op.SUCCEEDED,
        "All steps succeeded.",
    )


def test_a_declined_optional_step_is_not_a_cancel():
    reapply = step("reapply", S.DECLINED, True, "Re-apply migrations")
    status, said = outcome([RESTORE, SWITCH, reapply], Op.SUCCEEDED, "All steps succeeded.")
    assert status == Op.SUCCEEDED_WITH_DECLINED
    assert said == (
        "Restore to a new RDS instance: done; Switch traffic: done; Re-apply migrations: declined."
    )


def test_a_cancel_says_whether_anything_changed():
    pending = step("switch", S.PENDING, True)
    assert outcome([CHECK, pending], Op.CANCELLED, "Approval denied.") == (
        Op.CANCELLED,
        "Approval denied. Nothing was changed.",
    )
    assert outcome([RESTORE, pending], Op.CANCELLED, "Approval denied.") == (
        Op.CANCELLED_AFTER_CHANGES,
        "Approval denied. Changed before the cancel: Restore to a new RDS instance.",
    )


def test_a_failure_says_what_changed_before_it():
    failed = step("verify", S.FAILED)
    assert outcome([RESTORE, failed], Op.FAILED, "Step 'verify' failed.")[1] == (
        "Step 'verify' failed. Changed before the failure: Restore to a new RDS instance."
    )
    assert outcome([CHECK, failed], Op.FAILED, "Step 'verify' failed.")[1] == (
        "Step 'verify' failed. Nothing was changed before it."
    )


def test_a_to_do_is_named_not_called_done():
    todo = step("next", S.TODO, title="Fix the migration file, then re-run migrations")
    status, said = outcome([CHECK, todo], Op.SUCCEEDED, "All steps succeeded.")
    assert status == Op.SUCCEEDED and "left for a person: Fix the migration file" in said


def test_stopped_and_rolled_back_pass_through_and_changes_get_the_after_checklist():
    assert outcome([RESTORE], Op.STOPPED, "x") == (Op.STOPPED, "x")
    assert outcome([RESTORE], Op.ROLLED_BACK, "y") == (Op.ROLLED_BACK, "y")
    assert Op.CANCELLED_AFTER_CHANGES in CHANGED_STATES and Op.CANCELLED not in CHANGED_STATES
    assert Op.ROLLED_BACK not in CHANGED_STATES
