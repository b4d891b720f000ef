"""Slack views of /rollback revert: the review modal (editable SQL, classification table,
impact, lint findings) and the review card in the incident thread."""

from __future__ import annotations

from bot.clock import shown_utc
from bot.runbooks.revert.review import SQL_MAX_CHARS
from bot.slack.blocks import (
    SECTION_TEXT_MAX,
    code_block,
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
from bot.slack.ids import Block, Callback
from bot.slack.values import RevertModal
from bot.store.records import CardKind, Operation

CLASS_LABELS = {
    "reversible": ":large_green_circle: reversible",
    "data_losing": ":large_orange_circle: data-losing",
    "irreversible": ":red_circle: irreversible",
}
_LINT_SHOWN = 12


def _modal(blocks: list[dict], *, submit: str | None = None, metadata: RevertModal | None = None):
    return modal(Callback.REVERT, "Reverse migration", blocks, submit=submit, metadata=metadata)


def revert_loading(env: str, name: str) -> dict:
    return _modal(
        [section(f":hourglass_flowing_sand: Writing the reverse of `{escape(name)}` on *{env}*...")]
    )


def revert_error(message: str) -> dict:
    return _modal([section(f":warning: {cut(escape(message), SECTION_TEXT_MAX - 20)}")])


def revert_review(env: str, plan: dict, protected: bool) -> dict:
    """The review modal; ``plan`` is RevertPlan.params(). What it shows is escaped; the
    editable SQL goes into a plain-text input as it is (it is submitted and parsed again)."""
    sql, plan = plan["sql"], escaped(plan)
    blocks = [
        section(
            f"Reverse of *{plan['migration']}* on *{env}*, written as the new Prisma migration"
            f" `{plan['revert_name']}` and applied as `prisma migrate deploy` would."
        ),
        *_staging_blocks(plan, protected),
        *classification_blocks(plan["rows"]),
        *lint_blocks(plan["lint"]),
        divider(),
        _sql_block(sql, editable=not plan.get("staging_tested")),
        context(
            "Next: the before-rollback checklist"
            + (", then a second person approves" if protected else "")
            + ", then the apply in one transaction."
        ),
    ]
    # The submission plans again from these (same moment: same names); the SQL itself
    # comes from the input, or from that plan when it was shown read-only.
    metadata = RevertModal(env, plan["migration"], plan["stamp"])
    return _modal(blocks, submit="Continue", metadata=metadata)


def _staging_blocks(plan: dict, protected: bool) -> list[dict]:
    tested = plan.get("staging_tested")
    if tested:
        return [
            context(
                f":white_check_mark: Tested on staging: `{tested['name']}` applied at"
                f" {shown_utc(tested['finished_at'])}. Only that exact SQL can"
                " run here."
            )
        ]
    if protected:
        return [context(":test_tube: This run on a protected environment is the staging test.")]
    return []


def classification_blocks(rows: list[dict]) -> list[dict]:
    lines = [
        f"{i}. {CLASS_LABELS.get(r['class'], r['class'])}: {r['effect']}"
        for i, r in enumerate(rows, start=1)
    ]
    text = "*What it does* (last change first):\n" + ("\n".join(lines) or "nothing")
    return [section(cut(text, SECTION_TEXT_MAX))]


def lint_blocks(lint: dict) -> list[dict]:
    if lint.get("unavailable"):
        return [context(f":grey_question: Not linted: {lint['unavailable']}.")]
    findings = lint.get("findings", [])
    if not findings:
        return [context(":white_check_mark: squawk found nothing to flag.")]
    lines = [
        f"• line {f['line']}: `{f['rule']}`: {f['message']}"
        + (f" _{f['help']}_" if f.get("help") else "")
        for f in findings[:_LINT_SHOWN]
    ]
    more = len(findings) - _LINT_SHOWN
    if more > 0:
        lines.append(f"... and {more} more")
    return [section(cut("*squawk lint findings:*\n" + "\n".join(lines), SECTION_TEXT_MAX))]


def _sql_block(sql: str, *, editable: bool) -> dict:
    """``sql`` as written: escaped where shown in mrkdwn, as is in the input."""
    if not editable or len(sql) > SQL_MAX_CHARS:
        why = (
            "the SQL tested on staging, not editable here"
            if not editable
            else f"longer than Slack's {SQL_MAX_CHARS}-character field: applied as generated"
        )
        return section(cut(f"*migration.sql* ({why}):\n{code_block(sql)}", SECTION_TEXT_MAX))
    return {
        "type": "input",
        "block_id": Block.REVERT_SQL,
        "label": plain("migration.sql (edit if needed; it is parsed again on submit)", 2000),
        "element": {
            "type": "plain_text_input",
            "action_id": "value",
            "multiline": True,
            "max_length": SQL_MAX_CHARS,
            "initial_value": sql,
        },
    }


def submitted_sql(view: dict) -> str | None:
    """The edited SQL, or None when the modal showed it read-only."""
    block = view["state"]["values"].get(Block.REVERT_SQL)
    if block is None:
        return None
    return block.get("value", {}).get("value") or ""


# --- the review card in the incident thread ---------------------------------------------


@card_renderer(CardKind.REVERT_REVIEW)
def review_card(op: Operation, title: str, data: dict) -> dict:
    blocks = [
        header(title),
        context(
            f"Operation `{op.id}` on *{data['environment']}* · original `{data['migration']}`"
            f" · sha256 `{data['sql_sha256'][:16]}`"
            + (" · SQL edited in review" if data.get("edited") else "")
        ),
        *classification_blocks(data["rows"]),
        *lint_blocks(data["lint"]),
        section(cut(f"```{data['sql']}```", SECTION_TEXT_MAX)),
    ]
    return {"text": title, "blocks": fit(blocks)}
