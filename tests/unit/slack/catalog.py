"""The catalog: every message, card, modal and Home tab the bot can produce, each rendered
through its view builder from what real runs returned (tests/unit/slack/real_runs.py).

An entry renders with ``bad`` appended to every string a person or a database wrote (a
reason, SQL, a PostgreSQL error, a migration's statements, a snapshot id...): ``""`` gives the
message as people see it; the injection corpus gives the same message under attack.
tests/unit/slack/test_catalog.py fails when a builder exists that no entry renders.
"""

from __future__ import annotations

import functools
import re
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path

from bot.aws.rds import Instance, RecoveryWindow, RestorePoint, Snapshot
from bot.aws.snapshots import ManualSnapshot
from bot.checklists import CHECKLISTS
from bot.doctor import Check, Section
from bot.errors import UserError
from bot.incident_report import incident_report
from bot.runbooks.pitr.choices import RecoveryChoices
from bot.runbooks.sql import COMMIT_CHOICES
from bot.slack import (
    backup_views,
    check_views,
    doctor_views,
    migration_views,
    pitr_views,
    plan_views,
    retention_views,
    revert_views,
    sql_views,
    views,
)
from bot.slack.cards import RENDERERS, load_renderers, render_card
from bot.slack.values import CheckRef, PlanPage
from bot.sql.manual_plan import DecisionText, decision_text
from bot.store import Store
from bot.store.records import (
    Approval,
    CardKind,
    ChecklistEntry,
    Decision,
    Operation,
    OperationStatus,
    ScheduledJob,
    StepRecord,
    StepStatus,
)
from commands import usage_lines
from tests.unit.slack.engine_runs import REFUSALS, EngineRuns, engine_runs
from tests.unit.slack.real_runs import RealRuns, operation

# The mentions the bot writes itself (the requester, approvers, whoever acted): live on purpose.
PEOPLE = frozenset({"U_ALICE", "U_BOB", "U_CAROL"})
# Keys whose values steer a renderer or are the bot's own (ids, times, enums, Slack ids):
# never quoted from a person or a database.
STRUCTURAL = frozenset(
    {
        "verdict",
        "recommendation",
        "mode",
        "class",
        "kind",
        "compatibility",
        "environment",
        "operation",
        "requester",
        "reviewer",
        "skip_final_snapshot_by",
        "cancelled_by",
        "started_at",
        "finished_at",
        "chosen_point",
        "latest_restorable",
        "earliest_restorable",
        "run_at",
        "sha256",
        "sql_sha256",
        "checksum",
        "card_key",
        "stamp",
        "headline",
        "ok",
        "error_code",
    }
)
NOW = datetime(2026, 11, 26, 10, 0, tzinfo=UTC)
_TIME = re.compile(r"\d{4}-\d\d-\d\dT[\d:.]+(Z|[+-]\d\d:\d\d)?")  # a time the bot wrote


def taint(value, bad: str, keep: frozenset[str] = STRUCTURAL):
    """``value`` with ``bad`` appended to every string in it but the structural ones."""
    if not bad:
        return value
    if isinstance(value, str):
        return value if _TIME.fullmatch(value) else value + bad
    if isinstance(value, dict):
        return {k: v if k in keep else taint(v, bad, keep) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return type(value)(taint(v, bad, keep) for v in value)
    return value


@dataclass(frozen=True)
class Entry:
    name: str
    builder: Callable | str  # the public view builder, or the CardKind rendered
    render: Callable[[RealRuns, str], dict]
    people: frozenset[str] = PEOPLE


def card(kind: CardKind, title: str, data: Callable[[RealRuns], dict], runbook="pitr"):
    """A card as a step publishes it: ``ctx.card(kind, title, data)`` through render_card."""

    def render(real: RealRuns, bad: str) -> dict:
        op = operation(runbook, "production", {}, status="running")
        return render_card(op, kind, title + bad, taint(data(real), bad))

    render.kind = kind
    return render


# --- the data real runs made, shaped as each front end passes it --------------------------


def _steps(real: RealRuns, bad: str) -> list[StepRecord]:
    error = real.deploy_failure + bad
    return [
        StepRecord(
            "op-1",
            0,
            "dry_run",
            "Dry run (rolled back)",
            False,
            True,
            status=StepStatus.SUCCEEDED,
            detail=real.sql_dry_run_result + bad,
        ),
        StepRecord(
            "op-1", 1, "undo", "Undo what took effect", True, False, StepStatus.FAILED, error=error
        ),
        StepRecord(
            "op-1",
            2,
            "todo",
            "Fix the migration file",
            False,
            True,
            status=StepStatus.TODO,
            detail=f"to do for <@U_ALICE>: fix {real.resolve_plan['migration']}{bad}",
        ),
        StepRecord("op-1", 3, "deploy", "Re-run migrations", True, False, StepStatus.RUNNING),
    ]


def _op(real: RealRuns, bad: str, runbook="resolve", params: dict | None = None, **kw) -> Operation:
    reason = real.sql_params["reason"] + bad
    return operation(
        runbook,
        "production",
        params or {},
        summary=f"{views.runbook_name(runbook)}. Reason: {reason}",
        **kw,
    )


def _status_message(runbook: str, status: str):
    def render(real: RealRuns, bad: str) -> dict:
        # As the walker ends a failed operation (bot/engine/walker.py, outcome.py).
        result = (
            f"Step 'Undo what took effect' failed.{bad} Nothing was changed before it."
            if status == "failed"
            else None
        )
        op = _op(real, bad, runbook, status=status, result=result)
        items = [
            ChecklistEntry(op.id, "before", i.id, n, i.title, checked=n == 0)
            for n, i in enumerate(CHECKLISTS["before"].items)
        ]
        progress = {"step_id": "deploy", "done": 1, "total": 3, "message": f"applying{bad}"}
        return views.status_message(op, _steps(real, bad), {"before": items}, progress)

    return render


def _approval(plan: Callable[[RealRuns], str], status="pending", approver_copy=False):
    def render(real: RealRuns, bad: str) -> dict:
        approval = Approval(
            id="apr-1",
            operation_id="op-20261126-abcdef",
            step_id="apply",
            plan_text=plan(real) + bad,
            plan_hash="0" * 64,
            requested_by="U_ALICE",
            requested_at="2026-11-26T10:00:00.000000Z",
            expires_at="2026-11-26T10:30:00.000000Z",
            status=status,
            decided_by=None if status == "pending" else "U_BOB",
            decided_at=None if status == "pending" else "2026-11-26T10:04:00.000000Z",
        )
        return views.approval_request(
            _op(real, bad, "sql"), approval, "<@U_BOB>, <@U_CAROL>", approver_copy=approver_copy
        )

    return render


def _decision(real: RealRuns, bad: str) -> dict:
    """Commit / Roll back as the real run asks it (bot/runbooks/sql.py, _apply): the real
    dry run's counts and verification rows, every quoted string (cells too) tainted."""
    result = taint(real.sql_rows, bad)
    evidence = decision_text("production", result, result["verification_sql"])
    return views.decision_message(_op(real, bad, "sql"), sql_decision(evidence))


def sql_decision(evidence: DecisionText) -> Decision:
    """The pending Commit / Roll back decision option 4 stores for ``evidence``."""
    return Decision(
        id="dec-1",
        operation_id="op-20261126-abcdef",
        step_id="apply",
        prompt=evidence.prompt,
        choices=COMMIT_CHOICES,
        default_choice="rollback",
        asked_at="2026-11-26T10:00:00.000000Z",
        expires_at="2026-11-26T10:30:00.000000Z",
        evidence_table=evidence.table,
    )


def _history(real: RealRuns, bad: str) -> dict:
    ops = [
        _op(
            real,
            bad,
            "sql",
            status="failed",
            result=f"{real.postgres_error}{bad}",
            finished_at="2026-11-26T10:09:00.000000Z",
        ),
        _op(real, bad, "pitr_undo_switch", status="succeeded"),
    ]
    return views.history_message(ops, {ops[0].id: ["U_BOB"]})


def _home(real: RealRuns, bad: str) -> dict:
    active = [_op(real, bad, "resolve", status="waiting_approval")]
    done = [
        _op(
            real,
            bad,
            "sql",
            status="cancelled_after_changes",
            result=f"Stopped{bad}",
            finished_at="2026-11-26T10:09:00.000000Z",
        )
    ]
    return views.home_view(active, done, {active[0].id: ["U_BOB"]})


def _checklist_modal(name: str):
    def render(real: RealRuns, bad: str) -> dict:
        op = _op(real, bad)
        items = [
            ChecklistEntry(op.id, name, i.id, n, i.title, checked=n % 2 == 0)
            for n, i in enumerate(CHECKLISTS[name].items)
        ]
        return views.checklist_modal(op, name, items)

    return render


def _checklist_saved(name: str, ticked: int):
    def render(real: RealRuns, bad: str) -> dict:
        op = _op(real, bad)
        items = [
            ChecklistEntry(op.id, name, i.id, n, i.title, checked=n < ticked)
            for n, i in enumerate(CHECKLISTS[name].items)
        ]
        return views.checklist_saved(op, name, items)

    return render


def _error(index: int):
    def render(real: RealRuns, bad: str) -> dict:
        error = real.errors[index]
        return views.error_message(UserError(error.message + bad, error.hint, code=error.code))

    return render


def _recovery_choices(real: RealRuns, bad: str) -> RecoveryChoices:
    source = Instance(
        id="shop-production" + bad,
        arn="arn:aws:rds:eu-west-1:123456789012:db:shop-production",
        status="available",
        instance_class="db.t3.medium",
        engine="postgres",
        multi_az=True,
        vpc_security_group_ids=("sg-0abc" + bad,),
        subnet_group="shop-private" + bad,
        parameter_group="shop-pg15" + bad,
        tags=(),
        address="shop-production.abc.eu-west-1.rds.amazonaws.com",
        port=5432,
        latest_restorable_time=NOW,
        backup_retention_days=7,
    )
    snaps = [
        Snapshot(
            f"rds:shop-production-2026-11-2{n}" + bad,
            "automated",
            "available",
            NOW.replace(day=20 + n),
            source.id,
        )
        for n in range(1, 6)
    ]
    return RecoveryChoices(
        environment="production",
        source=source,
        snapshots=snaps,
        window=RecoveryWindow(NOW.replace(day=19), NOW, 7),
        suggestion=RestorePoint(NOW, f"5 minutes before {real.resolve_plan['migration']}{bad}"),
        suggested_snapshot=snaps[-1],
        default_target="shop-production-recovery-202611261000",
        reusable_snapshot=replace(snaps[-1], type="manual"),
        now=NOW,
    )


def _revert_plan(real: RealRuns, bad: str) -> dict:
    failed = real.demo_status["failed"][0]
    sql = ";\n".join(failed["undo_sql"]) + ";\n" + bad
    rows = [
        {"class": "data_losing", "effect": s["description"] + bad}
        for s in failed["statements"]
        if s["verdict"] == "applied"
    ]
    return {
        "migration": failed["name"],
        "revert_name": "20261126100000_revert_problematic_migration",
        "stamp": "20261126100000",
        "sql": sql,
        "rows": rows,
        "lint": {
            "findings": [
                {
                    "line": 1,
                    "rule": "ban-drop-column",
                    "message": "Dropping a column may break existing clients." + bad,
                    "help": None,
                }
            ]
        },
        "staging_tested": None,
    }


def _incident_report(real: RealRuns, bad: str) -> dict:
    """The report as /rollback report posts it (commands/report.py), from a real store."""
    store = Store(Path(tempfile.mkdtemp(prefix="catalog-report-")) / "state.db")
    op = _op(real, bad, "resolve", status="running", params=taint(real.resolve_plan, bad))
    steps = [
        StepRecord(op.id, 0, "check", "Check migration status", False, True),
        StepRecord(op.id, 1, "undo", "Undo what took effect", True, False),
    ]
    items = [
        ChecklistEntry(op.id, "before", i.id, n, i.title)
        for n, i in enumerate(CHECKLISTS["before"].items)
    ]
    store.create_operation(op, steps, items)
    store.tick_by_bot(op.id, "before", items[0].item_id, "rollback-bot", f"checked{bad}", NOW)
    store.end_step(op.id, "undo", StepStatus.FAILED, NOW, error=real.postgres_error + bad)
    approval = Approval(
        "apr-1",
        op.id,
        "undo",
        real.resolve_approval + bad,
        "0" * 64,
        "U_ALICE",
        "2026-11-26T10:00:00.000000Z",
        "2026-11-26T10:30:00.000000Z",
    )
    store.add_approval(approval, ScheduledJob("j1", op.id, "approval_expiry", approval.expires_at))
    store.append_audit(op.id, "U_BOB", "approval_denied", f"Denied: {bad or 'not now'}")
    store.finish_operation(
        op.id, OperationStatus.FAILED, f"Failed: {real.postgres_error}{bad}", NOW
    )
    (message,) = views.report_messages(op.id, incident_report(store, op.id))
    return message


@functools.cache
def engine() -> EngineRuns:
    """One real engine run (tests/unit/slack/engine_runs.py), shared by every entry."""
    return engine_runs(Path(tempfile.mkdtemp(prefix="catalog-engine-")))


def _engine_error(index: int):
    def render(real: RealRuns, bad: str) -> dict:
        error = engine().errors[index]
        return views.error_message(
            UserError(error.message + bad, error.hint, code=error.code, people=error.people)
        )

    return render


def _check_cards(real: RealRuns, bad: str) -> list[dict]:
    return taint(real.check_cards, bad)


ENTRIES: list[Entry] = [
    Entry("help", views.help_message, lambda real, bad: views.help_message(usage_lines())),
    *[
        Entry(f"error {n}", views.error_message, _error(n))
        for n in range(7)  # RealRuns.errors: each refusal real input got
    ],
    Entry("info", views.info_message, lambda real, bad: views.info_message("Got it.")),
    # What the engine writes: every line of the incident thread (each way an operation can
    # end), its refusals of late clicks and commands, /rollback takeover's and cancel's replies.
    Entry(
        "thread lines",
        views.timeline_line,
        lambda real, bad: {"text": engine().thread(bad)},  # as incident.py posts it
    ),
    *[Entry(f"error: engine {n}", views.error_message, _engine_error(n)) for n in range(REFUSALS)],
    *[
        Entry(f"command reply {n}", views.info_message, lambda real, bad, n=n: engine().replies[n])
        for n in range(3)
    ],
    *[
        Entry(
            f"status message {runbook} {status}",
            views.status_message,
            _status_message(runbook, status),
        )
        for runbook in ("resolve", "sql", "pitr", "pitr_undo_switch", "deploy", "drill")
        for status in ("running", "failed")
    ],
    Entry(
        "notify",
        views.notify_message,
        lambda real, bad: views.notify_message(_op(real, bad, "pitr"), "C_INCIDENT"),
    ),
    Entry("approval: resolve", views.approval_request, _approval(lambda r: r.resolve_approval)),
    Entry("approval: deploy", views.approval_request, _approval(lambda r: r.deploy_approval)),
    Entry("approval: sql", views.approval_request, _approval(lambda r: r.sql_approval)),
    Entry(
        "approval: sql, approved",
        views.approval_request,
        _approval(lambda r: r.sql_approval, "approved"),
    ),
    Entry(
        "approval: sql, expired",
        views.approval_request,
        _approval(lambda r: r.sql_approval, "expired"),
    ),
    Entry(
        "approval: sql, expired, an approver's DM copy",
        views.approval_request,
        _approval(lambda r: r.sql_approval, "expired", approver_copy=True),
    ),
    Entry("decision", views.decision_message, _decision),
    Entry(
        "checklist prompt",
        views.checklist_prompt,
        lambda real, bad: views.checklist_prompt(
            _op(real, bad), "before", "Complete the before-rollback checklist to go on."
        ),
    ),
    *[Entry(f"checklist {n}", views.checklist_modal, _checklist_modal(n)) for n in CHECKLISTS],
    *[
        Entry(f"checklist saved {n}{suffix}", views.checklist_saved, _checklist_saved(n, ticked))
        for n, ticked, suffix in (("before", 3, ""), ("before", 99, " complete"), ("after", 1, ""))
    ],
    Entry("history", views.history_message, _history),
    Entry("history, empty", views.history_message, lambda real, bad: views.history_message([], {})),
    Entry("home", views.home_view, _home),
    Entry("incident report", incident_report, _incident_report),
    Entry("incident report, as posted", views.report_messages, _incident_report),
    Entry("home, empty", views.home_view, lambda real, bad: views.home_view([], [], {})),
    Entry(
        "status: trigger.dev failed",
        migration_views.status_card,
        lambda real, bad: migration_views.status_card(taint(real.trigger_status, bad)),
    ),
    Entry(
        "status: demo partly applied",
        migration_views.status_card,
        lambda real, bad: migration_views.status_card(taint(real.demo_status, bad)),
    ),
    Entry(
        "deploy loading",
        migration_views.deploy_loading,
        lambda real, bad: migration_views.deploy_loading("production"),
    ),
    Entry(
        "deploy error",
        migration_views.deploy_error,
        lambda real, bad: migration_views.deploy_error(real.errors[3].message + bad),
    ),
    *[
        Entry(
            f"deploy confirm {n}",
            migration_views.deploy_confirm,
            lambda real, bad, n=n: migration_views.deploy_confirm(
                taint(getattr(real, n), bad), True, "INC-42 hotfix" + bad
            ),
        )
        for n in ("deploy_preview", "deploy_preview_repeat", "deploy_preview_failed")
    ],
    Entry(
        "resolve loading",
        migration_views.resolve_loading,
        lambda real, bad: migration_views.resolve_loading("production", "20251208" + bad),
    ),
    Entry(
        "resolve error",
        migration_views.resolve_error,
        lambda real, bad: migration_views.resolve_error(real.errors[3].message + bad),
    ),
    Entry(
        "resolve confirm",
        migration_views.resolve_confirm,
        lambda real, bad: migration_views.resolve_confirm(
            "production", taint(real.resolve_plan, bad), True
        ),
    ),
    Entry(
        "resolve confirm --applied",
        migration_views.resolve_confirm,
        lambda real, bad: migration_views.resolve_confirm(
            "production",
            taint(
                real.resolve_plan
                | {
                    "mode": "applied",
                    "undo_sql": [],
                    "not_applied": ['ADD COLUMN "Invoice"."dueAt"'],
                },
                bad,
            ),
            False,
        ),
    ),
    Entry(
        "pitr loading",
        pitr_views.loading_modal,
        lambda real, bad: pitr_views.loading_modal("production", "shop-production" + bad),
    ),
    Entry(
        "pitr error",
        pitr_views.error_modal,
        lambda real, bad: pitr_views.error_modal(
            "production", UserError(real.errors[3].message + bad, real.errors[3].hint)
        ),
    ),
    Entry(
        "pitr restore",
        pitr_views.restore_modal,
        lambda real, bad: pitr_views.restore_modal(_recovery_choices(real, bad)),
    ),
    Entry(
        "plan modal",
        plan_views.plan_modal,
        lambda real, bad: plan_views.plan_modal(
            real.sql_approval * 40 + bad, "0" * 64, PlanPage("apr-1", 1)
        ),
    ),
    Entry(
        "revert loading",
        revert_views.revert_loading,
        lambda real, bad: revert_views.revert_loading("production", "20251208" + bad),
    ),
    Entry(
        "revert error",
        revert_views.revert_error,
        lambda real, bad: revert_views.revert_error(real.errors[3].message + bad),
    ),
    Entry(
        "revert review",
        revert_views.revert_review,
        lambda real, bad: revert_views.revert_review("production", _revert_plan(real, bad), True),
    ),
    Entry(
        "sql modal",
        sql_views.sql_modal,
        lambda real, bad: sql_views.sql_modal("production", True, ["20251208" + bad]),
    ),
    Entry(
        "check",
        check_views.check_message,
        lambda real, bad: check_views.check_message(
            "production", _check_cards(real, bad), "C_DEPLOYS"
        ),
    ),
    Entry(
        "check, nothing pending",
        check_views.check_message,
        lambda real, bad: check_views.check_message("production", [], "C_DEPLOYS"),
    ),
    Entry(
        "check modal",
        check_views.check_modal,
        lambda real, bad: check_views.check_modal(
            CheckRef("production", real.check_cards[0]["name"] + bad, "0" * 64, "C_DEPLOYS")
        ),
    ),
    Entry(
        "check reviewed",
        check_views.reviewed_message,
        lambda real, bad: check_views.reviewed_message(
            "production",
            _check_cards(real, bad)[0],
            "U_BOB",
            {
                "confirmed": ["staging", "both_schemas"],
                "unconfirmed": ["feature_flags"],
                "note": "Checked with the app" + bad,
            },
        ),
    ),
    Entry(
        "snapshot taken",
        backup_views.snapshot_taken,
        lambda real, bad: backup_views.snapshot_taken(
            "production",
            ManualSnapshot(
                "shop-production-pre-migration" + bad,
                "arn:x",
                "creating",
                None,
                "shop-production",
                {"rollback-bot:retain-until": "2027-02-24"},
            ),
        ),
    ),
    Entry(
        "backups",
        backup_views.backups_card,
        lambda real, bad: backup_views.backups_card(
            [
                {
                    "environment": "production",
                    "verdict": v,
                    "backup_type": "Manual snapshot",
                    "expected": "90 days",
                    "found": f"1 manual snapshot{bad}",
                }
                for v in ("ok", "wrong")
            ],
            "2026-11-26 10:00 UTC",
        ),
    ),
    Entry(
        "doctor",
        doctor_views.doctor_report,
        lambda real, bad: doctor_views.doctor_report(
            [
                Section(
                    "State",
                    (
                        Check(True, "state database writable"),
                        Check(False, real.postgres_error + bad),
                    ),
                ),
            ]
        ),
    ),
    # --- cards, each as its step publishes it ---
    Entry(
        "card: migration status",
        migration_views.status_card,
        card(
            CardKind.MIGRATION_STATUS,
            "Migration status on production",
            lambda r: r.trigger_status,
            "resolve",
        ),
    ),
    Entry(
        "card: resolve next",
        CardKind.RESOLVE_NEXT,
        card(
            CardKind.RESOLVE_NEXT,
            "Next: fix the file",
            lambda r: {
                "path": f"prisma/migrations/{r.resolve_plan['migration']}/migration.sql",
                "environment": "production",
            },
            "resolve",
        ),
    ),
    Entry(
        "card: revert review",
        revert_views.review_card,
        card(
            CardKind.REVERT_REVIEW,
            "Reverse migration reviewed",
            lambda r: {
                **_revert_plan(r, ""),
                "environment": "production",
                "sql_sha256": "ab" * 32,
                "edited": True,
            },
            "revert",
        ),
    ),
    Entry(
        "card: sql dry run",
        sql_views.sql_result_card,
        card(
            CardKind.SQL_DRY_RUN,
            "Dry run on production: rolled back, nothing was changed",
            lambda r: r.sql_counts,
            "sql",
        ),
    ),
    Entry(
        "card: sql before commit",
        sql_views.sql_result_card,
        card(
            CardKind.SQL_BEFORE_COMMIT,
            "Ran on production, not committed yet",
            lambda r: r.sql_counts,
            "sql",
        ),
    ),
    Entry(
        "card: sql rows",
        sql_views.sql_rows_card,
        card(
            CardKind.SQL_ROWS,
            "Dry run on production: its rows, for you only",
            lambda r: r.sql_rows,
            "sql",
        ),
    ),
    Entry(
        "card: pitr recovery point",
        pitr_views.recovery_point_card,
        card(
            CardKind.PITR_RECOVERY_POINT,
            "Recovery point for shop-production",
            lambda r: {
                "source": "shop-production",
                "mode": "snapshot",
                "chosen_point": "2026-11-26T09:55:00Z",
                "snapshot_id": "rds:shop-production-2026-11-26",
                "latest_restorable": "2026-11-26T10:00:00Z",
                "earliest_restorable": "2026-11-19T10:00:00Z",
                "retention_days": 7,
                "snapshots": [
                    [
                        "rds:shop-production-2026-11-26",
                        "automated",
                        "2026-11-26T03:00:00Z",
                        "available",
                    ]
                ],
                "snapshot_count": 1,
            },
        ),
    ),
    Entry(
        "card: pitr verification",
        pitr_views.verification_card,
        card(
            CardKind.PITR_VERIFICATION,
            "Verification: current production vs restored",
            lambda r: {
                "rows": r.verification,
                "target": "shop-production-recovery",
                "environment": "production",
            },
        ),
    ),
    Entry(
        "card: pitr switch",
        pitr_views.switch_card,
        card(
            CardKind.PITR_SWITCH,
            "Traffic switched to shop-production-recovery",
            lambda r: _switch(),
        ),
    ),
    Entry(
        "card: pitr switch undone",
        pitr_views.switch_card,
        card(
            CardKind.PITR_SWITCH,
            "Traffic switch undone",
            lambda r: _switch() | {"undone_by": "op-20261126-fedcba"},
        ),
    ),
    Entry(
        "card: pitr switch notice",
        pitr_views.switch_notice,
        card(
            CardKind.PITR_SWITCH_NOTICE,
            "production: traffic switched",
            lambda r: (
                _switch()
                | {
                    "requester": "U_ALICE",
                    "target": "shop-recovery",
                    "chosen_point": "2026-11-26T09:55:00Z",
                }
            ),
        ),
    ),
    *[
        Entry(
            f"card: pitr cleanup {n}",
            pitr_views.cleanup_card,
            card(
                CardKind.PITR_CLEANUP_SCHEDULED,
                "Old instance scheduled for deletion",
                lambda r, extra=extra: (
                    {
                        "operation": "op-20261126-abcdef",
                        "old_instance": "shop-production",
                        "run_at": "2026-11-29T10:00:00Z",
                        "skip_final_snapshot_by": None,
                        "cancelled": None,
                        "card_key": "k",
                    }
                    | extra
                ),
            ),
        )
        for n, extra in enumerate(
            [
                {},
                {"skip_final_snapshot_by": "U_ALICE"},
                {"cancelled": "cancelled", "cancelled_by": "U_BOB"},
            ]
        )
    ],
    Entry(
        "card: backup retention review",
        retention_views.retention_card,
        card(
            CardKind.RETENTION_REVIEW,
            "Backup retention review: 1 manual snapshot past retention",
            lambda r: _retention(None),
            runbook="backup_retention",
        ),
    ),
    *[
        Entry(
            f"backups --retention reply {n}",
            retention_views.retention_reply,
            lambda real, bad, started=started: retention_views.retention_reply(
                operation("backup_retention", "production", {}, status="running")
                if started
                else None,
                taint(_retention("U_ALICE", with_deletions=started), bad),
            ),
        )
        for n, started in enumerate([False, True])
    ],
]


def _retention(requester: str | None, with_deletions: bool = True) -> dict:
    """retention.card_data: one snapshot past its date, one a person took."""
    old = {
        "id": "shop-production-pre-migration-20260801",
        "instance": "shop-production",
        "created": "2026-08-01T09:00:00Z",
        "arn": "arn:x",
        "status": "available",
        "tags": {"created-by": "rollback-bot", "rollback-bot:retain-until": "2026-10-30"},
        "retain_until": "2026-10-30",
        "reason": "retention ended 2026-10-30 (27 days ago)",
    }
    person = {
        "id": "shop-production-before-upgrade",
        "instance": "shop-production",
        "created": None,
        "reason": "not taken by rollback-bot (no created-by=rollback-bot tags)",
    }
    return {
        "environment": "production",
        "requester": requester,
        "reviewed_at": "2026-11-26T09:00:00Z",
        "to_delete": [old] if with_deletions else [],
        "kept": [person],
    }


def _switch() -> dict:
    return {
        "operation": "op-20261126-abcdef",
        "environment": "production",
        "secret_id": "prod/shop/database",
        "from": "shop-production.abc.rds.amazonaws.com:5432/shop",
        "to": "shop-recovery.abc.rds.amazonaws.com:5432/shop",
        "previous_version": "v-1",
        "version": "v-2",
        "old_instance": "shop-production",
        "card_key": "k",
    }


# Public functions of bot/slack/*views*.py that build no message: they parse what Slack sent
# back, or are pieces a builder above lays out (each is rendered through that builder).
NOT_BUILDERS = {
    views.runbook_name: "a name, used in every builder",
    views.checklist_title: "the checklist modal's title (checklist entries)",
    migration_views.partial_confirmed: "parses the resolve modal's submission",
    pitr_views.form_values: "parses the PITR modal's submission",
    pitr_views.field_errors: "Slack's per-field error texts, cut to 150 characters",
    plan_views.chunks: "pieces of approval_request and plan_modal",
    plan_views.paragraphs: "pieces of approval_request and plan_modal",
    plan_views.code: "pieces of approval_request and plan_modal",
    plan_views.plan_blocks: "pieces of approval_request",
    plan_views.pages: "pieces of plan_modal",
    plan_views.view_plan_button: "pieces of approval_request",
    revert_views.classification_blocks: "pieces of revert_review and the review card",
    revert_views.lint_blocks: "pieces of revert_review and the review card",
    revert_views.submitted_sql: "parses the revert modal's submission",
    sql_views.submitted_values: "parses the SQL modal's submission",
    check_views.card_blocks: "pieces of check_message",
}


def card_kinds_rendered() -> set[str]:
    return {getattr(e.render, "kind", None) for e in ENTRIES} - {None}


def all_renderers() -> dict[str, Callable]:
    load_renderers()
    return dict(RENDERERS)
