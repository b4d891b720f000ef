"""The plan an approver of option 4 approves: what changes data first, with the dry run's row
counts and backup tables, then everything else, then the full SQL.

Its text is what the approval's hash binds (bot/engine/model.plan_hash), so it holds the
SQL's own SHA-256 and the dry run's counts: a real run that finds other counts is stopped
and needs a new approval (lead decision: PlanChanged). Sample rows are never in it: the
plan is posted in the incident channel and kept in the audit log.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass

from bot.sql.manual import AnalysedStatement, ManualSql
from bot.text import plural

_PREVIEW = 100  # characters of a statement on its summary line; all of it is below


@dataclass(frozen=True)
class PlanContext:
    environment: str
    operation: str
    reason: str
    after_commit: str  # what happens to Prisma's history after COMMIT


def counts_sha256(counts: list) -> str:
    return hashlib.sha256(json.dumps(counts, sort_keys=True).encode()).hexdigest()


def plan_text(
    manual: ManualSql,
    context: PlanContext,
    dry_run: dict,
    counts: list,
    previous: dict | None = None,
) -> str:
    """``dry_run``: the dry run's result, counts only (RunResult.to_dict(samples=False));
    ``counts``: RunResult.counts(), which the real run must find again; ``previous``: the
    counts an earlier approval was given for, when the real run found others."""
    head = [
        f"MANUAL SQL on {context.environment}, operation {context.operation}: one transaction,"
        " committed only when the requester clicks Commit",
        f"reason: {context.reason}",
        f"sql sha256: {manual.sha256}",
        f"dry-run counts sha256: {counts_sha256(counts)} (a real run with other counts"
        " stops and asks again)",
    ]
    parts = ["\n".join(head)]
    if previous is not None:
        parts.append(_changed(previous, dry_run))
    parts.append(_changes(manual, dry_run))
    parts.append(_others(manual))
    parts.append(
        "\n".join(
            [
                f"verification query: {manual.verification or 'none'}",
                f"after COMMIT: {context.after_commit}",
            ]
        )
    )
    size = f"{len(manual.sql):,} characters, {plural(len(manual.statements), 'statement')}"
    parts.append(f"FULL SQL ({size}):\n{manual.sql}")
    return "\n\n".join(parts)


def _changes(manual: ManualSql, dry_run: dict) -> str:
    statements = {s["index"]: s for s in dry_run.get("statements", [])}
    backups: dict[int, list[dict]] = {}
    for backup in dry_run.get("backups", []):
        backups.setdefault(backup.get("statement"), []).append(backup)
    lines = ["WHAT IT CHANGES (every statement that writes, from the dry run, rolled back):"]
    writers = [s for s in manual.statements if s.effect != "reads"]
    for item in writers:
        index = item.statement.index
        lines.append(_headline(item))
        result = statements.get(index, {})
        for part in result.get("parts", []):
            if part["verb"] != "SELECT":
                lines.append(f"      {part['label']}: {_rows(part['rows'])}")
        for backup in backups.get(index, []):
            lines.append("      " + _backup_line(backup))
    if not writers:
        lines.append("  nothing: every statement only reads")
    return "\n".join(lines)


def _headline(item: AnalysedStatement) -> str:
    s = item.statement
    preview = " ".join(s.text.split())
    if len(preview) > _PREVIEW:
        preview = preview[: _PREVIEW - 1] + "…"
    return f"  statement {s.index + 1}, line {s.line} [{item.effect}: {item.why}]: {preview}"


def _backup_line(backup: dict) -> str:
    what = backup.get("why") or backup["kind"]
    if backup.get("skipped"):
        return f"backup {backup['name']}: not kept ({backup['skipped']})"
    return f"backup {backup['name']} ({what} of {backup['source']}): {_rows(backup['rows'])}"


def _others(manual: ManualSql) -> str:
    readers = [s.statement.index + 1 for s in manual.statements if s.effect == "reads"]
    if not readers:
        return "statements that only read: none"
    return f"statements that only read (SELECT): {len(readers)}: numbers {_ranges(readers)}"


def _ranges(numbers: list[int]) -> str:
    """1, 2, 3, 5 -> "1-3, 5"."""
    spans: list[list[int]] = []
    for n in numbers:
        if spans and spans[-1][1] == n - 1:
            spans[-1][1] = n
        else:
            spans.append([n, n])
    return ", ".join(str(a) if a == b else f"{a}-{b}" for a, b in spans)


def _rows(count: int | None) -> str:
    # A count the dry run did not reach (None) is said so, not "None rows".
    return "no row count" if count is None else plural(count, "row")


def _changed(previous: dict, now: dict) -> str:
    """Old and new counts, statement by statement, for a new approval."""
    lines = ["THE COUNTS CHANGED since the last approval (the real run was rolled back):"]
    before = {s["index"]: s for s in previous.get("statements", [])}
    for statement in now.get("statements", []):
        old = before.get(statement["index"], {})
        old_parts = {p["label"]: p["rows"] for p in old.get("parts", [])}
        for part in statement.get("parts", []):
            was = old_parts.get(part["label"])
            if was != part["rows"]:
                lines.append(
                    f"  statement {statement['index'] + 1}, {part['label']}: approved"
                    f" {_rows(was)}, now {_rows(part['rows'])}"
                )
    old_backups = {b["name"]: b.get("rows") for b in previous.get("backups", [])}
    for backup in now.get("backups", []):
        if old_backups.get(backup["name"]) != backup.get("rows"):
            lines.append(
                f"  backup {backup['name']}: approved {_rows(old_backups.get(backup['name']))}"
                f", now {_rows(backup.get('rows'))}"
            )
    return "\n".join(lines)


@dataclass(frozen=True)
class DecisionText:
    """What the requester decides on (Commit / Roll back). ``prompt``: the question, each
    statement's row count, each backup checked, the verification's row count (mrkdwn
    once escaped). ``table``: the verification query's rows as a fixed-width table ("" when
    none or not shown), for a code block of its own: inside mrkdwn, its fences would be
    broken by the escaping and its cells read as formatting."""

    prompt: str
    table: str = ""


def decision_text(
    environment: str, result: dict, verification: str | None, *, rows: bool = True
) -> DecisionText:
    """The Commit / Roll back question with its evidence. ``result``: RunResult.to_dict().
    ``rows`` False (nobody approved: an unprotected environment): the verification's count
    only, its rows go to the requester alone."""
    lines = [f"Commit or roll back? Ran on {environment}, not committed yet. Row counts:"]
    for statement in result.get("statements", []):
        parts = ", ".join(f"{p['label']}: {_rows(p['rows'])}" for p in statement.get("parts", []))
        counted = parts or (
            "no row count" if statement["rowcount"] is None else _rows(statement["rowcount"])
        )
        lines.append(
            f"  statement {statement['index'] + 1} (line {statement['line']},"
            f" {statement['effect']}): {counted}"
        )
    for backup in result.get("backups", []):
        lines.append("  " + _backup_line(backup) + (", checked" if backup.get("verified") else ""))
    if not verification:
        lines.append("No verification query was given.")
        return DecisionText("\n".join(lines))
    found = result.get("verification") or {}
    lines.append(f"Verification query ({verification}): {_rows(found.get('total', 0))}")
    return DecisionText("\n".join(lines), "\n".join(table_lines(found) if rows else []))


def table_lines(rows: dict, width: Callable[[str], int] = len) -> list[str]:
    """Result rows (``Rows.to_dict()``) as a fixed-width table: header, rule, rows, how many
    more. ``width``: how many characters a value takes on screen (``len``; for text already
    escaped for Slack, what Slack shows of it)."""
    if not rows.get("columns"):
        return []
    # A line break inside a value would start a line of its own, as if it were a row.
    table = [[_one_line(c) for c in r] for r in (rows["columns"], *rows.get("rows", []))]
    widths = [max(width(r[i]) for r in table) for i in range(len(rows["columns"]))]
    out = [
        " | ".join(c + " " * (w - width(c)) for c, w in zip(r, widths, strict=True)).rstrip()
        for r in table
    ]
    out.insert(1, "-+-".join("-" * w for w in widths))
    more = rows.get("total", 0) - len(rows.get("rows", []))
    return out + ([f"({plural(more, 'more row')} not shown)"] if more > 0 else [])


def _one_line(cell: str) -> str:
    return cell.replace("\r", "\\r").replace("\n", "\\n")
