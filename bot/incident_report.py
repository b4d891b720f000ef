"""The incident report: a Markdown document written from the store alone, so it is the
same whether asked during the incident or a month later.

It is posted in Slack's ``markdown`` block, which renders standard Markdown but no tables
(docs.slack.dev, "Markdown block"): the timeline is a list. Every string a person or a
database wrote (reason, result, errors, plans, notes, audit messages, parameters) goes
through ``bot.slack.blocks.escape`` as in every other message: no mention, link or code
fence can come from it. People the bot names are mentions."""

from __future__ import annotations

import re

from bot.checklists import CHECKLISTS
from bot.clock import shown_utc
from bot.errors import NotFound
from bot.slack.blocks import escape
from bot.store import Store
from bot.store.records import ApprovalStatus
from bot.words import runbook_name, status_words

_SLACK_USER = re.compile(r"[UW][A-Z0-9_]+")


def _who(actor: str) -> str:
    """A Slack user as a mention; the bot, a terminal account or anything else as text."""
    return f"<@{actor}>" if _SLACK_USER.fullmatch(actor) else escape(actor)


def _code(text: str) -> list[str]:
    return ["```", escape(text), "```"]


def incident_report(store: Store, op_id: str) -> str:
    op = store.operation(op_id)
    if op is None:
        raise NotFound(f"There is no operation `{op_id}`.", "See `/rollback history`.")
    lines = [
        f"# Incident report: {runbook_name(op.runbook)} on {op.environment} (`{op.id}`)",
        "",
        f"- **Status:** {status_words(op.status)}"
        + (f": {escape(op.result)}" if op.result else ""),
        f"- **Requested by:** {_who(op.requester)}",
        "- **Approved by:** " + _approvers(store, op_id),
        f"- **Started:** {shown_utc(op.created_at)}",
        f"- **Finished:** {shown_utc(op.finished_at)}",
    ]
    if op.summary:
        lines.append(f"- **Summary:** {escape(op.summary)}")
    lines += ["", "## Steps", "", *_steps(store, op_id)]
    lines += ["", "## Approvals", ""]
    approvals = store.approvals(op_id)
    if not approvals:
        lines.append("- none required")
    for a in approvals:
        decided = (
            f" by {_who(a.decided_by)} at {shown_utc(a.decided_at)}"
            if a.decided_by
            else (f" at {shown_utc(a.decided_at)}" if a.decided_at else "")
        )
        lines.append(
            f"- `{a.id}` for step `{a.step_id}`: **{a.status}**{decided};"
            f" requested by {_who(a.requested_by)} at {shown_utc(a.requested_at)};"
            f" plan hash `{a.plan_hash[:16]}`"
        )
        lines += ["", *_code(a.plan_text), ""]
    lines += ["", "## Checklists", ""]
    for name, checklist in CHECKLISTS.items():
        items = store.checklist(op_id, name)
        if not items:
            continue
        lines.append(f"### {checklist.title}")
        for i in items:
            mark = "x" if i.checked else " "
            by = ""
            if i.checked:
                by = f" ({_who(i.checked_by)}, {shown_utc(i.checked_at)}"
                by += f": {escape(i.note)})" if i.note else ")"
            lines.append(f"- [{mark}] {i.label}{by}")
        lines.append("")
    lines += _identifiers(op.params)
    lines += ["## Timeline (UTC)", ""]
    for e in store.audit(op_id):
        message = escape(" ".join(e.message.split()))
        event = e.event.replace("_", " ")
        lines.append(f"- `{e.at[:10]} {e.at[11:19]}` {_who(e.actor)} {event}: {message}")
    return "\n".join(lines) + "\n"


def _steps(store: Store, op_id: str) -> list[str]:
    lines = []
    for s in store.steps(op_id):
        extra = s.error or s.detail
        extra = f" - {escape(extra)}" if extra else ""
        flag = " (destructive)" if s.destructive else ""
        lines.append(
            f"- **{s.title}**{flag}: {s.status.replace('_', ' ')}, {shown_utc(s.started_at)} to"
            f" {shown_utc(s.finished_at)}{extra}"
        )
    return lines


def _approvers(store: Store, op_id: str) -> str:
    """Every approver of every step, with the step each approved."""
    granted = [
        a for a in store.approvals(op_id) if a.status == ApprovalStatus.APPROVED and a.decided_by
    ]
    if not granted:
        return "nobody (no approval was granted)"
    return "; ".join(f"{_who(a.decided_by)} ({a.step_id})" for a in granted)


def _identifiers(params: dict) -> list[str]:
    """SQL and AWS identifiers the operation worked on, from its parameters."""
    keys = [
        k
        for k in sorted(params)
        if k.endswith(("_sql", "sql", "_id", "_identifier", "_arn", "migration"))
    ]
    if not keys:
        return []
    out = ["## SQL and AWS identifiers", ""]
    for k in keys:
        value = params[k]
        if isinstance(value, list | tuple):  # SQL statements, ids: one a line, not JSON
            value = "\n".join(str(v) for v in value)
        if k.endswith("sql"):
            out += [f"- **{k}:**", "", *_code(str(value))]
        else:  # an id or a name: one line
            out.append(f"- **{k}:** {escape(' '.join(str(value).split()))}")
    return [*out, ""]
