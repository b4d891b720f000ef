"""Migration status card, resolve confirmation modal, and the "re-run migrations" card."""

from __future__ import annotations

from bot.clock import shown_utc
from bot.slack.blocks import (
    actions,
    button,
    context,
    cut,
    divider,
    escape,
    fit,
    header,
    modal,
    plain,
    section,
)
from bot.slack.cards import card_renderer, escaped
from bot.slack.ids import Action, Block, Callback
from bot.slack.values import DeployModal, EnvironmentRef, ResolveModal
from bot.slack.views import runbook_name
from bot.store.records import CardKind
from bot.text import plural

VERDICT_EMOJI = {
    "applied": ":white_check_mark:",
    "not_applied": ":white_circle:",
    "unknown": ":grey_question:",
}
NEXT_STEP_WORDS = {
    "resolve_rolled_back": "Mark it rolled back: `/rollback resolve {name} --env {env}`",
    "undo_then_resolve": "Undo what took effect, then mark it rolled back:"
    " `/rollback resolve {name} --env {env}`",
    "revert": "Write a reverse migration: `/rollback revert {name} --env {env}` (option 2)",
    "pitr": "Point-in-time recovery: `/rollback pitr --env {env}` (option 3)",
}


def status_card(data: dict, title: str | None = None) -> dict:
    """/rollback status's answer: ``data`` (status_card_data) as the runbook step made it,
    escaped here as render_card escapes the card's."""
    return _status_card_blocks(escaped(data), title and escape(title))


def _status_card_blocks(data: dict, title: str | None) -> dict:
    counts = data["counts"]
    # The worst state shown (bot.runbooks.status.headline); cards recorded before it
    # existed carry Prisma's verdict only.
    said, ok = data.get("headline") or (
        data["verdict"].replace("_", " "),
        data["verdict"] == "up_to_date",
    )
    headline = (
        f"{':white_check_mark:' if ok else ':warning:'} Migrations on {data['environment']}: {said}"
    )
    blocks = [
        header(title or f"Migration status: {data['environment']}"),
        section(
            headline,
            fields=[f"*{k.replace('_', ' ').capitalize()}*\n{v}" for k, v in counts.items()],
        ),
    ]
    if data.get("holder"):
        blocks.append(section(_holder_text(data["environment"], data["holder"])))
    if data.get("lock_holder"):
        blocks.append(section(f":lock: Prisma's migration lock is held by {data['lock_holder']}"))
    for failed in data["failed"]:
        blocks += _failed_blocks(failed, data["environment"])
    if data["pending"]:
        more = f"\n... and {data['more_pending']} more" if data["more_pending"] else ""
        blocks.append(
            section("*Pending:*\n" + "\n".join(f"• `{n}`" for n in data["pending"]) + more)
        )
    if data["warnings"]:
        more = f"\n... and {data['more_warnings']} more" if data["more_warnings"] else ""
        blocks.append(
            section(
                "*Warnings (Prisma does not show these):*\n"
                + "\n".join(f":warning: {w}" for w in data["warnings"])
                + more
            )
        )
    if data.get("message"):
        # Prisma's own words, line for line as its CLI prints them.
        blocks.append(context("What `prisma migrate status` would say:"))
        blocks.append(section(f"```{cut(data['message'], 2900)}```"))
    return {"text": headline, "blocks": fit(blocks)}


def _holder_text(env: str, holder: dict) -> str:
    return (
        f":construction: {env} is held by <@{holder['user']}> since"
        f" {shown_utc(holder['since'], 'minutes')}: `{holder['operation']}`"
        f" ({runbook_name(holder['runbook'])}, {holder['status'].replace('_', ' ')})."
        " If they are gone, an approver can"
        f" `/rollback cancel {holder['operation']}` or"
        f' `/rollback takeover {holder["operation"]} --reason "..."`.'
    )


def _failed_blocks(failed: dict, env: str) -> list[dict]:
    name = failed["name"]
    # PostgreSQL's error line is the fact that matters; cards recorded before "error"
    # existed have Prisma's log only.
    error = failed.get("error") or failed["logs"]
    lines = "\n".join(
        f"{VERDICT_EMOJI.get(s['verdict'], '')} {s['description']}"
        for s in failed["statements"][:20]
    )
    blocks = [
        divider(),
        section(
            f":x: *Failed:* `{name}` (started {shown_utc(failed['started_at'])})"
            + (f"\n```{cut(error, 1500)}```" if error else "")
        ),
        section(f"*Diagnosis:* {failed['diagnosis']}" + (f"\n{lines}" if lines else "")),
    ]
    step = failed.get("recommendation")
    if step in NEXT_STEP_WORDS:
        reasons = _reasons(failed["reasons"], failed["diagnosis"])
        blocks.append(
            section(f"*Recommended:* {NEXT_STEP_WORDS[step].format(name=name, env=env)}\n{reasons}")
        )
    return blocks


def _reasons(reasons: list[str], diagnosis: str) -> str:
    """The recommendation's reasons, less the one that repeats the diagnosis shown just
    above ("`x` failed part-way: 2 of 3 statements took effect: ..."): said once."""
    return "\n".join(f"• {r}" for r in reasons if diagnosis not in r)


@card_renderer(CardKind.MIGRATION_STATUS)
def _status_card(op, title: str, data: dict) -> dict:
    return _status_card_blocks(data, title)


@card_renderer(CardKind.RESOLVE_NEXT)
def _resolve_next(op, title: str, data: dict) -> dict:
    text = (
        f":wrench: *Step 4:* fix the migration file or create a new one:\n"
        f"`{data['path']}`\n*Step 5:* when the fixed file is deployed with the app, re-run"
        " migrations."
    )
    return {
        "text": title,
        "blocks": [
            section(text),
            actions(
                "rerun",
                button(
                    "Re-run migrations",
                    Action.RERUN_MIGRATIONS,
                    EnvironmentRef(data["environment"]).encode(),
                    style="primary",
                ),
            ),
        ],
    }


def deploy_loading(env: str) -> dict:
    return _modal(
        [section(f":hourglass_flowing_sand: Reading pending migrations on *{env}*...")],
        title="Re-run migrations",
    )


def deploy_error(message: str) -> dict:
    return _modal([section(f":warning: {escape(message)}")], title="Re-run migrations")


def deploy_confirm(preview: dict, protected: bool, override: str = "") -> dict:
    """What a re-run applies, before anything starts: ``preview`` is
    DeployPreview.params(). A failed migration makes Prisma refuse (no Continue)."""
    p = escaped(preview)
    blocks = _deploy_blocks(p)
    go = bool(p["pending"]) and not p["failed"]
    if go:
        blocks.append(
            context(
                "Next: the before-rollback checklist"
                + (", then a second person approves" if protected else "")
                + ", then `prisma migrate deploy`."
            )
        )
    return modal(
        Callback.DEPLOY,
        "Re-run migrations",
        blocks,
        submit="Continue" if go else None,
        metadata=DeployModal(preview["environment"], override) if go else None,
        close="Cancel" if go else "Close",
    )


def _deploy_blocks(p: dict) -> list[dict]:
    env = p["environment"]
    if p["failed"]:
        name = p["failed"][0]
        return [
            section(
                f":warning: `{name}` is failed on *{env}*: `prisma migrate deploy` applies"
                " nothing until it is resolved (P3009). Nothing was started."
                f"\nResolve it first: `/rollback resolve {name} --env {env}`"
            )
        ]
    if not p["pending"]:
        return [section(f":white_check_mark: Nothing to apply on *{env}*: no pending migration.")]
    listed = "\n".join(f"{n}. `{name}`" for n, name in enumerate(p["pending"], start=1))
    blocks = [
        section(
            f"*Re-run migrations on {env}* applies"
            f" {plural(len(p['pending']), 'migration')}, in this order:\n{listed}"
        )
    ]
    for name, (failed_at, error) in p["repeats"].items():
        blocks.append(
            section(
                f":warning: *`{name}` is the same file that failed* on {shown_utc(failed_at)}"
                f" (same checksum):\n```{cut(error, 1200)}```\nUnless what it depends on changed,"
                " it will fail the same way. Fix the file (or the data it needs) first."
            )
        )
    return blocks


def _modal(
    blocks: list[dict],
    *,
    submit: str | None = None,
    metadata: ResolveModal | None = None,
    title: str = "Resolve migration",
) -> dict:
    return modal(Callback.RESOLVE, title, blocks, submit=submit, metadata=metadata)


def resolve_loading(env: str, name: str) -> dict:
    # ``name`` is what the person typed.
    return _modal([section(f":hourglass_flowing_sand: Checking `{escape(name)}` on *{env}*...")])


def resolve_error(message: str) -> dict:
    return _modal([section(f":warning: {escape(message)}")])


def resolve_confirm(env: str, plan: dict, protected: bool) -> dict:
    """``plan``: ResolvePlan.params(): names, statements and SQL from the migration file
    and the database, escaped before they are laid out."""
    shown = escaped(plan)
    blocks = _confirm_blocks(env, shown, protected)
    return _modal(
        blocks, submit="Continue", metadata=ResolveModal(env, plan["migration"], plan["mode"])
    )


def _confirm_blocks(env: str, plan: dict, protected: bool) -> list[dict]:
    name, mode = plan["migration"], plan["mode"]
    verb = "recorded as applied" if mode == "applied" else "marked rolled back"
    blocks = [
        section(
            f"*{name}* on *{env}* will be {verb}, exactly as"
            f" `prisma migrate resolve --{mode.replace('_', '-')}` writes it."
        ),
        section(f"*Diagnosis:* {plan['diagnosis']}"),
        section(_reasons(plan["reasons"], plan["diagnosis"]) or " "),
    ]
    if plan["undo_sql"]:
        effects = "\n".join(f"• {e}" for e in plan.get("undo_effects") or [])
        sql = "\n".join(f"{s};" for s in plan["undo_sql"])
        blocks.append(
            section(
                "*First, undo what took effect* (one transaction), backups first:\n"
                + cut(effects, 1000)
                + f"\n```{cut(sql, 1700)}```"
            )
        )
    if plan.get("not_applied"):
        never = "\n".join(f"• {s}" for s in plan["not_applied"])
        blocks.append(
            section(
                ":warning: *These statements did not take effect*, yet the migration would be"
                f" recorded as applied:\n{cut(never, 2500)}"
            )
        )
        blocks.append(
            {
                "type": "input",
                "block_id": Block.RESOLVE_CONFIRM_PARTIAL,
                "label": plain("Record it as applied anyway?", 2000),
                "element": {
                    "type": "checkboxes",
                    "action_id": "value",
                    "options": [
                        {
                            "text": plain(
                                "Yes: I checked these statements are not needed, or will"
                                " apply them by hand",
                                75,
                            ),
                            "value": "confirmed",
                        }
                    ],
                },
            }
        )
    blocks.append(
        context(
            "Next: the before-rollback checklist"
            + (", then a second person approves" if protected else "")
            + "."
        )
    )
    return blocks


def partial_confirmed(view: dict) -> bool:
    """Whether the resolve modal's "record it as applied anyway" box was ticked."""
    state = view.get("state", {}).get("values", {})
    picked = state.get(Block.RESOLVE_CONFIRM_PARTIAL, {}).get("value", {})
    return any(o.get("value") == "confirmed" for o in picked.get("selected_options") or [])
