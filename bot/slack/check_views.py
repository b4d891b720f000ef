"""`/rollback check`: a check card per pending migration (the Migration Safety Checklist
answered by the bot), the modal with the questions only a person can answer, and the
message that records who reviewed it."""

from __future__ import annotations

from bot.prevention.report import VERDICT_WORDS
from bot.prevention.review import Verdict
from bot.runbooks.check import PERSON_QUESTIONS
from bot.slack.blocks import (
    MESSAGE_BLOCKS_MAX,
    SECTION_TEXT_MAX,
    actions,
    button,
    code_block,
    context,
    cut,
    divider,
    escape,
    fit,
    header,
    modal,
    mrkdwn,
    plain,
    section,
)
from bot.slack.ids import Action, Block, Callback
from bot.slack.values import CheckRef

VERDICT_EMOJI = {
    Verdict.PASS: ":white_check_mark:",
    Verdict.ACKNOWLEDGED: ":warning:",
    Verdict.BLOCKED: ":x:",
    Verdict.ERROR: ":x:",
}
_BLOCKS_PER_CARD = 5
_ANSWER_LINES = 6  # per question on the card; the modal and `rollback-bot check` have all


def _answers_text(card: dict) -> str:
    lines = []
    for answer in card["answers"]:
        shown = answer["answer"][:_ANSWER_LINES]
        more = len(answer["answer"]) - len(shown)
        lines.append(f"*{escape(answer['question'])}*")
        lines += [f"• {escape(line)}" for line in shown]
        if more > 0:
            lines.append(f"• _… {more} more_")
    return "\n".join(lines)


def card_blocks(env: str, card: dict, channel: str) -> list[dict]:
    verdict = Verdict(card["verdict"])
    title = (
        f"{VERDICT_EMOJI[verdict]} `{escape(card['name'])}` on *{escape(env)}*:"
        f" {VERDICT_WORDS[verdict]}"
    )
    blocks = [section(title), section(cut(_answers_text(card), SECTION_TEXT_MAX))]
    facts = []
    if card["locks"]:
        facts.append("*Locks:* " + "; ".join(escape(line) for line in card["locks"]))
    lint = card["lint"]
    if lint.get("unavailable"):
        facts.append(f"*squawk:* did not run ({escape(lint['unavailable'])})")
    else:
        rules = sorted({escape(f["rule"]) for f in lint["findings"]})
        facts.append(f"*squawk:* {', '.join(rules) if rules else 'no findings'}")
    blocks.append(context(cut("\n".join(facts), 2000)))
    if card["reverse_sql"]:
        sql = cut(card["reverse_sql"], SECTION_TEXT_MAX - 40)
        blocks.append(section("*Reverse SQL (the rollback plan):*\n" + code_block(sql)))
    ref = CheckRef(env, card["name"], card["checksum"] or "", channel)
    blocks.append(
        actions(
            f"check_{card['checksum'] or card['name']}"[:255],
            button("Answer the checklist", Action.CHECK_REVIEW, ref.encode(), style="primary"),
        )
    )
    return blocks


def check_message(env: str, cards: list[dict], channel: str) -> dict:
    if not cards:
        text = f":white_check_mark: No pending migrations on *{escape(env)}*: nothing to check."
        return {"text": text, "blocks": [section(text)]}
    room = (MESSAGE_BLOCKS_MAX - 2) // (_BLOCKS_PER_CARD + 1)
    blocks = [header(f"Migration Safety Checklist: {env}")]
    for card in cards[:room]:
        blocks += [*card_blocks(env, card, channel), divider()]
    if len(cards) > room:
        rest = ", ".join(f"`{escape(c['name'])}`" for c in cards[room:])
        blocks.append(
            context(
                cut(
                    f"{len(cards) - room} more pending: {rest}."
                    f" `/rollback check NAME --env {escape(env)}`",
                    2000,
                )
            )
        )
    failing = sum(Verdict(c["verdict"]) in (Verdict.BLOCKED, Verdict.ERROR) for c in cards)
    text = f"Migration Safety Checklist on {env}: {len(cards)} pending, {failing} failing"
    return {"text": text, "blocks": fit(blocks)}


def check_modal(ref: CheckRef) -> dict:
    # Slack allows 75 characters in an option's text and in its description.
    options = []
    for item in PERSON_QUESTIONS:
        option = {"text": mrkdwn(f"*{item.title}*", 75), "value": item.id}
        if item.description:
            option["description"] = mrkdwn(item.description, 75)
        options.append(option)
    blocks = [
        section(
            f"`{escape(ref.migration)}` on *{escape(ref.env)}*: the bot's answers are on the"
            " card; recording your review checks the file again and keeps both."
        ),
        {
            "type": "input",
            "block_id": Block.CHECK_CONFIRMED,
            "optional": True,
            "label": plain("Only you can answer these: tick what is true", 2000),
            "element": {"type": "checkboxes", "action_id": "confirmed", "options": options},
        },
        {
            "type": "input",
            "block_id": Block.CHECK_NOTE,
            "optional": True,
            "label": plain("Note", 2000),
            "element": {
                "type": "plain_text_input",
                "action_id": "note",
                "multiline": True,
                "max_length": 1000,
            },
        },
    ]
    return modal(Callback.CHECK, "Migration check", blocks, submit="Record review", metadata=ref)


def reviewed_message(env: str, card: dict, reviewer: str, detail: dict) -> dict:
    verdict = Verdict(card["verdict"])
    title = (
        f"{VERDICT_EMOJI[verdict]} Check of `{escape(card['name'])}` on *{escape(env)}*"
        f" reviewed by <@{reviewer}>: {VERDICT_WORDS[verdict]}"
    )
    titles = {item.id: item.title for item in PERSON_QUESTIONS}
    person = [f":white_check_mark: {titles[i]}" for i in detail["confirmed"]]
    person += [f":warning: not confirmed: {titles[i]}" for i in detail["unconfirmed"]]
    blocks = [section(title), section(cut(_answers_text(card), SECTION_TEXT_MAX))]
    blocks.append(section("*The reviewer's answers:*\n" + "\n".join(person)))
    if detail.get("note"):
        blocks.append(section(cut(f"*Note:* {escape(detail['note'])}", SECTION_TEXT_MAX)))
    blocks.append(context(f"checksum `{card['checksum']}`"))
    text = f"Check of {escape(card['name'])} on {escape(env)} reviewed by <@{reviewer}>"
    return {"text": text, "blocks": blocks}
