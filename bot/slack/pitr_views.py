"""Point-in-time recovery in Slack: the modal that chooses the recovery point, and the cards
its steps publish (recovery point, verification side by side, traffic switch with Undo)."""

from __future__ import annotations

from bot.clock import shown_utc, utcnow
from bot.errors import UserError
from bot.runbooks.pitr.choices import FRESH, MODES, REUSE, RecoveryChoices, snapshot_age
from bot.slack.blocks import (
    actions,
    button,
    confirm_dialog,
    context,
    cut,
    escape,
    fit,
    modal,
    plain,
    section,
)
from bot.slack.cards import card_renderer
from bot.slack.ids import Action, Block, Callback
from bot.slack.values import EnvironmentRef, FinalSnapshotChoice, OperationRef
from bot.store.records import CardKind, Operation

TITLE = "Point-in-time recovery"  # modal titles: at most 24 characters
FIELD_BLOCKS = {
    "mode": Block.PITR_MODE,
    "date": Block.PITR_DATE,
    "time": Block.PITR_TIME,
    "target": Block.PITR_TARGET,
    "instance_class": Block.PITR_CLASS,
    "backup": Block.PITR_BACKUP,
}
_ELEMENT = "value"


def _modal(env: str, blocks: list[dict], submit: bool = False) -> dict:
    return modal(
        Callback.PITR,
        TITLE,
        blocks,
        submit="Continue" if submit else None,
        metadata=EnvironmentRef(env),
        close="Close",
    )


def loading_modal(env: str, source: str) -> dict:
    # Opened at once: Slack's trigger_id lasts 3 s, the RDS and history look-ups may not.
    return _modal(
        env, [section(f":hourglass: Reading snapshots and history of `{escape(source)}`...")]
    )


def error_modal(env: str, error: UserError) -> dict:
    text = f":warning: {escape(error.message)}" + (f"\n{escape(error.hint)}" if error.hint else "")
    return _modal(env, [section(text), context("Nothing was changed.")])


def _input(block_id: str, label: str, element: dict, hint: str | None = None) -> dict:
    block = {
        "type": "input",
        "block_id": block_id,
        "label": plain(label, 2000),
        "element": {"action_id": _ELEMENT, **element},
    }
    if hint:
        block["hint"] = plain(hint, 2000)
    return block


def _option(value: str, label: str) -> dict:
    return {"text": plain(label, 75), "value": value}


def _restore_summary(c: RecoveryChoices) -> str:
    s, w, point = c.source, c.window, c.suggestion.at
    snap = c.suggested_snapshot
    latest = shown_utc(w.latest) if w.latest else "none (backups off)"
    lines = [
        f"*Restore `{escape(s.id)}`* ({escape(s.instance_class)}, {escape(s.engine)}, Multi-AZ"
        f" {'on' if s.multi_az else 'off'}) on *{c.environment}* into a new instance.",
        f"Latest restorable time: {latest} · retention {w.retention_days} days",
        f"Suggested restore point: *{shown_utc(point)}*, {escape(c.suggestion.reason)}",
        "Latest snapshot before it: "
        + (
            f"`{escape(snap.id)}` ({snap.type}, {shown_utc(snap.created, 'minutes')})"
            if snap
            else "none"
        ),
    ]
    return "\n".join(lines)


def restore_modal(c: RecoveryChoices) -> dict:
    """Ids and names from AWS (instances, snapshots, groups) are escaped like any data."""
    s, w, point = c.source, c.window, c.suggestion.at
    recent = [
        f"`{escape(x.id)}` {x.type} {x.created:%Y-%m-%d %H:%M}"
        for x in c.snapshots[-5:]
        if x.created
    ]
    modes = [_option(value, label) for value, label in MODES.items()]
    initial = modes[1] if w.latest else modes[0]
    groups = escape(", ".join(s.vpc_security_group_ids) or "-")
    blocks = [
        section(_restore_summary(c)),
        context(f"{len(c.snapshots)} snapshots; latest: " + (", ".join(recent) or "none")),
        _input(
            Block.PITR_MODE,
            "Restore from",
            {"type": "radio_buttons", "options": modes, "initial_option": initial},
        ),
        _input(
            Block.PITR_DATE,
            "Date (UTC)",
            {"type": "datepicker", "initial_date": f"{point:%Y-%m-%d}"},
        ),
        _input(
            Block.PITR_TIME,
            "Time (UTC)",
            {"type": "timepicker", "initial_time": f"{point:%H:%M}", "timezone": "UTC"},
            "Exact time: the restore point. Snapshot: the latest snapshot before it is used.",
        ),
        _input(
            Block.PITR_TARGET,
            "New instance id",
            {"type": "plain_text_input", "initial_value": c.default_target, "max_length": 63},
            "1-63 letters, digits and hyphens; starts with a letter; no -- and no trailing -.",
        ),
        _input(
            Block.PITR_CLASS,
            "Instance class",
            {"type": "plain_text_input", "initial_value": s.instance_class, "max_length": 40},
        ),
        *_backup_choice(c),
        context(
            f"The new instance copies the source's VPC security groups ({groups}), subnet group"
            f" ({escape(s.subnet_group or '-')}), parameter group"
            f" ({escape(s.parameter_group or '-')}), Multi-AZ"
            " and tags: a restore otherwise gets the defaults. The source is not changed."
            " The restore and the traffic switch each need an approval."
        ),
    ]
    return _modal(c.environment, blocks, submit=True)


def _backup_choice(c: RecoveryChoices) -> list[dict]:
    """Backup current state: a fresh snapshot unless the requester picks a recent one."""
    fresh = _option(FRESH, "Take a fresh snapshot now")
    if c.reusable_snapshot is None:
        return [context("Backup current state: a fresh manual snapshot is taken first.")]
    r = c.reusable_snapshot
    reuse = _option(f"{REUSE}{r.id}", f"Reuse {r.id}"[:75])
    return [
        _input(
            Block.PITR_BACKUP,
            "Backup current state",
            {"type": "radio_buttons", "options": [fresh, reuse], "initial_option": fresh},
            # A plain_text hint: shown as written, nothing to escape (and no mrkdwn).
            f"{r.id} was {snapshot_age(r, c.now or utcnow())}: changes since then are not in"
            " it. Reuse it only if nothing changed since.",
        )
    ]


def form_values(state: dict) -> dict[str, str | None]:
    """The modal's state.values as the runbook's field names."""

    def value(block: str) -> str | None:
        entry = state.get(block, {}).get(_ELEMENT, {})
        picked = entry.get("selected_option")
        return (
            (picked or {}).get("value")
            or entry.get("selected_date")
            or entry.get("selected_time")
            or entry.get("value")
        )

    return {field: value(block) for field, block in FIELD_BLOCKS.items()}


def field_errors(errors: dict[str, str]) -> dict[str, str]:
    # Slack shows at most ~150 characters under a field.
    return {FIELD_BLOCKS[f]: cut(m, 150) for f, m in errors.items()}


# --- cards -------------------------------------------------------------------------------------


@card_renderer(CardKind.PITR_RECOVERY_POINT)
def recovery_point_card(op: Operation, title: str, data: dict) -> dict:
    if data["mode"] == "snapshot":
        point = (
            f"snapshot `{data['snapshot_id']}` (latest before {shown_utc(data['chosen_point'])})"
        )
    else:
        point = f"exact time {shown_utc(data['chosen_point'])}"
    rows = "\n".join(
        f"{sid:<60} {kind:<9} {shown_utc(created)} {status}"
        for sid, kind, created, status in data["snapshots"]
    )
    blocks = [
        section(
            f":round_pushpin: *{title}*: {point}",
            fields=[
                f"*Latest restorable*\n{shown_utc(data['latest_restorable'])}",
                f"*Earliest (approx.)*\n{shown_utc(data['earliest_restorable'])}",
                f"*Retention*\n{data['retention_days']} days",
                f"*Snapshots*\n{data['snapshot_count']}",
            ],
        ),
        section(f"```{cut(rows or 'no snapshots', 2900)}```"),
    ]
    return {"text": f"{title}: {point}", "blocks": blocks}


def _cell(result: dict) -> str:
    if result["error"]:
        return f":x: error: {cut(result['error'], 300)}"
    mark = ":white_check_mark:" if result["ok"] else ":x:"
    return f"{mark} `{cut(result['value'], 200)}`"


@card_renderer(CardKind.PITR_VERIFICATION)
def verification_card(op: Operation, title: str, data: dict) -> dict:
    blocks = [section(f":mag: *{title}*")]
    for row in data["rows"]:
        expect = f" (expect {row['expect']})" if row["expect"] else ""
        blocks.append(
            section(
                f"*{row['name']}*{expect}\n```{cut(row['sql'], 500)}```",
                fields=[
                    f"*Current {data['environment']}*\n{_cell(row['current'])}",
                    f"*Restored {data['target']}*\n{_cell(row['restored'])}",
                ],
            )
        )
    failed = [r["name"] for r in data["rows"] if not r["restored"]["ok"]]
    summary = f"{len(failed)} failed on the restored instance" if failed else "all passed"
    return {"text": f"{title}: {summary}", "blocks": fit(blocks)}


@card_renderer(CardKind.PITR_SWITCH)
def switch_card(op: Operation, title: str, data: dict) -> dict:
    ref = OperationRef(data["operation"]).encode()
    if data.get("undone_by"):  # the buttons go: nothing to undo, and the old one is live
        text = (
            f":leftwards_arrow_with_hook: *{title}*\nSecret `{data['secret_id']}` is back at"
            f" version `{data['previous_version']}` (`{data['from']}`), undone by operation"
            f" {data['undone_by']}. `{data['old_instance']}` serves traffic again and is not"
            " deleted."
        )
        return {"text": f"{title} ({data['secret_id']})", "blocks": [section(text)]}
    blocks = [
        section(
            f":twisted_rightwards_arrows: *{title}*\nSecret `{data['secret_id']}`:"
            f"\nfrom `{data['from']}`\nto `{data['to']}`",
            fields=[
                f"*Previous version (AWSPREVIOUS)*\n`{data['previous_version']}`",
                f"*New version (AWSCURRENT)*\n`{data['version']}`",
            ],
        ),
        actions(
            "pitr_switch_actions",
            button(
                "Undo switch",
                Action.PITR_UNDO_SWITCH,
                ref,
                confirm=confirm_dialog(
                    "Undo the traffic switch?",
                    "Starts an operation that makes the previous secret version current again."
                    " It needs the checklist and an approval.",
                    "Start undo",
                ),
            ),
            button(
                "Delete old instance",
                Action.PITR_CLEANUP,
                ref,
                style="danger",
                confirm=confirm_dialog(
                    f"Delete {data['old_instance']}?",
                    "Starts an operation that deletes the old instance after its own approval."
                    " A final snapshot is always taken.",
                    "Start cleanup",
                ),
            ),
        ),
    ]
    return {"text": f"{title} ({data['secret_id']})", "blocks": blocks}


@card_renderer(CardKind.PITR_SWITCH_NOTICE, notify=True)
def switch_notice(op: Operation, title: str, data: dict) -> dict:
    """Posted in the environment's notify channel (#engineering), not the incident thread."""
    where = f" Details in <#{op.incident_channel}>." if op.incident_channel else ""
    text = (
        f":twisted_rightwards_arrows: *{title}*\nPoint-in-time recovery {data['operation']}"
        f" by <@{data['requester']}>: applications reading `{data['secret_id']}` now use"
        f" `{data['target']}`, restored to {shown_utc(data['chosen_point'])}. Data written after"
        f" that point is only on the old instance `{data['old_instance']}`.{where}"
    )
    return {"text": cut(f"{title}: {data['target']}", 3000), "blocks": [section(cut(text, 3000))]}


@card_renderer(CardKind.PITR_CLEANUP_SCHEDULED)
def cleanup_card(op: Operation, title: str, data: dict) -> dict:
    if data.get("cancelled"):
        text = (
            f":no_entry_sign: *{title}*\nThe deletion of `{data['old_instance']}` will not"
            f" happen: {data['cancelled']}"
            + (f" by <@{data['cancelled_by']}>" if data.get("cancelled_by") else "")
            + "."
        )
        return {"text": title, "blocks": [section(text)]}
    skipped_by = data.get("skip_final_snapshot_by")
    if skipped_by:
        snapshot = (
            f":warning: *No final snapshot*: <@{skipped_by}> chose to skip it. The last copy"
            " of this instance's data is thrown away when it is deleted."
        )
    else:
        snapshot = "A final snapshot is taken before the deletion."
    toggle = (
        button(
            "Keep the final snapshot",
            Action.PITR_CLEANUP_FINAL_SNAPSHOT,
            FinalSnapshotChoice(data["operation"], skip=False).encode(),
        )
        if skipped_by
        else button(
            "Skip the final snapshot",
            Action.PITR_CLEANUP_FINAL_SNAPSHOT,
            FinalSnapshotChoice(data["operation"], skip=True).encode(),
            style="danger",
            confirm=confirm_dialog(
                "Delete without a final snapshot?",
                f"{data['old_instance']} would be deleted with no final snapshot: its data"
                " after the restore point would be gone for good.",
                "Skip the snapshot",
            ),
        )
    )
    blocks = [
        section(
            f":wastebasket: *{title}*\nThe old instance `{data['old_instance']}` is due for"
            f" deletion on {shown_utc(data['run_at'])}. Then a cleanup operation starts; it needs"
            f" the checklist and an approval.\n{snapshot}"
        ),
        actions(
            "pitr_cleanup_actions",
            button(
                "Cancel cleanup",
                Action.PITR_CLEANUP_CANCEL,
                OperationRef(data["operation"]).encode(),
            ),
            toggle,
        ),
    ]
    return {"text": f"{title} ({shown_utc(data['run_at'])})", "blocks": blocks}
