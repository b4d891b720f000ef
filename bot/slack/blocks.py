"""Small Block Kit builders. Limits from Slack's docs (docs/reference/slack-platform.md):
section text 3000 chars, 10 fields, header 150, button text 75, 50 blocks per message,
100 per modal or Home tab, 10 options per checkbox element."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from bot.text import visible

if TYPE_CHECKING:
    from bot.slack.values import SlackValue

SECTION_TEXT_MAX = 3000
HEADER_MAX = 150
BUTTON_TEXT_MAX = 75
MESSAGE_BLOCKS_MAX = 50
VIEW_BLOCKS_MAX = 100
MODAL_TITLE_MAX = 24  # title, submit and close of a modal
OPTIONS_PER_CHECKBOX = 10
CONTEXT_TEXT_MAX = 2000


_BACKTICK_PAIR = re.compile(r"`(?=`)")


def escape(text: str) -> str:
    """THE escaping of every user- or database-originated string placed in mrkdwn: Slack's
    three control characters (&, <, >; docs/reference/slack-platform.md, "Formatting text
    for app surfaces"), so ``<!channel>``, ``<@U...>`` and ``<https://x|harmless>`` show as
    typed instead of pinging or disguising a link; hidden characters shown as [U+XXXX];
    and backticks in a row broken by zero-width spaces (the only one left: hidden ones were made
    visible first), so quoted text can neither open nor close a code block."""
    escaped = visible(text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    # Every backtick followed by another gets a zero-width space: no run of three is left
    # (replacing "```" alone leaves one where two runs meet: six backticks in a row).
    return _BACKTICK_PAIR.sub("`\u200b", escaped)


def code_block(text: str) -> str:
    """``text`` escaped, in a code block nothing inside can close."""
    return "```" + escape(text) + "```"


def with_mentions(text: str, people: set[str] = frozenset()) -> str:
    """A line the bot wrote about people (``Cancelled by <@U1>``) around data it quotes: all
    of it escaped, then the mentions of ``people`` (the operation's own) made live again.
    A mention of anyone else, ``<!channel>`` or a link in the quoted data stays text."""
    escaped = escape(text)
    for user in people:
        escaped = escaped.replace(f"&lt;@{user}&gt;", f"<@{user}>")
    return escaped


def cut(text: str, limit: int) -> str:
    """Shortens text to a limit, saying how much was left out."""
    if len(text) <= limit:
        return text
    # The count changes the suffix's own length: size it for the largest count first.
    keep = limit - len(f"... ({len(text)} more characters)")
    return text[:keep] + f"... ({len(text) - keep} more characters)"


def plain(text: str, limit: int = SECTION_TEXT_MAX) -> dict:
    return {"type": "plain_text", "text": cut(text, limit), "emoji": True}


def mrkdwn(text: str, limit: int = SECTION_TEXT_MAX) -> dict:
    return {"type": "mrkdwn", "text": cut(text, limit)}


def header(text: str) -> dict:
    return {"type": "header", "text": plain(text, HEADER_MAX)}


def section(
    text: str,
    *,
    fields: list[str] | None = None,
    accessory: dict | None = None,
    block_id: str | None = None,
) -> dict:
    block: dict = {"type": "section", "text": mrkdwn(text)}
    if fields:
        block["fields"] = [mrkdwn(f, 2000) for f in fields[:10]]
    if accessory:
        block["accessory"] = accessory
    if block_id:
        block["block_id"] = block_id
    return block


def context(*texts: str) -> dict:
    return {"type": "context", "elements": [mrkdwn(t, CONTEXT_TEXT_MAX) for t in texts[:10]]}


def divider() -> dict:
    return {"type": "divider"}


def button(
    text: str, action_id: str, value: str, *, style: str | None = None, confirm: dict | None = None
) -> dict:
    b: dict = {
        "type": "button",
        "text": plain(text, BUTTON_TEXT_MAX),
        "action_id": action_id,
        "value": value,
    }
    if style:
        b["style"] = style
    if confirm:
        b["confirm"] = confirm
    return b


def confirm_dialog(title: str, text: str, yes: str, no: str = "Cancel") -> dict:
    return {
        "title": plain(title, 100),
        "text": mrkdwn(text, 300),
        "confirm": plain(yes, 30),
        "deny": plain(no, 30),
    }


def actions(block_id: str, *elements: dict) -> dict:
    return {"type": "actions", "block_id": block_id, "elements": list(elements)}


def markdown(text: str) -> dict:
    return {"type": "markdown", "text": text}


def modal(
    callback_id: str,
    title: str,
    blocks: list[dict],
    *,
    submit: str | None = None,
    metadata: SlackValue | None = None,
    close: str = "Cancel",
) -> dict:
    """A modal view; title, submit and close are cut to Slack's 24 characters."""
    view = {
        "type": "modal",
        "callback_id": callback_id,
        "title": plain(title, MODAL_TITLE_MAX),
        "close": plain(close, MODAL_TITLE_MAX),
        "blocks": fit(blocks, VIEW_BLOCKS_MAX),
    }
    if submit:
        view["submit"] = plain(submit, MODAL_TITLE_MAX)
    if metadata is not None:
        view["private_metadata"] = metadata.encode()
    return view


def fit(blocks: list[dict], limit: int = MESSAGE_BLOCKS_MAX) -> list[dict]:
    """Keeps a block list under Slack's per-message or per-view limit, saying so."""
    if len(blocks) <= limit:
        return blocks
    kept = blocks[: limit - 1]
    return [*kept, context(f"_{len(blocks) - len(kept)} more blocks left out (Slack limit)._")]
