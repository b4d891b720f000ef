"""`rollback-bot check`'s output: plain text for a terminal, Markdown made for a pull-request
comment, JSON for other tools. Each migration answers the runbook's Migration Safety
Checklist in its own words (bot.checklists.MIGRATION_SAFETY), in its order."""

from __future__ import annotations

import json
import re
from collections.abc import Sequence

from bot.checklists import MIGRATION_SAFETY
from bot.prevention.compatibility import Compatibility
from bot.prevention.review import MigrationReview, Verdict
from bot.text import plural

QUESTIONS = {item.id: item.title for item in MIGRATION_SAFETY.items}
VERDICT_WORDS = {
    Verdict.PASS: "passes",
    Verdict.ACKNOWLEDGED: "destroys data or cannot be undone: acknowledged in the file",
    Verdict.BLOCKED: "destroys data or cannot be undone: not acknowledged",
    Verdict.ERROR: "cannot be reviewed",
}
VERDICT_MARK = {
    Verdict.PASS: "✅",
    Verdict.ACKNOWLEDGED: "⚠️",
    Verdict.BLOCKED: "❌",
    Verdict.ERROR: "❌",
}
COMPATIBILITY_WORDS = {
    Compatibility.COMPATIBLE: "Yes",
    Compatibility.CONDITIONAL: "Only if the old code's writes fit",
    Compatibility.BREAKING: "No",
}
REVERSIBLE_WORDS = {
    "reversible": "Yes: reversible",
    "data_losing": "No: data-losing",
    "irreversible": "No: irreversible",
}


def answers(review: MigrationReview) -> list[tuple[str, list[str]]]:
    """(question, answer lines) in the checklist's order; shared by every format."""
    if review.error is not None:
        return [("Review", [f"cannot be reviewed: {review.error}"])]
    breaking = [
        (s.line, f)
        for s in review.statements
        for f in s.findings
        if f.compatibility != Compatibility.COMPATIBLE
    ]
    compatible = [COMPATIBILITY_WORDS[review.compatibility]] + [
        f"line {line}: {f.change.description}: {f.why} ({f.compatibility})" for line, f in breaking
    ]
    advice = list(dict.fromkeys(f.advice for _, f in breaking if f.advice))
    both = ["Yes: every change is additive"] if not breaking else advice
    data = list(review.data_migration) or ["No: the file changes no data and needs no backfill"]
    plan = _plan_lines(review)
    rev = review.reversibility
    reversible = [REVERSIBLE_WORDS[str(rev.classification)]] + [r.text for r in rev.reasons]
    return [
        (QUESTIONS["compatible"], compatible),
        (QUESTIONS["both_schemas"], both),
        (QUESTIONS["data_migration"], data),
        (QUESTIONS["rollback_plan"], plan),
        (QUESTIONS["reversible"], reversible),
    ]


def _plan_lines(review: MigrationReview) -> list[str]:
    plan = review.reverse
    if plan is None or not plan.steps:
        return ["Nothing to undo: the file changes no schema"]
    lines = []
    for step in plan.steps:
        effect = step.effect
        if step.drops_data and step.contents is not None and step.contents.rows == 0:
            # What the migration creates is empty before the deploy (review._Before).
            effect = (
                f"undoes {step.undoes.description} (a rollback after the deploy loses what"
                " was written to it since)"
            )
        lines.append(f"{step.classification}: {effect}")
    return lines


def lock_lines(review: MigrationReview) -> list[str]:
    lines = []
    for statement in review.statements:
        for lock in statement.locks:
            size = f" ({lock.size.describe()})" if lock.size else ""
            work = f"; {lock.lock.work}" if lock.lock.work else ""
            note = f"; {lock.lock.note}" if lock.lock.note else ""
            lines.append(
                f"line {statement.line}: {lock.lock.mode} on {lock.shown_table}{size}:"
                f" {lock.lock.mode.blocks}{work}{note}"
            )
    return lines


def lint_lines(review: MigrationReview) -> list[str]:
    if review.lint.unavailable:
        return [f"squawk did not run: {review.lint.unavailable}"]
    return [f"line {f.line}: {f.rule} ({f.level}): {f.message}" for f in review.lint.findings]


def acknowledgement_lines(review: MigrationReview) -> list[str]:
    lines = [f'line {a.line}: allow {a.what} "{a.reason}"' for a in review.acknowledged.found]
    lines += list(review.acknowledged.problems)
    needed = review.needed_acknowledgement
    if review.verdict == Verdict.BLOCKED and needed is not None:
        lines.append(
            f'To deploy it anyway, add the line `-- rollback-bot: allow {needed} "<why>"`'
            " to the migration file."
        )
    return lines


# --- text ------------------------------------------------------------------------------


def text_report(reviews: Sequence[MigrationReview]) -> str:
    if not reviews:
        return "No pending migrations: nothing to check.\n"
    out = []
    for review in reviews:
        out.append(f"{review.name}: {VERDICT_WORDS[review.verdict]}")
        for question, lines in answers(review):
            out.append(f"  {question}")
            out += [f"    {line}" for line in lines]
        for title, lines in _extras(review):
            out.append(f"  {title}")
            out += [f"    {line}" for line in lines]
        if review.reverse is not None and review.reverse.sql:
            out.append("  Reverse SQL:")
            out += [f"    {line}" for line in review.reverse.sql.splitlines()]
        out.append("")
    out.append(_summary(reviews))
    return "\n".join(out) + "\n"


def _extras(review: MigrationReview) -> list[tuple[str, list[str]]]:
    if review.error is not None:
        return []
    extras = [("Locks", lock_lines(review) or ["none on existing tables"])]
    extras.append(("squawk", lint_lines(review) or ["no findings"]))
    acks = acknowledgement_lines(review)
    if acks:
        extras.append(("Acknowledgements", acks))
    if not review.live:
        extras.append(("Note", ["no database: rows and table sizes were not counted"]))
    return extras


def _summary(reviews: Sequence[MigrationReview]) -> str:
    failing = [r.name for r in reviews if r.fails_ci]
    if not failing:
        return f"{plural(len(reviews), 'migration')} checked: all pass."
    return f"{plural(len(reviews), 'migration')} checked; failing: {', '.join(failing)}."


# --- Markdown --------------------------------------------------------------------------


def markdown_report(reviews: Sequence[MigrationReview]) -> str:
    """A pull-request comment: a summary table, then one collapsible section each."""
    out = ["## rollback-bot check: Migration Safety Checklist", ""]
    if not reviews:
        return "\n".join(out + ["No pending migrations: nothing to check.", ""])
    out += ["| Migration | Backward compatible? | Reversible? | Verdict |", "|---|---|---|---|"]
    for r in reviews:
        compat = COMPATIBILITY_WORDS[r.compatibility] if r.error is None else "-"
        rev = REVERSIBLE_WORDS[str(r.reversibility.classification)] if r.reversibility else "-"
        verdict = f"{VERDICT_MARK[r.verdict]} {VERDICT_WORDS[r.verdict]}"
        out.append(f"| {_code(r.name)} | {_cell(compat)} | {_cell(rev)} | {_cell(verdict)} |")
    out.append("")
    for review in reviews:
        out += _markdown_section(review)
    out += [_summary(reviews), ""]
    return "\n".join(out)


def _markdown_section(review: MigrationReview) -> list[str]:
    opened = " open" if review.verdict != Verdict.PASS else ""
    out = [
        f"<details{opened}><summary>{VERDICT_MARK[review.verdict]} <code>{_html(review.name)}"
        f"</code>: {_html(VERDICT_WORDS[review.verdict])}</summary>",
        "",
    ]
    for question, lines in answers(review) + _extras(review):
        out.append(f"**{_inline(question)}**")
        out += [f"- {_inline(line)}" for line in lines]
        out.append("")
    if review.reverse is not None and review.reverse.sql:
        out += ["Reverse SQL (the rollback plan):", "", *_fenced(review.reverse.sql, "sql"), ""]
    out += ["</details>", ""]
    return out


def _fenced(text: str, language: str) -> list[str]:
    # A fence longer than any run of backticks inside, so the SQL cannot close it.
    longest = max((len(run) for run in re.findall("`+", text)), default=0)
    fence = "`" * max(3, longest + 1)
    return [f"{fence}{language}", *text.rstrip("\n").splitlines(), fence]


def _html(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _inline(text: str) -> str:
    """Markdown text that renders as written: HTML and Markdown punctuation escaped
    (migration names and SQL come from files in the pull request)."""
    escaped = _html(text)
    for char in "\\`*_[]|#~":
        escaped = escaped.replace(char, "\\" + char)
    return escaped


def _cell(text: str) -> str:
    return _inline(text).replace("\n", " ")


def _code(text: str) -> str:
    return "<code>" + _html(text).replace("|", "&#124;") + "</code>"


# --- JSON ------------------------------------------------------------------------------


def json_report(reviews: Sequence[MigrationReview]) -> str:
    return json.dumps(
        {
            "migrations": [review_dict(r) for r in reviews],
            "fails": any(r.fails_ci for r in reviews),
        },
        indent=2,
    )


def review_dict(review: MigrationReview) -> dict:
    """The review as plain data (also what the Slack check card stores and renders)."""
    return {
        "name": review.name,
        "checksum": review.checksum,
        "verdict": str(review.verdict),
        "error": review.error,
        "live": review.live,
        "compatibility": str(review.compatibility) if review.error is None else None,
        "answers": [{"question": q, "answer": lines} for q, lines in answers(review)],
        "statements": [s.to_dict() for s in review.statements],
        "locks": lock_lines(review),
        "reverse_sql": review.reverse.sql if review.reverse else "",
        "reversibility": review.reversibility.to_dict() if review.reversibility else None,
        "lint": review.lint.to_dict(),
        "acknowledgements": [a.to_dict() for a in review.acknowledged.found],
        "acknowledgement_problems": list(review.acknowledged.problems),
        "acknowledgement_needed": str(review.needed_acknowledgement or "") or None,
    }
