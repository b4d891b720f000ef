"""The backup retention review in Slack: the card (every manual snapshot of the environment,
proposed for deletion or kept, each with why) and the answer to
`/rollback backups --retention`. The approval request shows the step's whole plan (every
snapshot with its tags) through plan_views like every other destructive step."""

from __future__ import annotations

from bot.clock import shown_utc
from bot.slack.blocks import SECTION_TEXT_MAX, context, fit, header, section
from bot.slack.cards import card_renderer, render_card
from bot.store.records import CardKind, Operation


def _sections(title: str, lines: list[str]) -> list[dict]:
    """``lines`` in as many sections as they need: none is cut."""
    blocks, chunk = [], title
    for line in lines:
        if len(chunk) + 1 + len(line) > SECTION_TEXT_MAX:
            blocks.append(section(chunk))
            chunk = line
        else:
            chunk += "\n" + line
    blocks.append(section(chunk))
    return blocks


def _when(created: str | None) -> str:
    return shown_utc(created) if created else "creation time unknown"


@card_renderer(CardKind.RETENTION_REVIEW)
def retention_card(op: Operation | None, title: str, data: dict) -> dict:
    to_delete, kept = data["to_delete"], data["kept"]
    who = data["requester"]
    trigger = f"<@{who}>" if who else "the daily schedule"
    proposed = [
        f":wastebasket: `{r['id']}` of `{r['instance']}`, created {_when(r['created'])}:"
        f" {r['reason']}"
        for r in to_delete
    ]
    keeping = [
        f":lock: `{r['id']}` of `{r['instance']}`, created {_when(r['created'])}: kept,"
        f" {r['reason']}"
        for r in kept
    ]
    blocks = [header(f"Backup retention review: {data['environment']}")]
    blocks += _sections(f"*Proposed for deletion ({len(to_delete)})*", proposed or ["none"])
    blocks += _sections(f"*Kept ({len(kept)})*", keeping or ["none"])
    note = (
        "Deleting needs an approver: the approval request lists every snapshot with its"
        " tags. Each is checked again just before it is deleted."
        if to_delete
        else "Nothing to delete."
    )
    blocks.append(
        context(f"Listed {shown_utc(data['reviewed_at'])} for {trigger}. {note}"),
    )
    return {"text": title, "blocks": fit(blocks)}


def retention_reply(op: Operation | None, data: dict) -> dict:
    """`/rollback backups --retention`: the same card (``data``: retention.card_data), and
    the operation it started (None: nothing past retention)."""
    title = f"Backup retention review on {data['environment']}"
    card = render_card(op, CardKind.RETENTION_REVIEW, title, data)
    if op is None:
        return card
    started = section(
        f":hourglass_flowing_sand: Operation `{op.id}` started: an approver approves the"
        " deletion in the incident channel."
    )
    return {"text": card["text"], "blocks": fit([started, *card["blocks"]])}
