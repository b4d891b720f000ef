"""/rollback drill: a rehearsal of the procedure that touches no database.

Same gates as a real rollback: the before-checklist, a destructive step behind the
two-person rule (a no-op here), a slow step that reports progress, the after-checklist.
"""

from __future__ import annotations

from dataclasses import dataclass

from bot.engine.model import Runbook, Step, StepContext, StepInterrupted


@dataclass(frozen=True)
class DrillParams:
    """From the config's [drill] table (its defaults: 30 s, 30 updates)."""

    slow_step_seconds: float = 30
    progress_events: int = 30


def _plan_rehearsal(op, env) -> str:
    return (
        f"DRILL (no database is touched)\n"
        f"environment: {env.name}\n"
        f"operation: {op.id}\n"
        f"step: rehearse_destructive_step (no-op)"
    )


def _confirm_environment(ctx: StepContext) -> str:
    return f"drill on {ctx.environment.name}: no database connection is made"


def _rehearse_destructive(ctx: StepContext) -> str:
    return "no-op: a real runbook would change the database here"


def _slow_step(ctx: StepContext) -> str:
    """Waits with ctx.sleep, so a shutdown does not wait for it: the step stays running and
    is rerun at the next start (it is idempotent)."""
    seconds = float(ctx.params.get("slow_step_seconds", 30))
    events = max(1, int(ctx.params.get("progress_events", 30)))
    for n in range(1, events + 1):
        if not ctx.sleep(seconds / events):
            raise StepInterrupted()
        ctx.progress(n, events, f"simulated work {n}/{events}")
    return f"{events} progress updates over {seconds:g}s"


def _verify(ctx: StepContext) -> str:
    return "drill complete: nothing to verify"


DRILL = Runbook(
    name="drill",
    title="rollback drill",
    steps=(
        Step(
            "confirm_environment",
            "Confirm the target environment",
            _confirm_environment,
            idempotent=True,
        ),
        Step(
            "rehearse_destructive_step",
            "Rehearse a destructive step (no-op)",
            _rehearse_destructive,
            destructive=True,
            idempotent=True,
            plan=_plan_rehearsal,
        ),
        Step("slow_step", "Simulated long-running step", _slow_step, idempotent=True),
        Step("verify", "Verify the result", _verify, idempotent=True),
    ),
    checklists=("before", "after"),
    describe=lambda params: "Rehearsal of the rollback procedure. No database is touched.",
    params=DrillParams,
)
