"""/rollback sql through the rig, as Slack would drive it, against a real
PostgreSQL: modal, checklist, dry-run card, approval, held transaction, Commit/Roll back."""

from __future__ import annotations

import psycopg
import pytest

from bot.slack.ids import Action, Block, Callback
from tests.scenario.test_drill import _human_items, approval_message
from tests.unit.sql.catalog_snapshot import catalog_snapshot_of

SETUP = """
CREATE TABLE users (id int PRIMARY KEY, email text NOT NULL, column_to_remove text);
INSERT INTO users VALUES (1, 'a@example.com', 'keep-1'), (2, 'b@example.com', NULL),
    (3, 'c@example.com', 'keep-3');
"""
DROP_COLUMN = "ALTER TABLE users DROP COLUMN column_to_remove;"
VERIFY = "SELECT id, email FROM users ORDER BY id LIMIT 10"


@pytest.fixture
def db(pg_url, monkeypatch):
    monkeypatch.setenv("STAGING_DATABASE_URL", pg_url)
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute(SETUP)
        yield conn


def snapshot(conn) -> tuple:
    rows = conn.execute(
        "SELECT md5(string_agg(u::text, ',' ORDER BY u.id)) FROM users u"
    ).fetchone()
    return catalog_snapshot_of(conn), rows


def open_modal(bot, user="U_ALICE", env="staging") -> str:
    assert bot.signer.slash(f"sql --env {env}", user=user).status == 200
    call = bot.slack.wait_for(
        "views.open", where=lambda c: c.args["view"]["callback_id"] == Callback.SQL
    )[-1]
    return call.response["view"]["id"]


def submit(bot, view_id, sql, verification=VERIFY, user="U_ALICE"):
    values = {Block.SQL_TEXT: sql, Block.SQL_REASON: "INC-42: column broke the app"}
    if verification:
        values[Block.SQL_VERIFICATION] = verification
    response = bot.signer.submit_view(view_id, user=user, values=values)
    assert response.status == 200
    return response.json()


def complete_checklist_in(bot, view_id, user="U_ALICE"):
    view = bot.slack.views()[view_id]
    assert view["callback_id"] == Callback.CHECKLIST
    items = _human_items(view)
    values = {
        b["block_id"]: items
        for b in view["blocks"]
        if b.get("block_id", "").startswith(Block.CHECKLIST_ITEMS)
    }
    assert bot.signer.submit_view(view_id, user=user, values=values).status == 200


def card(bot, title_start: str):
    return bot.slack.wait_for(
        "chat.postMessage", where=lambda c: str(c.args.get("text", "")).startswith(title_start)
    )[-1]


def decision_buttons(bot):
    """The Commit / Roll back message, posted while the transaction is held."""
    commit = f"{Action.DECIDE}_commit"
    bot.slack.wait_for("chat.postMessage", where=lambda c: commit in str(c.args.get("blocks")))


def until_decision(bot, sql=DROP_COLUMN, *, buttons=True):
    """Slash command to the held transaction waiting for Commit / Roll back."""
    view_id = open_modal(bot)
    answer = submit(bot, view_id, sql)
    assert answer["response_action"] == "update"
    op = bot.wait_until(lambda: bot.store.active_operation("staging"), what="operation")
    assert op.params["sql"] == sql
    # The user went straight on from the SQL modal to the before-checklist.
    complete_checklist_in(bot, view_id)
    channel = approval_message(bot, op)
    bot.wait_status(op.id, "waiting_approval")
    bot.signer.block_action(Action.APPROVE, None, user="U_BOB", channel=channel)
    if buttons:
        decision_buttons(bot)
    return op, channel


@pytest.mark.both_transports
def test_drop_column_flow_in_staging_commits_with_a_backup(bot, db):
    before = snapshot(db)
    view_id = open_modal(bot)
    modal = bot.slack.views()[view_id]
    sql_input = next(b for b in modal["blocks"] if b.get("block_id") == Block.SQL_TEXT)
    assert sql_input["element"]["max_length"] == 3000 and sql_input["element"]["multiline"]

    answer = submit(bot, view_id, DROP_COLUMN)
    assert answer["response_action"] == "update"
    op = bot.wait_until(lambda: bot.store.active_operation("staging"), what="operation")
    stamp = op.params["backup_stamp"]
    backup = f"users_backup_{stamp}"

    # The dry run's card, in the incident thread, before anyone approves.
    dry = card(bot, "Dry run on staging")
    assert dry.args["thread_ts"] == bot.store.operation(op.id).status_ts
    dry_text = str(dry.args["blocks"])
    assert backup in dry_text and "3 rows from `users`" in dry_text
    assert "`SELECT id, email FROM users ORDER BY id LIMIT 10`: 3 rows" in dry_text
    assert "b@example.com" not in dry_text  # counts only in the channel
    # The verification result as a table, for the requester alone, in the incident thread.
    mine = bot.wait_until(lambda: bot.slack.ephemerals(user="U_ALICE"), what="ephemeral")
    assert "b@example.com" in str(mine[-1]["blocks"]) and "Only you can see" in str(mine[-1])
    assert mine[-1]["thread_ts"] == dry.args["thread_ts"]
    assert snapshot(db) == before  # the dry run was rolled back

    complete_checklist_in(bot, view_id)
    channel = approval_message(bot, op)
    plan = bot.store.approvals(op.id)[0].plan_text
    assert DROP_COLUMN in plan and op.params["sql_sha256"] in plan and backup in plan
    assert plan.startswith(f"MANUAL SQL on staging, operation {op.id}") and VERIFY in plan
    assert f"backup {backup} (columns of users): 3 rows" in plan
    assert "b@example.com" not in plan  # no row of data in what the channel and log keep

    bot.signer.block_action(Action.APPROVE, None, user="U_BOB", channel=channel)
    decision_buttons(bot)
    # The evidence is in the Commit / Roll back message itself: counts, backups, the result.
    asked = str(decision_message(bot)["blocks"])
    assert f"{backup} (columns of users): 3 rows, checked" in asked
    assert "Verification query (SELECT id, email FROM users ORDER BY id LIMIT 10)" in asked
    assert "b@example.com" in asked  # approved by a second person: the result is shown
    # ... as a table in a code block of its own (its fences once broke inside the prompt).
    sections = [b["text"]["text"] for b in decision_message(bot)["blocks"] if "text" in b]
    (table,) = [t for t in sections if t.startswith("```")]
    assert table.startswith("```id | email\n---+-") and table.count("```") == 2
    assert "b@example.com" not in str([t for t in sections if t != table])
    # Not committed yet: another session still sees the column and no backup.
    assert db.execute("SELECT to_regclass(%s)", (backup,)).fetchone() == (None,)

    bot.signer.block_action(f"{Action.DECIDE}_commit", None, user="U_ALICE", channel=channel)
    bot.wait_status(op.id, "succeeded")

    columns = [c[2] for c in catalog_snapshot_of(db)["columns"] if c[1] == "users"]
    assert columns == ["email", "id"]
    assert db.execute(f'SELECT * FROM "{backup}" ORDER BY id').fetchall() == [
        (1, "keep-1"),
        (2, None),
        (3, "keep-3"),
    ]
    events = [a.event for a in bot.store.audit(op.id)]
    assert "decision_made" in events and "card" in events
    assert bot.store.operation(op.id).params["backup_tables"] == [backup]


def decision_message(bot) -> dict:
    commit = f"{Action.DECIDE}_commit"
    return bot.slack.wait_for(
        "chat.postMessage", where=lambda c: commit in str(c.args.get("blocks"))
    )[-1].args


def test_roll_back_leaves_the_database_unchanged_and_ends_rolled_back_by_the_requester(bot, db):
    before = snapshot(db)
    op, channel = until_decision(bot)
    bot.signer.block_action(f"{Action.DECIDE}_rollback", None, user="U_ALICE", channel=channel)
    bot.wait_status(op.id, "rolled_back")
    ended = bot.store.operation(op.id)
    assert ended.result.startswith("Rolled back by <@U_ALICE>.")
    assert bot.store.step(op.id, "apply").status == "rolled_back"
    assert snapshot(db) == before
    status = bot.wait_until(
        lambda: [
            m for m in bot.slack.messages(channel) if "Rolled back on purpose" in str(m["blocks"])
        ],
        what="the status message saying rolled back on purpose",
    )
    assert status


def test_no_decision_in_time_rolls_back(bot_factory, db):
    bot = bot_factory(tables_extra="[sql]\ndecision_timeout_seconds = 1")
    before = snapshot(db)
    # A decision that expired before its message went out is shown without buttons.
    op, _ = until_decision(bot, buttons=False)
    bot.wait_status(op.id, "failed")
    assert any(a.event == "decision_expired" for a in bot.store.audit(op.id))
    assert snapshot(db) == before


@pytest.mark.both_transports
def test_a_syntax_error_is_a_field_error_and_starts_nothing(bot, db):
    view_id = open_modal(bot)
    answer = submit(bot, view_id, "DELETE FROM users WHERE id = 1;\nDELET FROM users")
    assert answer["response_action"] == "errors"
    error = answer["errors"][Block.SQL_TEXT]
    assert 'syntax error at or near "DELET"' in error and "line 2, column 1" in error
    assert bot.store.operations(limit=10) == []
    # Slack accepted the errors (they name input blocks of the view).
    assert bot.slack.calls_to("response_action")[-1].response["ok"]


def test_begin_in_the_sql_is_refused(bot, db):
    view_id = open_modal(bot)
    answer = submit(bot, view_id, "BEGIN;\nDELETE FROM users WHERE id = 1;\nCOMMIT;")
    error = answer["errors"][Block.SQL_TEXT]
    assert "BEGIN/COMMIT/ROLLBACK/SAVEPOINT are not allowed" in error and "line 1" in error
    assert bot.store.operations(limit=10) == []


def test_a_verification_query_that_writes_is_a_field_error(bot, db):
    view_id = open_modal(bot)
    answer = submit(bot, view_id, DROP_COLUMN, verification="DELETE FROM users")
    assert "read-only SELECT" in answer["errors"][Block.SQL_VERIFICATION]
    assert bot.store.operations(limit=10) == []


def test_the_requester_cannot_approve_their_own_sql(bot, db):
    before = snapshot(db)
    view_id = open_modal(bot)
    submit(bot, view_id, DROP_COLUMN)
    op = bot.wait_until(lambda: bot.store.active_operation("staging"), what="operation")
    complete_checklist_in(bot, view_id)
    channel = approval_message(bot, op)
    bot.signer.block_action(Action.APPROVE, None, user="U_ALICE", channel=channel)
    reply = bot.wait_until(lambda: bot.slack.responses(), what="refusal")[-1]
    assert "cannot approve your own request" in reply["text"]
    assert bot.store.operation(op.id).status == "waiting_approval"
    assert bot.store.step(op.id, "apply").status == "pending"
    assert snapshot(db) == before


def test_the_dry_run_stops_at_its_own_statement_timeout(bot_factory, db):
    """Before anyone approved, a costly read is cut at the dry run's limit, not the run's."""
    bot = bot_factory(
        tables_extra='[sql]\nstatement_timeout = "60s"\ndry_run_statement_timeout = "200ms"'
    )
    view_id = open_modal(bot)
    costly = "SELECT count(*) FROM generate_series(1, 500000000) AS n;\n" + DROP_COLUMN
    assert submit(bot, view_id, costly)["response_action"] == "update"
    op = bot.wait_until(lambda: bot.store.operations(limit=1), what="operation")[0]
    bot.wait_status(op.id, "failed", timeout=30)
    error = bot.store.step(op.id, "dry_run").error
    assert "statement_timeout" in error, error
    assert op.params["dry_run_statement_timeout"] == "200ms"


def test_the_whole_dry_run_stops_at_its_budget_and_says_so(bot_factory, db):
    """Each read is far under the dry run's statement_timeout, but together they would hold
    the ACCESS EXCLUSIVE lock the ALTER TABLE took for about a minute before anyone
    approved: the budget ([sql] dry_run_total_timeout) stops it and rolls it back."""
    bot = bot_factory(tables_extra='[sql]\ndry_run_total_timeout = "1s"')
    before = snapshot(db)
    view_id = open_modal(bot)
    slow = "SELECT count(*) FROM generate_series(1, 5000000);\n"  # 55 fit in 3,000 characters
    answer = submit(bot, view_id, "ALTER TABLE users ADD COLUMN z int;\n" + slow * 55)
    assert answer["response_action"] == "update", answer
    op = bot.wait_until(lambda: bot.store.operations(limit=1), what="operation")[0]
    bot.wait_status(op.id, "failed", timeout=30)
    error = bot.store.step(op.id, "dry_run").error
    assert "The dry run took longer than 1 s in total" in error, error
    assert "nothing was changed" in error and op.params["dry_run_total_timeout"] == "1s"
    assert snapshot(db) == before
    # The requester reads why where the operation is followed.
    bot.slack.wait_for(
        "chat.postMessage", where=lambda c: "took longer than 1 s in total" in str(c.args)
    )
