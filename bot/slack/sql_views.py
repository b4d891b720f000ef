"""Slack views of /rollback sql: the modal that takes the SQL, and the review cards of the
dry run and of the real run before COMMIT."""

from __future__ import annotations

from bot.slack.blocks import (
    SECTION_TEXT_MAX,
    context,
    cut,
    fit,
    header,
    modal,
    plain,
    section,
)
from bot.slack.cards import card_renderer
from bot.slack.ids import Block, Callback
from bot.slack.values import EnvironmentRef
from bot.sql.manual import SQL_MAX_CHARS
from bot.store.records import CardKind, Operation

# Room kept in a section for the ``` fences and the "more rows" line.
_CODE_MAX = SECTION_TEXT_MAX - 200
_STATEMENT_SQL_MAX = 800


HISTORY_ACTIONS = {
    "rolled_back": "Mark it rolled back (prisma migrate resolve --rolled-back)",
    "remove": "Remove its rows (the runbook's DELETE; it becomes pending again)",
}


def _history_blocks(migrations: list[str]) -> list[dict]:
    """The runbook's "Update Prisma migration history" as a choice, not free SQL. Slack's
    static_select takes at most 100 options: the newest 100 migrations."""
    options = [{"text": plain(n[:75], 75), "value": n} for n in reversed(migrations[-100:])]
    return [
        {
            "type": "input",
            "block_id": Block.SQL_HISTORY,
            "optional": True,
            "label": plain("Also update Prisma migration history (optional)", 2000),
            "element": {
                "type": "static_select",
                "action_id": "value",
                "options": options,
                "placeholder": plain("Migration undone by this SQL", 150),
            },
        },
        {
            "type": "input",
            "block_id": Block.SQL_HISTORY_ACTION,
            "optional": True,
            "label": plain("History update", 2000),
            "element": {
                "type": "radio_buttons",
                "action_id": "value",
                "options": [
                    {"text": plain(label, 75), "value": value}
                    for value, label in HISTORY_ACTIONS.items()
                ],
            },
        },
    ]


def sql_modal(env_name: str, protected: bool, migrations: list[str] | None = None) -> dict:
    who = "a second person approves, then you" if protected else "you"
    blocks = [
        section(
            f"*Manual SQL on {env_name}* (runbook option 4). The bot owns the transaction:"
            " no BEGIN/COMMIT. It dry-runs the SQL and rolls back, backs up what destructive"
            f" statements destroy, and after the before-checklist {who} decide Commit or"
            " Roll back with the verification result in front of you."
        ),
        _input(
            Block.SQL_TEXT,
            "SQL",
            "ALTER TABLE users DROP COLUMN column_to_remove;",
            max_length=SQL_MAX_CHARS,
        ),
        _input(
            Block.SQL_VERIFICATION,
            "Verification query (one SELECT, optional)",
            "SELECT * FROM affected_table LIMIT 10",
            max_length=SQL_MAX_CHARS,
            optional=True,
        ),
        _input(Block.SQL_REASON, "Reason", "Why this rollback, incident link", max_length=500),
    ]
    if migrations:
        blocks += _history_blocks(migrations)
    return modal(
        Callback.SQL,
        "Manual SQL rollback",
        blocks,
        submit="Start dry run",
        metadata=EnvironmentRef(env_name),
    )


def _input(
    block_id: str, label: str, placeholder: str, *, max_length: int, optional: bool = False
) -> dict:
    return {
        "type": "input",
        "block_id": block_id,
        "optional": optional,
        "label": plain(label, 2000),
        "element": {
            "type": "plain_text_input",
            "action_id": "value",
            "multiline": True,
            "max_length": max_length,
            "placeholder": plain(placeholder, 150),
        },
    }


def submitted_values(view: dict) -> dict[str, str]:
    values = view["state"]["values"]
    out = {
        block: (values.get(block, {}).get("value", {}).get("value") or "")
        for block in (Block.SQL_TEXT, Block.SQL_VERIFICATION, Block.SQL_REASON)
    }
    for block in (Block.SQL_HISTORY, Block.SQL_HISTORY_ACTION):
        selected = values.get(block, {}).get("value", {}).get("selected_option") or {}
        out[block] = selected.get("value") or ""
    return out


# --- cards ------------------------------------------------------------------------------


@card_renderer(CardKind.SQL_DRY_RUN)
@card_renderer(CardKind.SQL_BEFORE_COMMIT)
def sql_result_card(op: Operation, title: str, data: dict) -> dict:
    blocks = [
        header(title),
        context(f"Operation `{op.id}` on *{op.environment}* · SQL sha256 `{data['sha256'][:16]}`"),
    ]
    for statement in data["statements"]:
        blocks += _statement_blocks(statement)
    blocks.append(section(_backups_text(data["backups"])))
    blocks += _verification_blocks(data.get("verification_sql"), data.get("verification"))
    if not data.get("committed"):
        blocks.append(context("Locks and changes are held until the transaction ends."))
    return {"text": title, "blocks": fit(blocks)}


def _statement_blocks(statement: dict) -> list[dict]:
    count = statement["rowcount"]
    rows = "" if count is None else f" · *{count} row{'s' if count != 1 else ''}*"
    head = f"*{statement['index'] + 1}.* line {statement['line']} · _{statement['effect']}_{rows}"
    blocks = [section(f"{head}\n{_code(cut(statement['sql'], _STATEMENT_SQL_MAX))}")]
    sample = statement.get("sample")
    if sample and sample["rows"]:
        blocks.append(section(_table_text(sample)))
    return blocks


def _backups_text(backups: list[dict]) -> str:
    if not backups:
        return "*Backup tables:* none (nothing destructive to copy)"
    lines = []
    for b in backups:
        if b["skipped"]:
            lines.append(f"• `{b['name']}`: skipped, {b['skipped']}")
        else:
            lines.append(f"• `{b['name']}`: {b['rows']} row(s) from `{b['source']}`")
    return cut("*Backup tables:*\n" + "\n".join(lines), SECTION_TEXT_MAX)


def _verification_blocks(query: str | None, rows: dict | None) -> list[dict]:
    if not query:
        return [context("No verification query was given.")]
    head = f"*Verification query*\n{_code(cut(query, _STATEMENT_SQL_MAX))}"
    if rows is None:
        return [section(head)]
    return [section(head), section(_table_text(rows) if rows["rows"] else "_No rows._")]


def _table_text(rows: dict) -> str:
    """Sample rows as a monospace table, cut to fit a section, saying what was left out."""
    table = [rows["columns"], *rows["rows"]]
    widths = [max(len(r[i]) for r in table) for i in range(len(rows["columns"]))]
    lines = [" | ".join(cell.ljust(w) for cell, w in zip(r, widths, strict=True)) for r in table]
    lines.insert(1, "-+-".join("-" * w for w in widths))
    text = "\n".join(line.rstrip() for line in lines)
    more = rows["total"] - len(rows["rows"])
    note = f"\n_{more} more row(s) not shown._" if more > 0 else ""
    return _code(cut(text, _CODE_MAX)) + note


def _code(text: str) -> str:
    # A ``` inside would end Slack's code block early.
    return "```" + text.replace("```", "` ` `") + "```"
