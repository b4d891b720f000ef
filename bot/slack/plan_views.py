"""A plan shown to the approver whole: never cut, never hidden behind Slack's limits.

The approval is bound to the hash of the full plan text, so the approver must be able to
read every character of it (a DELETE after ~120 harmless statements was once cut off
an approval message cut at ~2,900 characters). Runbooks write their plans with what
destroys or changes data first; this module lays the text out:

- in the approval message, paragraph by paragraph, as long as the message stays under
  Slack's limits (50 blocks; and about 13,000 characters of blocks, past which Slack
  answers msg_blocks_too_long although no limit is documented: slackapi/bolt-js#2509);
  whatever does not fit is announced with its size and a "View full plan" button;
- in that modal, all of it, in as many pages as needed (a view holds 100 blocks and must
  stay under 250 KB).

Text is escaped for mrkdwn (&, <, >): otherwise ``<!here>`` in a string literal would ping
a channel and ``<https://x|harmless>`` would show other words than the plan holds.
"""

from __future__ import annotations

from bot.slack.blocks import actions, button, context, escape, modal, section
from bot.slack.ids import Action, Callback
from bot.slack.values import PlanPage
from bot.text import plural

CODE_CHARS = 2_900  # a section's 3,000, less the code fences and some margin
MESSAGE_BUDGET = 11_000  # characters of plan per message (see the module docstring)
PAGE_BUDGET = 60_000  # characters of plan per modal page: far under 100 blocks and 250 KB


def chunks(text: str, size: int = CODE_CHARS) -> list[str]:
    """The escaped text in pieces of at most ``size`` characters, cut at line ends where it
    can and never inside an escape; joined, they are the whole escaped text (no ``` in it:
    a piece in a code block cannot end it)."""
    escaped = escape(text)  # which breaks every run of backticks: no ``` is left inside
    pieces: list[str] = []
    start = 0
    while start < len(escaped):
        end = min(start + size, len(escaped))
        if end < len(escaped):
            newline = escaped.rfind("\n", start, end)
            if newline > start:
                end = newline + 1
            else:
                amp = escaped.rfind("&", max(start, end - 5), end)
                if amp > start and ";" not in escaped[amp:end]:
                    end = amp
        pieces.append(escaped[start:end])
        start = end
    return pieces


def paragraphs(text: str) -> list[str]:
    """The plan's paragraphs (separated by blank lines), each kept whole."""
    out: list[str] = []
    for part in text.split("\n\n"):
        if part.strip():
            out.append(part.strip("\n"))
    return out


def code(piece: str) -> dict:
    return section("```" + piece + "```")


def plan_blocks(plan_text: str, view_button: dict) -> list[dict]:
    """The plan for the approval message: its paragraphs in order while they fit, then the
    size of the rest and ``view_button`` (which opens plan_modal). A plan that fits whole
    gets the button too, so the approver can always read it in one place."""
    blocks: list[dict] = []
    used = 0
    shown = 0
    for paragraph in paragraphs(plan_text):
        pieces = chunks(paragraph)
        size = sum(len(p) for p in pieces)
        if used + size > MESSAGE_BUDGET or len(blocks) + len(pieces) > 40:
            break
        blocks += [code(p) for p in pieces]
        used += size
        shown += 1
    left = paragraphs(plan_text)[shown:]
    if left:
        rest = sum(len(p) for p in left)
        note = (
            f":warning: *The plan goes on: {plural(len(left), 'more paragraph')}, {rest:,} more"
            " characters.* Read all of it before you approve."
        )
        blocks.append(section(note, accessory=view_button))
    else:
        blocks.append(context("That is the whole plan."))
        blocks.append(actions("plan_actions", view_button))
    return blocks


def pages(plan_text: str, budget: int = PAGE_BUDGET) -> list[list[str]]:
    """The whole plan as pages of code pieces."""
    out: list[list[str]] = [[]]
    used = 0
    for piece in chunks(plan_text):
        if out[-1] and used + len(piece) > budget:
            out.append([])
            used = 0
        out[-1].append(piece)
        used += len(piece)
    return out


def view_plan_button(approval_id: str) -> dict:
    return button("View full plan", Action.VIEW_PLAN, PlanPage(approval_id, 0).encode())


def plan_modal(plan_text: str, plan_hash: str, ref: PlanPage) -> dict:
    """Page ``ref.page`` (0-based) of the whole plan, with "Previous/Next page" buttons."""
    every = pages(plan_text)
    page = max(0, min(ref.page, len(every) - 1))
    blocks = [
        context(
            f"The whole plan, {len(plan_text):,} characters, page {page + 1} of {len(every)}."
            f" The approval is bound to its SHA-256 `{plan_hash}`."
        ),
        *[code(piece) for piece in every[page]],
    ]
    moves = []
    if page > 0:
        value = PlanPage(ref.approval, page - 1).encode()
        moves.append(button("Previous page", f"{Action.PLAN_PAGE}_previous", value))
    if page < len(every) - 1:
        value = PlanPage(ref.approval, page + 1).encode()
        moves.append(button("Next page", f"{Action.PLAN_PAGE}_next", value, style="primary"))
    if moves:
        blocks.append(actions("plan_pages", *moves))
    metadata = PlanPage(ref.approval, page)
    return modal(Callback.PLAN, "The whole plan", blocks, close="Close", metadata=metadata)
