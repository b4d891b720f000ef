"""docs/messages.md, checked mechanically: the view builders render with representative data
and every text they produce keeps the rules a machine can check (a suggested command that
touches a database names its environment, no "(s)" plurals, modal titles inside Slack's 24
characters, runbooks by their human names, /rollback help in the runbook's order)."""

from __future__ import annotations

import ast
import json
import re
from pathlib import Path

import pytest

from bot.checklists import CHECKLISTS
from bot.errors import UserError
from bot.settings import load_config
from bot.slack import views
from bot.slack.migration_views import status_card
from bot.store.records import ChecklistEntry, StepRecord, StepStatus
from commands import SUBCOMMANDS, usage_lines
from tests.unit.slack.test_views import operation

RUNBOOK_IDS = ("drill", "resolve", "revert", "pitr", "sql", "deploy", "pitr_undo_switch")
# Commands that act on one environment's database: a suggestion must say which (a copied
# `/rollback resolve x` from production's card would otherwise run on the default one).
_ENV_COMMAND = re.compile(r"/rollback (?:status|resolve|revert|pitr|sql|deploy|check)\b[^`\n]*")


def _failed_status(recommendation: str) -> dict:
    return {
        "environment": "production",
        "verdict": "failed",
        "message": "",
        "counts": {"applied": 3, "failed": 1, "rolled_back": 0, "pending": 1},
        "failed": [
            {
                "name": "20251208120000_problematic_migration",
                "started_at": "2026-11-26T10:00:00.000000Z",
                "logs": 'Database error: relation "Invoice" does not exist',
                "diagnosis": "1 of 2 statements took effect.",
                "statements": [{"description": "CREATE TABLE Invoice", "verdict": "applied"}],
                "recommendation": recommendation,
                "reasons": ["The database state is known."],
                "undo_sql": [],
            }
        ],
        "pending": ["20251209120000_next"],
        "more_pending": 0,
        "warnings": [],
        "more_warnings": 0,
        "lock_holder": None,
    }


def _rendered() -> list[tuple[str, dict]]:
    out: list[tuple[str, dict]] = []
    for rec in ("resolve_rolled_back", "undo_then_resolve", "revert", "pitr"):
        out.append((f"status card {rec}", status_card(_failed_status(rec))))
    steps = [StepRecord("op-1", 0, "a", "Check status", False, True, status=StepStatus.FAILED)]
    for runbook in RUNBOOK_IDS:
        op = operation(runbook=runbook, environment="production", status="failed")
        out.append((f"status message {runbook}", views.status_message(op, steps, {})))
        out.append((f"notify {runbook}", views.notify_message(op, "C_INCIDENT")))
        out.append((f"history {runbook}", views.history_message([op], {op.id: "U_BOB"})))
    for name, checklist in CHECKLISTS.items():
        items = [
            ChecklistEntry("op-1", name, i.id, n, i.title) for n, i in enumerate(checklist.items)
        ]
        out.append((f"checklist {name}", views.checklist_modal(operation(), name, items)))
    out.append(("help", views.help_message(usage_lines())))
    return out


def _texts(payload) -> list[str]:
    if isinstance(payload, str):
        return [payload]
    if isinstance(payload, dict):
        return [t for v in payload.values() for t in _texts(v)]
    if isinstance(payload, list):
        return [t for v in payload for t in _texts(v)]
    return []


@pytest.mark.parametrize(
    ("what", "payload"), _rendered(), ids=lambda v: v if isinstance(v, str) else ""
)
def test_every_rendered_message_keeps_the_written_standard(what, payload):
    text = "\n".join(_texts(payload))
    assert "(s)" not in text, f"{what}: a '(s)' plural"
    for command in _ENV_COMMAND.findall(text):
        if what == "help":
            continue  # usage lines, not suggestions: they show `[--env NAME]`
        assert "--env " in command, f"{what}: `{command}` does not name its environment"
    if payload.get("type") == "modal":
        title = payload["title"]["text"]
        assert len(title) <= 24 and "checklis" not in title.replace("checklist", ""), title
    for runbook in ("Sql ", "Pitr", "pitr_undo_switch", "Pitr_undo_switch", "*sql*", "*pitr*"):
        assert runbook not in text, f"{what}: internal runbook name {runbook!r}: {text[:200]}"


def test_checklist_titles_are_whole_words_inside_slack_limit():
    for name in CHECKLISTS:
        title = views.checklist_modal(operation(), name, [])["title"]["text"]
        assert title.startswith(CHECKLISTS[name].title) and len(title) <= 24


def test_help_lists_the_runbook_options_in_the_runbook_order():
    order = list(SUBCOMMANDS)
    assert [order.index(n) for n in ("resolve", "revert", "pitr", "sql")] == sorted(
        order.index(n) for n in ("resolve", "revert", "pitr", "sql")
    )
    text = json.dumps(views.help_message(usage_lines()))
    assert text.index("/rollback pitr") < text.index("/rollback sql")


@pytest.mark.parametrize(("typed", "meant"), [("prod", "production"), ("stagin", "staging")])
def test_an_environment_typed_short_or_misspelled_gets_a_did_you_mean(typed, meant):
    # rollback.example.toml has staging and production, as a team's config would.
    config = load_config(Path(__file__).parents[3] / "rollback.example.toml")
    assert {"staging", "production"} <= set(config.environments)
    with pytest.raises(UserError) as caught:
        config.environment(typed)
    assert f"Did you mean `--env {meant}`?" in caught.value.hint


# Prisma's own P3009 text is reproduced word for word (the oracle compares it with the real
# CLI's); the sandbox's fake Slack speaks to tests, not to people; "http(s)" is a scheme.
_PLURAL_EXEMPT = {"bot/prisma/status.py", "bot/sandbox/fake_slack.py", "bot/sandbox/signer.py"}


def test_no_product_string_writes_a_plural_with_s_in_brackets():
    root = Path(__file__).parents[3]
    found = []
    for package in ("bot", "commands", "handlers"):
        for path in sorted((root / package).rglob("*.py")):
            where = str(path.relative_to(root))
            if where in _PLURAL_EXEMPT:
                continue
            for node in ast.walk(ast.parse(path.read_text())):
                if isinstance(node, ast.Constant) and isinstance(node.value, str):
                    text = node.value.replace("http(s)", "")
                    if re.search(r"[a-z]\(s\)", text):
                        found.append(f"{where}:{node.lineno}: {node.value.strip()[:80]}")
    assert found == []


def _string_nodes(tree: ast.Module):
    """Every string the code writes (a literal or an f-string, implicit concatenations
    joined), with ``{}`` for what an f-string fills in; docstrings left out."""
    docstrings = {
        id(node.value)
        for node in ast.walk(tree)
        if isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant)
    }
    parts_of_fstrings = {
        id(v) for node in ast.walk(tree) if isinstance(node, ast.JoinedStr) for v in node.values
    }
    for node in ast.walk(tree):
        if id(node) in docstrings or id(node) in parts_of_fstrings:
            continue
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            yield node.lineno, node.value
        elif isinstance(node, ast.JoinedStr):
            text = "".join(v.value if isinstance(v, ast.Constant) else "{}" for v in node.values)
            yield node.lineno, text


def test_every_suggested_command_in_the_code_names_its_environment():
    """docs/messages.md rule 2 over the source: a `/rollback resolve x` in an error, a plan
    or a step's result is copied as is, so it says `--env` (a usage pattern with [--env
    NAME] or a bare subcommand named as a feature, `/rollback revert`, are not commands)."""
    root = Path(__file__).parents[3]
    found = []
    for package in ("bot", "commands", "handlers"):
        for path in sorted((root / package).rglob("*.py")):
            if "sandbox" in path.parts:
                continue
            for line, text in _string_nodes(ast.parse(path.read_text())):
                for quoted in re.findall(r"`(/rollback [^`]*)`", text):
                    bare = re.fullmatch(r"/rollback (revert|resolve|sql|pitr|deploy|check)", quoted)
                    if bare or "[" in quoted or not _ENV_COMMAND.match(quoted):
                        continue
                    if "--env" not in quoted:
                        found.append(f"{path.relative_to(root)}:{line}: `{quoted}`")
    assert found == []
