"""Slack views of /rollback sql: the modal that takes the SQL, and the review cards of the
dry run and of the real run before COMMIT. The cards' data comes escaped (render_card):
escaping it again here would show people ``&amp;lt;``."""

from __future__ import annotations

import html

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
from bot.sql.manual_plan import table_lines
from bot.store.records import CardKind, Operation
from bot.text import plural

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
            "label": plain("Also update Prisma migration history", 2000),
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
            "Verification query (one SELECT)",
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

_SECTIONS_MAX = 40  # of a card's 50 blocks


@card_renderer(CardKind.SQL_DRY_RUN)
@card_renderer(CardKind.SQL_BEFORE_COMMIT)
def sql_result_card(op: Operation, title: str, data: dict) -> dict:
    """Counts only (it goes to the incident channel and its data to the audit log): each
    statement's row counts, each backup and its check, how many rows the verification
    query returned. The rows themselves go to the requester alone (sql_rows_card)."""
    lines = [_statement_line(s) for s in data["statements"]]
    lines.append(_backups_text(data["backups"]))
    lines.append(_verification_line(data.get("verification_sql"), data.get("verification")))
    blocks = [
        header(title),
        context(f"Operation `{op.id}` on *{op.environment}* · SQL sha256 `{data['sha256'][:16]}`"),
        *_packed(lines),
    ]
    return {"text": title, "blocks": fit(blocks)}


@card_renderer(CardKind.SQL_ROWS)
def sql_rows_card(op: Operation, title: str, data: dict) -> dict:
    """The sample rows of each statement and the verification query's result: for the
    requester alone (an ephemeral message), never the channel or the audit log."""
    blocks = [header(title), context("Only you can see this. The channel gets the counts.")]
    shown = [s for s in data["statements"] if s.get("sample") and s["sample"]["rows"]]
    for statement in shown[:_SECTIONS_MAX]:
        head = f"*{statement['index'] + 1}.* line {statement['line']}"
        blocks.append(section(f"{head}\n{_table_text(statement['sample'])}"))
    if len(shown) > _SECTIONS_MAX:
        blocks.append(context(f"{len(shown) - _SECTIONS_MAX} more statements' rows not shown."))
    blocks += _verification_blocks(data.get("verification_sql"), data.get("verification"))
    return {"text": title, "blocks": fit(blocks)}


def _statement_line(statement: dict) -> str:
    parts = [p for p in statement.get("parts", []) if p["verb"] != "SELECT"]
    counts = "; ".join(f"{p['label']}: *{_rows(p['rows'])}*" for p in parts)
    if not counts and statement["rowcount"] is not None:
        counts = f"*{_rows(statement['rowcount'])}*"
    sql = " ".join(statement["sql"].split())
    preview = sql if len(sql) <= 120 else sql[:119] + "…"
    head = f"*{statement['index'] + 1}.* line {statement['line']} · _{statement['effect']}_"
    return f"{head} · {counts or 'no row count'}\n`{preview}`"


def _rows(count: int | None) -> str:
    return "no row count" if count is None else plural(int(count), "row")


def _packed(lines: list[str]) -> list[dict]:
    """Lines in as few sections as fit (3,000 characters each), at most _SECTIONS_MAX."""
    sections: list[str] = []
    for line in lines:
        if sections and len(sections[-1]) + len(line) + 1 <= SECTION_TEXT_MAX - 100:
            sections[-1] += "\n" + line
        else:
            sections.append(cut(line, SECTION_TEXT_MAX - 100))
    blocks = [section(text) for text in sections[:_SECTIONS_MAX]]
    if len(sections) > _SECTIONS_MAX:
        blocks.append(context("More statements than a card holds: the plan has every one."))
    return blocks


def _backups_text(backups: list[dict]) -> str:
    if not backups:
        return "*Backup tables:* none (nothing destructive to copy)"
    lines = []
    for b in backups:
        checked = " (checked: exactly what was destroyed)" if b.get("verified") else ""
        what = f", {b['why']}" if b.get("why") else ""
        if b["skipped"]:
            lines.append(f"• `{b['name']}`: not kept, {b['skipped']}{what}")
        else:
            lines.append(f"• `{b['name']}`: {_rows(b['rows'])} from `{b['source']}`{what}{checked}")
    return "*Backup tables:*\n" + "\n".join(lines)


def _verification_line(query: str | None, rows: dict | None) -> str:
    if not query:
        return "_No verification query was given._"
    total = (rows or {}).get("total")
    got = _rows(total) if total is not None else "not run"
    return f"*Verification query* `{cut(query, _STATEMENT_SQL_MAX)}`: {got}"


def _verification_blocks(query: str | None, rows: dict | None) -> list[dict]:
    if not query:
        return [context("No verification query was given.")]
    head = f"*Verification query*\n{_code(cut(query, _STATEMENT_SQL_MAX))}"
    if rows is None:
        return [section(head)]
    return [section(head), section(_table_text(rows) if rows.get("rows") else "_No rows._")]


def _table_text(rows: dict) -> str:
    """Sample rows as a monospace table, cut to fit a section, saying what was left out.
    The values arrive escaped (render_card): aligned by what Slack shows of them."""
    text = "\n".join(table_lines({**rows, "total": len(rows["rows"])}, _shown_width))
    more = rows["total"] - len(rows["rows"])
    note = f"\n_{plural(more, 'more row')} not shown._" if more > 0 else ""
    return _code(cut(text, _CODE_MAX)) + note


def _shown_width(escaped: str) -> int:
    # Slack shows &lt; as <; the zero-width spaces escape() puts between backticks take none.
    return len(html.unescape(escaped).replace("\u200b", ""))


def _code(text: str) -> str:
    # The text arrives escaped (render_card): no run of three backticks is left in it to
    # end the code block early.
    return "```" + text + "```"
