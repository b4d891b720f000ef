"""Runbook option 3, step "Re-apply safe migrations": option 1's status on the restored
instance, the requester chooses which of the migrations after the restore point to deploy
(the harmful one is left out by default), and Prisma's deploy of exactly those, approved.
"""

from __future__ import annotations

import dataclasses
import shutil
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

from bot.database import connect
from bot.engine.model import Step, StepContext
from bot.prisma.deploy import DeployEvent, DeployEventKind, deploy
from bot.prisma.migrations_dir import LOCK_FILE
from bot.runbooks.pitr.reapply_analysis import (
    DATA_LOSING,
    IRREVERSIBLE,
    REVERSIBLE,
    analyse,
    earlier_scripts,
)
from bot.runbooks.pitr.verify import restored_url
from bot.runbooks.status import assess, status_card_data
from bot.settings import Environment
from bot.store.records import CardKind
from bot.text import plural

if TYPE_CHECKING:
    from bot.store.records import Operation


def restored_environment(env: Environment, params: dict) -> Environment:
    """The environment as seen on the restored instance (what the verify step connects
    to), so option 1's status and Prisma's deploy run there and nowhere else."""
    return dataclasses.replace(
        env,
        database_url=restored_url(env, params),
        database_url_env=None,
        database_secret_id=None,
    )


def _choose_migrations(ctx: StepContext) -> str:
    env, p = ctx.environment, ctx.params
    if "reapply_migrations" in p:  # rerun after a restart: the choice stands
        return f"chosen: {', '.join(p['reapply_migrations']) or 'none'}"
    if env.migrations_dir is None:
        ctx.record(reapply_migrations=[], reapply_left_out=[])
        ctx.say(
            f"{env.name} has no migrations_dir in the bot's config: re-apply the migrations"
            " after the restore point with your usual deploy, leaving the harmful one out."
        )
        return "no migrations_dir configured"
    restored = restored_environment(env, p)
    assessment = assess(restored)
    ctx.card(
        CardKind.MIGRATION_STATUS,
        f"Migration status on the restored {p['restore_target']}",
        status_card_data(f"{env.name} (restored {p['restore_target']})", assessment),
    )
    pending = list(assessment.status.pending)
    harmful = p.get("harmful_migration")
    if not pending:
        ctx.record(reapply_migrations=[], reapply_left_out=[], reapply_analysis=[])
        return "no migration after the restore point"
    analysed = _analysed(ctx, restored, assessment.status, harmful)
    # "Safe": reversible by the analysis and not the failed or harmful one. The other choice
    # deploys the data-losing and irreversible ones too, never the failed or harmful one
    # (the recovery undid it; deploying it again is `/rollback deploy`, after a fix).
    others = [a for a in analysed if a["name"] != harmful]
    safe = [a["name"] for a in others if a["class"] == REVERSIBLE]
    everything = [a["name"] for a in others]
    choice = ctx.ask(
        f"Migrations after the restore point, missing on {p['restore_target']} (rows counted"
        " there, before anything is deployed):\n"
        + "\n".join(_listed(a, harmful) for a in analysed)
        + "\nWhich should be deployed? Deploying needs an approval in protected environments.",
        _choices(others, safe, harmful in pending),
        timeout=p.get("decision_timeout_seconds", 300),
        default="none",
    )
    chosen = {"safe": safe, "all": everything, "none": []}[choice]
    left_out = [m for m in pending if m not in chosen]
    ctx.record(
        reapply_migrations=chosen,
        reapply_left_out=left_out,
        reapply_analysis=[a for a in analysed if a["name"] in chosen],
    )
    return f"chosen: {', '.join(chosen) or 'none'}"


def _analysed(ctx: StepContext, restored: Environment, status, harmful: str | None) -> list:
    """Each pending migration classified on the restored database, as if the ones before
    it (but the failed or harmful one) were deployed first."""
    with connect(restored) as conn:
        return [
            analyse(
                conn,
                status,
                name,
                earlier_sql=earlier_scripts(status, name, {harmful}),
                statement_timeout=ctx.config.sql_statement_timeout,
            ).to_dict()
            for name in status.pending
        ]


def _choices(others: list[dict], safe: list[str], failed_left_out: bool) -> dict[str, str]:
    """The buttons, each saying what it deploys. The first is the highlighted one: never
    the choice that deploys data-losing or irreversible migrations."""
    choices = {}
    if safe:
        choices["safe"] = f"Deploy {plural(len(safe), 'reversible migration')}"
    choices["none"] = "Deploy none"
    if len(others) > len(safe):
        kinds = [
            _shown(c) for c in (DATA_LOSING, IRREVERSIBLE) if any(a["class"] == c for a in others)
        ]
        label = f"Deploy {len(others)}, {' and '.join(kinds)} ones too"
        choices["all"] = label + (" (not the failed one)" if failed_left_out else "")
    return choices


def _shown(classification: str) -> str:
    return classification.replace("_", "-")


def _listed(a: dict, harmful: str | None) -> str:
    line = f"• `{a['name']}`: {_shown(a['class'])}"
    if a["name"] == harmful:
        line += " (the failed or harmful one: left out)"
    line += "".join(f"\n    - {e}" for e in a["effects"])
    line += "".join(f"\n    - squawk {f}" for f in a["findings"])
    return line


def plan_reapply(op: Operation, env: Environment) -> str:
    p = op.params
    left_out = p.get("reapply_left_out") or []
    return "\n".join(
        [
            f"RE-APPLY MIGRATIONS on environment {env.name} (operation {op.id})",
            f"database: the restored instance {p.get('restore_target')}"
            f" (host {p.get('restored_address')} port {p.get('restored_port')})",
            "prisma migrate deploy of exactly these migrations, in this order:",
            *(f"  {m}" for m in p.get("reapply_migrations") or []),
            "left out (stay pending; fix or remove them before the next deploy): "
            + (", ".join(left_out) or "none"),
            *_analysis_lines(p.get("reapply_analysis") or []),
        ]
    )


def _analysis_lines(analysed: list[dict]) -> list[str]:
    """Each migration as the approver must see it: its class, what it destroys (rows on
    the restored database), squawk's findings, and its whole SQL."""
    lines: list[str] = []
    if analysed:
        lines += [
            "",
            "each migration's class (reversible / data-losing / irreversible), what it"
            " destroys (counted on the restored database before the deploy), squawk's"
            " findings and its whole SQL:",
        ]
    for a in analysed:
        lines += [
            "",
            f"{a['name']}: {_shown(a['class']).upper()}",
            *(f"  {e}" for e in a["effects"]),
            *(f"  squawk {f}" for f in a["findings"]),
            "  sql:",
            *(f"    {line}" for line in a["sql"].splitlines()),
        ]
    return lines


def _reapply_migrations(ctx: StepContext) -> str:
    env, p = ctx.environment, ctx.params
    chosen = p["reapply_migrations"]

    def on_progress(event: DeployEvent) -> None:
        done = event.index - (event.kind == DeployEventKind.STARTED)
        ctx.progress(done, event.total, f"{event.migration}: {event.kind}")
        if event.kind == DeployEventKind.FAILED:
            ctx.say(f"`{event.migration}` failed: {event.error}")
        elif event.kind == DeployEventKind.SUCCEEDED:
            ctx.say(f"Applied `{event.migration}` ({event.index}/{event.total}).")

    with tempfile.TemporaryDirectory(prefix="pitr-reapply-") as tmp:
        # Prisma deploys every pending migration of a directory; a directory holding only
        # the chosen ones (and the lock file) is how the others are left out.
        only_chosen = _chosen_directory(env.migrations_dir, chosen, Path(tmp))
        with connect(restored_environment(env, p)) as conn:
            result = deploy(conn, only_chosen, on_progress=on_progress)
    left_out = p.get("reapply_left_out") or []
    if left_out:
        ctx.say(
            f"Left out: {', '.join(f'`{m}`' for m in left_out)}. They are still pending:"
            " remove or fix them in the repository, or the next `prisma migrate deploy`"
            " applies them again."
        )
    return f"deployed {len(result.applied)}: {', '.join(result.applied) or 'none'}"


def _chosen_directory(source: Path, names: list[str], into: Path) -> Path:
    for name in names:
        shutil.copytree(source / name, into / name)
    if (source / LOCK_FILE).exists():
        shutil.copy2(source / LOCK_FILE, into / LOCK_FILE)
    return into


CHOOSE_MIGRATIONS = Step(
    "choose_migrations",
    "Re-apply safe migrations: choose",
    _choose_migrations,
    idempotent=True,
)
REAPPLY_MIGRATIONS = Step(
    "reapply_migrations",
    "Re-apply safe migrations: deploy",
    _reapply_migrations,
    destructive=True,
    # A rerun is Prisma's own: applied ones are skipped, a half-applied one is a failed row
    # and deploy refuses it (P3009).
    idempotent=True,
    plan=plan_reapply,
    applies=lambda p: bool(p.get("reapply_migrations")),
    # The recovery stands without it: a denied deploy declines it, the recovery is not
    # "cancelled" after its restore and switch happened.
    optional=True,
)
