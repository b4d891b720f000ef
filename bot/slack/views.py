"""View builders: every message, modal and Home tab the bot shows. Handlers never build
Block Kit inline; they call these and send the result."""

from __future__ import annotations

from bot.checklists import CHECKLISTS
from bot.clock import shown_utc
from bot.errors import UserError
from bot.prisma.error_codes import failed_migration_fact
from bot.slack.blocks import (
    MODAL_TITLE_MAX,
    OPTIONS_PER_CHECKBOX,
    VIEW_BLOCKS_MAX,
    actions,
    button,
    confirm_dialog,
    context,
    cut,
    divider,
    escape,
    fit,
    header,
    markdown,
    modal,
    mrkdwn,
    plain,
    section,
    with_mentions,
)
from bot.slack.ids import Action, Block, Callback
from bot.slack.plan_views import chunks, code, plan_blocks, view_plan_button
from bot.slack.values import ChecklistRef, DecisionChoice
from bot.store.records import (
    Approval,
    ApprovalStatus,
    ChecklistEntry,
    Decision,
    DecisionStatus,
    Operation,
    OperationStatus,
    StepRecord,
    StepStatus,
)
from bot.text import plural
from bot.words import runbook_name, status_words

STATUS_EMOJI = {
    OperationStatus.RUNNING: ":arrows_counterclockwise:",
    OperationStatus.WAITING_CHECKLIST: ":clipboard:",
    OperationStatus.WAITING_APPROVAL: ":raised_hand:",
    OperationStatus.SUCCEEDED: ":white_check_mark:",
    OperationStatus.SUCCEEDED_WITH_DECLINED: ":ballot_box_with_check:",
    OperationStatus.ROLLED_BACK: ":leftwards_arrow_with_hook:",
    OperationStatus.FAILED: ":x:",
    OperationStatus.CANCELLED: ":no_entry_sign:",
    OperationStatus.CANCELLED_AFTER_CHANGES: ":warning:",
    OperationStatus.STOPPED: ":warning:",
}
STEP_EMOJI = {
    StepStatus.PENDING: ":white_circle:",
    StepStatus.RUNNING: ":large_blue_circle:",
    StepStatus.SUCCEEDED: ":white_check_mark:",
    StepStatus.FAILED: ":x:",
    StepStatus.SKIPPED: ":fast_forward:",
    StepStatus.ROLLED_BACK: ":leftwards_arrow_with_hook:",
    StepStatus.DECLINED: ":no_entry_sign:",
    StepStatus.TODO: ":memo:",
}


# --- ephemeral replies ------------------------------------------------------------------


def help_message(subcommands: dict[str, str]) -> dict:
    lines = "\n".join(f"`/rollback {usage}` - {desc}" for usage, desc in subcommands.items())
    text = "rollback-bot runs the database rollback runbook from Slack."
    return {
        "text": text,
        "blocks": [
            section(f"*{text}*\n{lines}"),
            context(
                "Add `--env NAME` to choose an environment. Destructive steps in protected"
                " environments need a second person to approve."
            ),
        ],
    }


def error_message(error: UserError) -> dict:
    """What was wrong and what to do next. Both may quote what the person typed (an
    operation id, a migration name, SQL): shown as typed, never as a mention or a link."""
    text = f":warning: {with_mentions(error.message, error.people)}"
    if error.hint:
        text += f"\n{with_mentions(error.hint, error.people)}"
    return {"text": cut(text, 3000), "blocks": [section(text)]}


def info_message(text: str) -> dict:
    return {"text": cut(text, 3000), "blocks": [section(text)]}


# --- the live status message ------------------------------------------------------------


def status_message(
    op: Operation,
    steps: list[StepRecord],
    checklists: dict[str, list[ChecklistEntry]],
    progress: dict | None = None,
    people: set[str] = frozenset(),
) -> dict:
    """``people``: whose mentions in the result stay live (the operation's own)."""
    status = status_words(op.status)
    name = runbook_name(op.runbook)
    title = f"{STATUS_EMOJI.get(op.status, '')} {name} on {op.environment}: {status}"
    blocks = [
        header(f"{name} on {op.environment}: {status}"),
        section(
            escape(op.summary) if op.summary else f"Operation `{op.id}`",
            fields=[
                f"*Operation*\n`{op.id}`",
                f"*Requested by*\n<@{op.requester}>",
                f"*Started*\n{shown_utc(op.created_at)}",
                f"*Status*\n{STATUS_EMOJI.get(op.status, '')} {status}",
            ],
        ),
        section(
            "\n".join(_step_line(s, progress, people | {op.requester}) for s in steps)
            or "_No steps._"
        ),
    ]
    blocks.append(context(*[_checklist_summary(n, items) for n, items in checklists.items()]))
    if op.result:
        blocks.append(section(f"*Result:* {with_mentions(op.result, people | {op.requester})}"))
    buttons = [
        button(
            f"{CHECKLISTS[n].title} checklist",
            f"{Action.OPEN_CHECKLIST}_{n}",
            ChecklistRef(op.id, n).encode(),
        )
        for n in checklists
    ]
    if op.active:
        buttons.append(
            button(
                "Cancel",
                Action.CANCEL,
                op.id,
                style="danger",
                confirm=confirm_dialog(
                    "Cancel operation?",
                    "Steps that already ran stay done.",
                    "Cancel operation",
                    "Keep going",
                ),
            )
        )
    blocks.append(actions("operation_actions", *buttons))
    return {"text": title, "blocks": fit(blocks)}


def _step_line(step: StepRecord, progress: dict | None, people: set[str]) -> str:
    """``people``: the operation's own, whose mentions the engine wrote ("to do for
    <@U1>") stay mentions; anything else in a step's words is shown as written."""
    line = f"{STEP_EMOJI.get(step.status, '')} {step.title}"
    if step.destructive:
        line += " _(destructive)_"
    running = step.status == StepStatus.RUNNING
    if running and progress and progress.get("step_id") == step.step_id:
        done, total = progress.get("done", 0), progress.get("total") or 0
        if total:
            filled = int(10 * done / total)
            line += f"\n      `{'█' * filled}{'░' * (10 - filled)}` {int(100 * done / total)}%"
        if progress.get("message"):
            line += f" {escape(progress['message'])}"
    elif step.status == StepStatus.FAILED and step.error:
        # The fact that matters first: a failed deploy's PostgreSQL error, not
        # Prisma's preamble cut off before it.
        error = failed_migration_fact(step.error) or step.error
        line += f"\n      {cut(with_mentions(error, people), 300)}"
    elif step.status == StepStatus.ROLLED_BACK and step.detail:
        line += f"\n      {cut(with_mentions(step.detail, people), 300)}"
    elif step.status in (StepStatus.TODO, StepStatus.DECLINED) and step.detail:
        line += f"\n      _{cut(with_mentions(step.detail, people), 300)}_"
    elif step.status == StepStatus.SUCCEEDED and step.detail:
        # What the step found (a dry run's row counts, a verification's result, what was
        # applied): the fact in the card, not only in the thread.
        line += f" · {cut(with_mentions(step.detail, people), 200)}"
    return line


def _checklist_summary(name: str, items: list[ChecklistEntry]) -> str:
    done = sum(1 for i in items if i.checked)
    mark = ":white_check_mark:" if done == len(items) else ":clipboard:"
    return f"{mark} {CHECKLISTS[name].title} checklist: {done}/{len(items)}"


# --- thread lines, notices --------------------------------------------------------------


def timeline_line(at: str, text: str) -> str:
    return f"`{at[11:19]}` {text}"


def notify_message(
    op: Operation, incident_channel: str, approval_needed: str | None = None
) -> dict:
    """The notify channel's notice; while an approval is pending it says whose."""
    text = (
        f":rotating_light: <@{op.requester}> started *{runbook_name(op.runbook)}*"
        f" on *{op.environment}*"
        f" (`{op.id}`). Follow in <#{incident_channel}>."
    )
    if approval_needed:
        text += f"\n:raised_hand: Approval needed from {approval_needed}."
    return {"text": text, "blocks": [section(text)]}


def report_messages(op_id: str, report: str, chunk: int = 11000) -> list[dict]:
    """The Markdown incident report as messages: Slack allows at most 12,000 characters of
    markdown blocks per message."""
    parts, current = [], ""
    for line in report.splitlines(keepends=True):
        if len(current) + len(line) > chunk and current:
            parts.append(current)
            current = ""
        current += line[:chunk]
    parts += [current] if current else []
    return [{"text": f"Incident report {op_id}", "blocks": [markdown(p)]} for p in parts]


def approval_request(
    op: Operation, approval: Approval, approvers: str, approver_copy: bool = False
) -> dict:
    """The request, and after its decision what happened. ``approver_copy``: an approver's DM
    copy (bot/slack/reach.py), which never offers what only the requester can do."""
    text = f":raised_hand: Approval needed for `{op.id}` on *{op.environment}*"
    blocks = [
        section(f"{text}, requested by <@{op.requester}>. Approvers: {approvers}"),
        section(f"*Exact plan* (SHA-256 `{approval.plan_hash[:12]}`), what changes data first:"),
        # Never cut: what does not fit is announced, one click away (bot/slack/plan_views).
        *plan_blocks(approval.plan_text, view_plan_button(approval.id)),
    ]
    status = approval.status
    if status == ApprovalStatus.PENDING:
        blocks.append(
            context(
                f"Expires {shown_utc(approval.expires_at)}. The requester cannot"
                " approve their own request."
            )
        )
        blocks.append(
            actions(
                "approval_actions",
                button(
                    "Approve",
                    Action.APPROVE,
                    approval.id,
                    style="primary",
                    confirm=confirm_dialog(
                        "Approve this plan?", f"It will run on {op.environment}.", "Approve"
                    ),
                ),
                button("Deny", Action.DENY, approval.id, style="danger"),
            )
        )
    else:
        who = f" by <@{approval.decided_by}>" if approval.decided_by else ""
        emoji = {
            ApprovalStatus.APPROVED: ":white_check_mark:",
            ApprovalStatus.DENIED: ":no_entry_sign:",
        }.get(status, ":hourglass:")
        blocks.append(
            section(f"{emoji} *{status.capitalize()}*{who} at {shown_utc(approval.decided_at)}")
        )
        if status == ApprovalStatus.EXPIRED and approver_copy:
            blocks.append(
                context(
                    f"Only <@{op.requester}> can request it again (in the incident channel);"
                    " a new request comes here too."
                )
            )
        elif status == ApprovalStatus.EXPIRED:
            blocks.append(
                actions(
                    "approval_again", button("Request approval again", Action.REQUEST_AGAIN, op.id)
                )
            )
    return {"text": text, "blocks": blocks}


def decision_message(op: Operation, decision: Decision) -> dict:
    choices = decision.choices
    first, _, rest = decision.prompt.partition("\n")
    head = f":question: <@{op.requester}>, decide for `{op.id}`: {escape(first)}"
    blocks = [section(head)]
    # The evidence the requester decides on (option 4: every statement's row count, then
    # the verification result as a table), whole: in as many sections as it takes. The
    # table is in code blocks of its own (escaped: no cell can close one); in the prompt's
    # mrkdwn its fences were broken and its cells read as formatting.
    blocks += [section(piece) for piece in chunks(rest)][:40] if rest else []
    table = chunks(decision.evidence_table) if decision.evidence_table else []
    blocks += [code(piece) for piece in table]
    text = _decision_text(head, rest, table)
    if decision.status == DecisionStatus.PENDING:
        default = choices[decision.default_choice]
        blocks.append(
            context(
                f"Only the requester can answer. Without an answer by"
                f" {shown_utc(decision.expires_at)}: {default}."
            )
        )
        blocks.append(
            actions(
                "decision_actions",
                *[
                    button(
                        label,
                        f"{Action.DECIDE}_{value}",
                        DecisionChoice(decision.id, value).encode(),
                        style="primary" if i == 0 else None,
                    )
                    for i, (value, label) in enumerate(choices.items())
                ],
            )
        )
    else:
        who = f"<@{decision.decided_by}>" if decision.decided_by else "time-out"
        blocks.append(
            section(
                f"*{choices.get(decision.choice, decision.choice)}*"
                f" ({who}, {shown_utc(decision.decided_at)})"
            )
        )
    return {"text": text, "blocks": blocks}


def _decision_text(head: str, rest: str, table: list[str]) -> str:
    """The notification's text (within Slack's 40,000 characters): the whole question, and
    the table in one code block when it fits whole (a fence cut in half would leave the
    rest of the text in it)."""
    text = cut(f"{head}\n{escape(rest)}" if rest else head, 39_000)
    fenced = "```" + "".join(table) + "```"
    if table and len(text) + 1 + len(fenced) <= 39_000:
        return f"{text}\n{fenced}"
    return text + ("\n(The verification result is in the message.)" if table else "")


def checklist_prompt(op: Operation, name: str, why: str) -> dict:
    text = f":clipboard: {why}"
    return {
        "text": text,
        "blocks": [
            section(text),
            actions(
                "checklist_prompt",
                button(
                    f"Open {CHECKLISTS[name].title.lower()} checklist",
                    f"{Action.OPEN_CHECKLIST}_{name}",
                    ChecklistRef(op.id, name).encode(),
                    style="primary",
                ),
            ),
        ],
    }


# --- modals -----------------------------------------------------------------------------


def checklist_title(title: str) -> str:
    # Slack cuts a modal title at 24 characters ("Before rollback checklis"): the word
    # "checklist" goes when the whole would not fit.
    whole = f"{title} checklist"
    return whole if len(whole) <= MODAL_TITLE_MAX else title[:MODAL_TITLE_MAX]


def checklist_modal(op: Operation, name: str, items: list[ChecklistEntry]) -> dict:
    checklist = CHECKLISTS[name]
    human = [i for i in items if not i.by_bot]
    by_bot = [i for i in items if i.by_bot]
    blocks: list[dict] = [
        section(f"*{checklist.intro}*  Operation `{op.id}` on *{op.environment}*"),
        # Slack marks every block "(optional)": saving part of it is fine, but say what
        # waits for the rest (the marks alone read as "none of this matters").
        context(_CHECKLIST_WAITS.get(name, _SAVE_KEEPS)),
    ]
    if by_bot:
        blocks.append(
            context(
                *[
                    f":robot_face: Ticked by rollback-bot: {i.label}"
                    + (f" ({i.note})" if i.note else "")
                    for i in by_bot
                ]
            )
        )
    # Slack allows at most 10 options per checkbox element: one input block per 10 items.
    for n, start in enumerate(range(0, len(human), OPTIONS_PER_CHECKBOX)):
        chunk = human[start : start + OPTIONS_PER_CHECKBOX]
        options = [{"text": mrkdwn(i.label, 150), "value": i.item_id} for i in chunk]
        element: dict = {"type": "checkboxes", "action_id": "ticked", "options": options}
        initial = [o for o, i in zip(options, chunk, strict=True) if i.checked]
        if initial:
            element["initial_options"] = initial
        blocks.append(
            {
                "type": "input",
                "block_id": f"{Block.CHECKLIST_ITEMS}_{n}",
                "optional": True,
                "label": plain(checklist.title, 2000),
                "element": element,
            }
        )
    return modal(
        Callback.CHECKLIST,
        checklist_title(checklist.title),
        blocks,
        submit="Save",
        metadata=ChecklistRef(op.id, name),
        close="Close",
    )


_SAVE_KEEPS = "*Save* keeps what you ticked; open the checklist again to finish it."
_CHECKLIST_WAITS = {
    "before": f"Every item must be ticked before a destructive step runs. {_SAVE_KEEPS}",
}


def checklist_saved(op: Operation, name: str, items: list[ChecklistEntry]) -> dict:
    """What a save answers with, instead of closing without a word: how many are ticked,
    which are still open and what waits for them."""
    checklist = CHECKLISTS[name]
    open_items = [i.label for i in items if not i.checked]
    done = len(items) - len(open_items)
    if open_items:
        waits = " Destructive steps wait until every item is ticked." if name == "before" else ""
        text = (
            f":clipboard: Saved: {done} of {plural(len(items), 'item')} ticked.{waits}"
            "\n*Still open:*\n" + "\n".join(f"• {label}" for label in open_items)
        )
    else:
        text = f":white_check_mark: Saved: all {plural(len(items), 'item')} ticked."
        text += " The operation goes on." if name == "before" else ""
    blocks = [section(text), context(f"Operation `{op.id}` on *{op.environment}*")]
    return modal(Callback.CHECKLIST_SAVED, checklist_title(checklist.title), blocks, close="Close")


# --- history and home -------------------------------------------------------------------


def _operation_line(op: Operation, approvers: list[str] | None) -> str:
    people = ", ".join(f"<@{a}>" for a in approvers or [])
    who = f"<@{op.requester}>" + (f", approved by {people}" if people else "")
    end = f" - {shown_utc(op.finished_at)}" if op.finished_at else ""
    line = (
        f"{STATUS_EMOJI.get(op.status, '')} `{op.id}` *{runbook_name(op.runbook)}*"
        f" on {op.environment}:"
        f" {status_words(op.status)} - {who} - {shown_utc(op.created_at)}{end}"
    )
    # What happened, for an end that is not plain success ("traffic switched; re-apply
    # declined", what changed before a failure or a cancel).
    if op.result and op.status != OperationStatus.SUCCEEDED and op.finished_at:
        line += f"\n      {cut(with_mentions(op.result, {op.requester, *(approvers or [])}), 300)}"
    return line


def history_message(ops: list[Operation], approvers: dict[str, list[str]]) -> dict:
    if not ops:
        return info_message("No operations yet. Try `/rollback drill` to rehearse.")
    lines = [_operation_line(op, approvers.get(op.id)) for op in ops]
    blocks = [header("Recent rollback operations")]
    blocks += [section("\n".join(lines[i : i + 10])) for i in range(0, len(lines), 10)]
    return {"text": "Recent rollback operations", "blocks": fit(blocks)}


def home_view(
    active: list[Operation], recent: list[Operation], approvers: dict[str, list[str]]
) -> dict:
    blocks = [
        header("rollback-bot"),
        section("Runs the database rollback runbook. Type `/rollback help` in a channel."),
        divider(),
        section("*Active operations*"),
    ]
    if active:
        blocks += [section(_operation_line(op, approvers.get(op.id))) for op in active]
    else:
        blocks.append(context("No active operations."))
    blocks += [divider(), section("*Recent history*")]
    if recent:
        blocks += [section(_operation_line(op, approvers.get(op.id))) for op in recent]
    else:
        blocks.append(context("Nothing yet. `/rollback drill` rehearses the procedure safely."))
    return {"type": "home", "blocks": fit(blocks, VIEW_BLOCKS_MAX)}
