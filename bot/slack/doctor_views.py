"""/rollback doctor's answer: one section per part checked, a line per check."""

from __future__ import annotations

from bot.doctor import Section
from bot.slack.blocks import context, escape, section
from bot.text import plural


def doctor_report(sections: list[Section]) -> dict:
    failed = sum(not c.ok for s in sections for c in s.checks)
    summary = "All checks passed." if not failed else f"{plural(failed, 'check')} failed."
    blocks = [section(f"*rollback-bot doctor*: {summary}")]
    for part in sections:
        lines = "\n".join(
            f"{':white_check_mark:' if c.ok else ':x:'} {escape(c.what)}" for c in part.checks
        )
        blocks.append(section(f"*{part.title}*\n{lines}"))
    blocks.append(context("The same checks from a terminal: `rollback-bot doctor [--env NAME]`."))
    return {"text": f"rollback-bot doctor: {summary}", "blocks": blocks}
