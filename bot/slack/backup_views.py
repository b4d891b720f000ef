"""`/rollback snapshot` and `/rollback backups`: the snapshot taken (with its tags), and the
backup audit against the runbook's "Database Backup Strategy" table, a verdict per row."""

from __future__ import annotations

from bot.aws.snapshots import ManualSnapshot
from bot.slack.blocks import context, cut, escape, fit, header, section
from bot.text import plural

ROW_EMOJI = {
    "ok": ":white_check_mark:",
    "wrong": ":x:",
    "not_checked": ":grey_question:",
    "not_required": ":white_circle:",
}


def _attention(wrong: int) -> str:
    return f"{plural(wrong, 'row')} {'needs' if wrong == 1 else 'need'} attention"


def snapshot_taken(env: str, snapshot: ManualSnapshot) -> dict:
    migrations = snapshot.migrations
    listed = "\n".join(f"• `{escape(n)}`" for n in migrations) or "• none pending"
    more = snapshot.tags.get("rollback-bot:more-migrations")
    if more:
        listed += f"\n• … and {more} more"
    text = (
        f":camera_with_flash: Manual snapshot `{escape(snapshot.id)}` of"
        f" `{escape(snapshot.instance_id)}` ({escape(env)}) requested: {escape(snapshot.status)}."
        f"\nKept until {snapshot.retain_until} (tag `rollback-bot:retain-until`)."
        f"\n*Taken before these pending migrations:*\n{listed}"
    )
    return {
        "text": f"Manual snapshot {escape(snapshot.id)} requested",
        "blocks": [section(cut(text, 3000))],
    }


def backups_card(rows: list[dict], now_text: str) -> dict:
    blocks = [header("Backups against the runbook's Database Backup Strategy")]
    by_env: dict[str, list[dict]] = {}
    for row in rows:
        by_env.setdefault(row["environment"], []).append(row)
    for env, env_rows in by_env.items():
        lines = [
            f"{ROW_EMOJI[r['verdict']]} *{escape(r['backup_type'])}*: expected"
            f" {escape(r['expected'])}; found {escape(r['found'])}"
            for r in env_rows
        ]
        blocks.append(section(cut(f"*{escape(env)}*\n" + "\n".join(lines), 3000)))
    wrong = sum(r["verdict"] == "wrong" for r in rows)
    blocks.append(context(f"Checked {now_text}. {_attention(wrong)}."))
    return {"text": f"Backup audit: {_attention(wrong)}", "blocks": fit(blocks)}
