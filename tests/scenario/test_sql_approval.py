"""Option 4 against the issue's reproductions, through the rig (signed requests into the bot,
Web API calls on the fake Slack) and a real PostgreSQL: what an unapproved requester reads
stays with them, the approver is shown every statement, and the approval binds the dry
run's row counts."""

from __future__ import annotations

import json

from bot.slack.ids import Action, Callback
from tests.scenario.test_drill import approval_message
from tests.scenario.test_sql import (  # noqa: F401 - db is a fixture
    complete_checklist_in,
    db,
    decision_message,
    open_modal,
    submit,
)


def _until_approval_requested(bot, sql, verification=None):
    view_id = open_modal(bot)
    answer = submit(bot, view_id, sql, verification=verification)
    assert answer["response_action"] == "update", answer
    op = bot.wait_until(lambda: bot.store.active_operation("staging"), what="operation")
    complete_checklist_in(bot, view_id)
    channel = approval_message(bot, op)
    bot.wait_status(op.id, "waiting_approval")
    return op, channel


def _everything_posted(bot) -> str:
    """Every message and edit the bot sent to Slack (not its ephemerals)."""
    sent = [c.args for c in bot.slack.calls if c.method in ("chat.postMessage", "chat.update")]
    return json.dumps(sent)


def _audit_text(bot, op_id) -> str:
    return json.dumps([(a.message, a.detail) for a in bot.store.audit(op_id)], default=str)


def test_rows_read_before_approval_reach_only_the_requester(bot, db):  # noqa: F811
    sql = "SELECT email FROM users ORDER BY id;\nDELETE FROM users WHERE id = 2;"
    op, _ = _until_approval_requested(bot, sql, verification="SELECT email FROM users")
    mine = bot.wait_until(lambda: bot.slack.ephemerals(user="U_ALICE"), what="ephemeral")
    assert "a@example.com" in json.dumps(mine) and "c@example.com" in json.dumps(mine)
    # (The feed posts in order: the approval request came after the dry run's messages.)
    # Nobody else, no channel message, no audit record holds a row of the users table.
    assert "@example.com" not in _everything_posted(bot)
    assert "@example.com" not in _audit_text(bot, op.id)
    assert "@example.com" not in bot.store.approvals(op.id)[0].plan_text
    assert all(e["user"] == "U_ALICE" for e in bot.slack.ephemerals())
    # ... while the channel has the counts.
    assert "DELETE users: *1 row*" in _everything_posted(bot)


def _modal_text(view: dict) -> str:
    pieces = [
        b["text"]["text"].removeprefix("```").removesuffix("```")
        for b in view["blocks"]
        if b["type"] == "section"
    ]
    text = "".join(pieces).replace("`\u200b", "`")
    return text.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")


def full_plan(bot, channel: str, user: str = "U_BOB") -> tuple[str, dict]:
    """ "View full plan" clicked and every page read: the text and the last page's view."""
    bot.signer.block_action(Action.VIEW_PLAN, None, user=user, channel=channel)
    opened = bot.slack.wait_for(
        "views.open", where=lambda c: c.args["view"]["callback_id"] == Callback.PLAN
    )[-1]
    view = opened.response["view"]
    text = _modal_text(view)
    while any(
        e.get("action_id") == f"{Action.PLAN_PAGE}_next"
        for b in view["blocks"]
        if b["type"] == "actions"
        for e in b["elements"]
    ):
        updates = len(bot.slack.calls_to("views.update"))
        bot.signer.block_action(f"{Action.PLAN_PAGE}_next", None, user=user, view=view)
        view = bot.slack.wait_for("views.update", count=updates + 1)[-1].response["view"]
        text += _modal_text(view)
    return text, view


def test_a_delete_after_120_harmless_statements_is_shown_to_the_approver_and_backed_up(
    bot,
    db,  # noqa: F811
):
    hidden = "WITH gone AS (DELETE FROM users WHERE id = 2 RETURNING id) SELECT count(*) FROM gone;"
    sql = "SELECT 1;\n" * 120 + "DELETE FROM users WHERE id = 3;\n" + hidden
    op, channel = _until_approval_requested(bot, sql)
    approval = bot.store.approvals(op.id)[0]
    stamp = op.params["backup_stamp"]

    # The approval message itself lists what writes, first, with its count and backup.
    message = next(m for m in bot.slack.messages(channel) if "Approval needed" in m["text"])
    shown = json.dumps(message["blocks"])
    assert "statement 121, line 121" in shown and "DELETE FROM users WHERE id = 3" in shown
    assert "statement 122, line 122" in shown and "DELETE FROM users WHERE id = 2" in shown
    assert f"backup users_backup_{stamp}" in shown

    # "View full plan" opens every character of what the approval is bound to.
    text, view = full_plan(bot, channel)
    assert text == approval.plan_text
    assert approval.plan_hash in json.dumps(view["blocks"])

    bot.signer.block_action(Action.APPROVE, None, user="U_BOB", channel=channel)
    decision_message(bot)
    bot.signer.block_action(f"{Action.DECIDE}_commit", None, user="U_ALICE", channel=channel)
    bot.wait_status(op.id, "succeeded")
    assert db.execute("SELECT id FROM users ORDER BY id").fetchall() == [(1,)]
    backups = db.execute(
        "SELECT tablename FROM pg_tables WHERE tablename LIKE 'users_backup_%' ORDER BY 1"
    ).fetchall()
    kept = sorted(
        row for (name,) in backups for row in db.execute(f'SELECT id, email FROM "{name}"')
    )
    assert kept == [(2, "b@example.com"), (3, "c@example.com")]


def test_rows_added_after_the_dry_run_need_a_new_approval_showing_both(bot, db):  # noqa: F811
    db.execute(
        "CREATE TABLE projects (id int PRIMARY KEY, name text);"
        " CREATE TABLE proposals (id serial PRIMARY KEY, project_id int);"
        " INSERT INTO projects SELECT n, 'p' || n FROM generate_series(1, 10) AS n"
    )
    sql = "DELETE FROM projects WHERE id IN (SELECT project_id FROM proposals);"
    op, channel = _until_approval_requested(bot, sql)
    assert "projects: 0 rows" in bot.store.approvals(op.id)[0].plan_text
    # Between the dry run the approver saw and the click, the rows it selects appear.
    db.execute("INSERT INTO proposals (project_id) SELECT generate_series(1, 10)")
    bot.signer.block_action(Action.APPROVE, None, user="U_BOB", channel=channel)

    bot.wait_until(lambda: len(bot.store.approvals(op.id)) == 2, what="a new approval")
    first, second = bot.store.approvals(op.id)
    assert first.status == "approved" and second.status == "pending"
    assert "approved 0 rows, now 10 rows" in second.plan_text
    assert second.plan_hash != first.plan_hash
    bot.wait_status(op.id, "waiting_approval")
    assert bot.store.step(op.id, "apply").status == "pending"
    assert db.execute("SELECT count(*) FROM projects").fetchone() == (10,)  # rolled back
    assert "plan_changed" in [a.event for a in bot.store.audit(op.id)]
    bot.slack.wait_for(
        "chat.postMessage",
        where=lambda c: "approved 0 rows, now 10 rows" in json.dumps(c.args.get("blocks")),
    )

    # The new approval is for the 10 rows; it runs with their backup.
    bot.signer.block_action(Action.APPROVE, None, user="U_BOB", channel=channel)
    decision_message(bot)
    bot.signer.block_action(f"{Action.DECIDE}_commit", None, user="U_ALICE", channel=channel)
    bot.wait_status(op.id, "succeeded")
    assert db.execute("SELECT count(*) FROM projects").fetchone() == (0,)
    (backup,) = db.execute(
        "SELECT tablename FROM pg_tables WHERE tablename LIKE 'projects_backup_%'"
    ).fetchone()
    assert db.execute(f'SELECT count(*) FROM "{backup}"').fetchone() == (10,)


def test_a_requester_outside_the_incident_channel_gets_the_rows_as_a_direct_message(
    bot_factory,
    db,  # noqa: F811
):
    bot = bot_factory(staging_extra='incident_channel = "#inc-db"')
    members = {"U_BOB", "U_DAVE", bot.slack.bot_user_id}  # not the requester, U_ALICE
    channel = bot.slack.add_channel("inc-db", members=members)
    view_id = open_modal(bot)
    submit(bot, view_id, "DELETE FROM users WHERE id = 2;", verification="SELECT email FROM users")
    direct = bot.slack.wait_for(
        "chat.postMessage", where=lambda c: c.args.get("channel") == "U_ALICE"
    )[-1]
    assert "a@example.com" in json.dumps(direct.args["blocks"])
    assert "@example.com" not in json.dumps(
        [m.get("blocks") for m in bot.slack.messages(channel)] + bot.slack.ephemerals()
    )
