"""The whole catalog (tests/unit/slack/catalog.py) against docs/messages.md and against the
markup injection corpus: every builder, rendered from what real runs returned, keeps the
written standard, and no string a person or a database wrote can ping, link or close a code
block in any text field of any message, modal or Home tab, nor in the notification text."""

from __future__ import annotations

import importlib
import inspect
import json
import pkgutil
import re

import pytest

import bot.slack
from bot.slack.blocks import MODAL_TITLE_MAX
from bot.store.records import CardKind, OperationStatus
from bot.words import RUNBOOK_NAMES
from tests.unit.slack.catalog import ENTRIES, NOT_BUILDERS, all_renderers, card_kinds_rendered
from tests.unit.slack.real_runs import RealRuns, real_runs
from tests.unit.slack.test_injection_corpus import CORPUS, HIDDEN, LIVE, objects

_ENV_COMMAND = re.compile(r"/rollback (?:status|resolve|revert|pitr|sql|deploy|check)\b[^`\n]*")
INTERNAL_NAMES = ("Sql ", "Pitr", "pitr_undo_switch", "Pitr_undo_switch", "*sql*", "*pitr*")
# A runbook's id or an operation's state as the program spells it, as a bare word in prose
# ("Finished: succeeded_with_steps_declined", "(pitr_undo_switch on production)"): runbook
# ids that are not English words, and every state with an underscore. Commands and code
# spans may name them (`/rollback pitr --env production`, a quoted id).
_IDS = sorted(
    [*(r for r in RUNBOOK_NAMES if r in ("pitr", "sql") or "_" in r)]
    + [s.value for s in OperationStatus if "_" in s.value],
    key=len,
    reverse=True,
)
BARE_ID = re.compile(r"(?<![\w./-])(?:" + "|".join(_IDS) + r")(?![\w-])")
_CODE = re.compile(r"```.*?```|`[^`\n]*`|(?:/rollback|rollback-bot cli) [^\n]*", re.S)


def bare_ids(text: str) -> list[str]:
    """The internal names ``text`` says in prose (outside code and commands)."""
    return [m.group(0) for m in BARE_ID.finditer(_CODE.sub("", text))]


# What an enum or a dump looks like when it leaks into words meant for people.
LEAKS = re.compile(
    r"not_yet_applied|undo_then_resolve|resolve_rolled_back|waiting_approval|"
    r"cancelled_after_changes|succeeded_with_steps_declined|waiting_checklist|\{'|\{\"|\[\"|\['"
)


@pytest.fixture(scope="module")
def real(pg_server, tmp_path_factory) -> RealRuns:
    trigger, demo = pg_server.create_database(), pg_server.create_database()
    return real_runs(trigger, demo, tmp_path_factory.mktemp("catalog"))


def texts(payload, *, every: bool = False) -> list[str]:
    """The text fields people read: mrkdwn (or every text object with ``every``), the
    markdown block's and the notification's ``text``."""
    kinds = ("mrkdwn", "markdown", "plain_text") if every else ("mrkdwn", "markdown")
    found = [
        o["text"]
        for o in objects(payload)
        if o.get("type") in kinds and isinstance(o.get("text"), str)
    ]
    if isinstance(payload.get("text"), str):
        found.append(payload["text"])
    return found


def _public_builders() -> dict[str, object]:
    found = {}
    for module in pkgutil.iter_modules(bot.slack.__path__):
        if "views" not in module.name:
            continue
        mod = importlib.import_module(f"bot.slack.{module.name}")
        for name, fn in inspect.getmembers(mod, inspect.isfunction):
            if not name.startswith("_") and fn.__module__ == mod.__name__:
                found[f"{mod.__name__}.{name}"] = fn
    return found


def test_every_view_builder_and_card_renderer_is_in_the_catalog():
    rendered = {e.builder for e in ENTRIES}
    missing = [
        name
        for name, fn in _public_builders().items()
        if fn not in rendered and fn not in NOT_BUILDERS
    ]
    assert missing == [], "add these to tests/unit/slack/catalog.py"
    kinds = [k for k in all_renderers() if k not in card_kinds_rendered()]
    assert kinds == [], "cards no catalog entry renders"
    assert set(CardKind) <= set(all_renderers()) | {CardKind.RESOLVE_NEXT}


def test_the_completeness_check_can_fail():
    assert len(_public_builders()) > len(NOT_BUILDERS) + 20
    assert any(fn not in NOT_BUILDERS for fn in _public_builders().values())


@pytest.mark.parametrize("entry", ENTRIES, ids=lambda e: e.name)
def test_every_message_keeps_the_written_standard(entry, real):
    payload = entry.render(real, "")
    text = "\n".join(texts(payload, every=True))
    # A code block quotes another program's words verbatim (Prisma's, PostgreSQL's, SQL).
    words = re.sub(r"```.*?```", "", text, flags=re.S)
    assert text.strip(), f"{entry.name}: renders no text"
    assert "(s)" not in words, f"{entry.name}: a '(s)' plural"
    if entry.name != "help":  # usage lines show `[--env NAME]`, not a suggestion
        for command in _ENV_COMMAND.findall(words):
            if "[" in command:
                continue  # a usage line quoted in an error: `/rollback status [env]`
            assert "--env " in command, f"{entry.name}: `{command}` does not name its env"
    for name in INTERNAL_NAMES:
        assert name not in text, f"{entry.name}: internal runbook name {name!r}"
    assert bare_ids(text) == [], f"{entry.name}: internal names in prose"
    assert not LEAKS.search(words), f"{entry.name}: an enum or a dump: {LEAKS.search(words)}"
    assert "&amp;amp;" not in text and "&amp;lt;" not in text, f"{entry.name}: escaped twice"
    raw = re.search(r"(?<!<@)\bU_(ALICE|BOB|CAROL)\b", words)
    assert not raw, (
        f"{entry.name}: a raw user id where a mention fits: {words[raw.start() - 60 :][:120]}"
    )
    if payload.get("type") == "modal":
        assert len(payload["title"]["text"]) <= MODAL_TITLE_MAX
    if entry.name.startswith("error"):
        assert "\n" in payload["text"], f"{entry.name}: an error with no next step"


@pytest.mark.parametrize("bad", CORPUS)
def test_no_quoted_string_is_live_markup_anywhere(bad, real):
    failures = []
    for entry in ENTRIES:
        plain_fences = sum(t.count("```") for t in texts(entry.render(real, "harmless")))
        shown = texts(entry.render(real, bad))
        for text in shown:
            stripped = text
            for user in entry.people:
                stripped = stripped.replace(f"<@{user}>", "")
            stripped = re.sub(r"<#C[A-Z_]+>", "", stripped)  # the bot's own channel links
            if LIVE.search(stripped) or HIDDEN.search(text):
                failures.append(f"{entry.name}: {text[:300]!r}")
        if sum(t.count("```") for t in shown) != plain_fences:
            failures.append(f"{entry.name}: a code block opened or closed by data")
    assert failures == []


def test_a_failed_deploy_shows_postgresqls_error_in_the_card_itself(real):
    """Issue 19, item 1: the card ended with "Database error... (155 more characters)" and
    the line that matters was only in the thread."""
    assert "Database error:" in real.deploy_failure  # Prisma's P3018, preamble first
    entry = next(e for e in ENTRIES if e.name == "status message deploy failed")
    card = "\n".join(texts(entry.render(real, "")))
    assert 'ERROR: column "authenticationMethod" of relation "User" contains null values' in card
    assert "A migration failed to apply" not in card
    status = next(e for e in ENTRIES if e.name == "status: trigger.dev failed")
    assert "contains null values" in "\n".join(texts(status.render(real, "")))


@pytest.mark.parametrize("name", ["status: demo partly applied", "resolve confirm"])
def test_the_diagnosis_is_said_once(name, real):
    entry = next(e for e in ENTRIES if e.name == name)
    text = "\n".join(texts(entry.render(real, "")))
    diagnosis = real.demo_status["failed"][0]["diagnosis"]
    assert diagnosis.startswith("2 of 3 statements took effect")
    assert text.count(diagnosis) == 1, text


def test_the_dry_run_and_verification_results_are_in_the_card_as_counts(real):
    """Issue 19, item 1: the dry-run and verification results were ~12 replies deep. The
    channel's card gets counts only (the rows go to the requester alone, issue 14)."""
    entry = next(e for e in ENTRIES if e.name == "status message sql running")
    card = "\n".join(texts(entry.render(real, "")))
    assert "3 statements, 5 rows affected; verification query: 3 rows" in card
    assert "user1@example.com" not in card and "user1@example.com" in json.dumps(real.sql_rows)


def _inputs(payload) -> list[dict]:
    return [o for o in objects(payload) if o.get("type") == "input"]


@pytest.mark.parametrize(
    "entry",
    [
        e
        for e in ENTRIES
        if "modal" in e.name
        or "checklist" in e.name
        or "pitr restore" in e.name
        or "review" in e.name
    ],
    ids=lambda e: e.name,
)
def test_no_optional_input_says_optional_twice(entry, real):
    """Slack writes "(optional)" after an optional input's label itself ("(optional)
    (optional)" was seen)."""
    for block in _inputs(entry.render(real, "")):
        if block.get("optional"):
            assert "optional" not in block["label"]["text"].lower(), block["label"]


def test_a_saved_checklist_says_what_is_still_open_and_what_waits(real):
    saved = {e.name: "\n".join(texts(e.render(real, ""))) for e in ENTRIES if "saved" in e.name}
    partly = saved["checklist saved before"]
    assert "Saved: 3 of 7 items ticked" in partly and "Still open:" in partly
    assert "Destructive steps wait until every item is ticked" in partly
    assert "Test in staging" in partly and "Backup current state" not in partly
    assert (
        "Saved: all 7 items ticked. The operation goes on."
        in saved["checklist saved before complete"]
    )
    assert "Destructive" not in saved["checklist saved after"]


def test_deploy_shows_what_would_run_before_anything_starts(real):
    """Issue 19, item 3: the checklist opened before anyone saw which migrations would run,
    and the very file that had just failed started a full operation without a word."""
    shown = {e.name: e.render(real, "") for e in ENTRIES if e.name.startswith("deploy confirm")}
    first = shown["deploy confirm deploy_preview"]
    text = "\n".join(texts(first))
    assert "applies 2 migrations, in this order:" in text
    assert text.index("20221207113401") < text.index("20221209205520")
    assert first["submit"]["text"] == "Continue" and "same file" not in text
    refused = shown["deploy confirm deploy_preview_failed"]
    assert "submit" not in refused and "(P3009)" in "\n".join(texts(refused))
    repeat = "\n".join(texts(shown["deploy confirm deploy_preview_repeat"]))
    assert "`20221207113401_user_organization_workflow` is the same file that failed" in repeat
    assert "contains null values" in repeat and "will fail the same way" in repeat


@pytest.mark.parametrize(
    "leak",
    [
        "`10:04:00` Finished: succeeded_with_steps_declined. Restore: done.",
        "The operation ended (cancelled_after_changes). The approval request no longer applies.",
        "You now hold `op-1` (pitr_undo_switch on production): its checklists are yours.",
        "Active operation: op-1 (pitr, waiting_approval), held by U_ALICE",
        "op-1: sql on production, requested by U_ALICE.",
    ],
)
def test_the_internal_name_check_catches_what_leaked(leak):
    assert bare_ids(leak)


def test_the_internal_name_check_leaves_commands_code_and_words_alone():
    fine = (
        "Recommended: `/rollback pitr --env production`. Manual SQL (option 4), PITR cleanup,"
        " `prisma/migrations/x/migration.sql`, re-run with rollback-bot cli sql --env staging,"
        " this version has no runbook `pitr_undo_switch`."
    )
    assert bare_ids(fine) == []
