"""PITR's re-apply (issue 15, reproduction 3): "Deploy 1 safe migration(s)" offered a
generated `DROP TABLE "Project"` with its name only. Each candidate is now classified with
revert's analysis on the restored database (reversible / data-losing / irreversible, rows
counted there, squawk's findings), only reversible ones are in the default, the failed one
is in no choice, and the plan the approver signs holds each migration's class, what it
destroys and its SQL.
"""

from __future__ import annotations

import psycopg

from bot.slack.ids import Action
from tests.scenario import test_pitr_recovery as recovery
from tests.scenario.test_pitr import approve_next
from tests.scenario.test_pitr_recovery import HARMFUL, SAFE, rds_bot, start_restore

restored_server, restored_pg = recovery.restored_server, recovery.restored_pg
DROPPING = "20260304000000_revert_add_project"
BACKFILL = "20260305000000_backfill_created_at"
BACKFILL_SQL = "UPDATE users SET created_at = now() WHERE created_at IS NULL;\n"


def add_migration(tmp_path, name: str, sql: str) -> None:
    (tmp_path / "migrations" / name).mkdir()
    (tmp_path / "migrations" / name / "migration.sql").write_text(sql)


def project_with_ten_rows(restored_pg: str) -> None:
    with psycopg.connect(restored_pg, autocommit=True) as conn:  # on the restored copy
        conn.execute('CREATE TABLE "Project" (id int)')
        conn.execute('INSERT INTO "Project" SELECT generate_series(1, 10)')


def the_decision(bot, op):
    """Restore and switch approved; returns the re-apply question and its channel."""
    channel = approve_next(bot, op.id, 1)
    approve_next(bot, op.id, 2)
    decision = bot.slack.wait_for(
        "chat.postMessage",
        where=lambda c: c.args.get("channel") == channel and f"{Action.DECIDE}_none" in str(c.args),
    )[-1]
    return decision, channel


def buttons(decision) -> dict[str, str]:
    actions = next(b for b in decision.args["blocks"] if b["type"] == "actions")
    return {e["action_id"]: e["text"]["text"] for e in actions["elements"]}


def test_a_data_losing_migration_is_not_called_safe_and_the_plan_shows_the_sql(
    bot_factory, aws, pg_url, restored_pg, monkeypatch, tmp_path
):
    _, bot = rds_bot(bot_factory, aws, pg_url, restored_pg, monkeypatch, tmp_path)
    add_migration(tmp_path, DROPPING, 'DROP TABLE "Project";\n')
    project_with_ten_rows(restored_pg)

    op, _ = start_restore(bot)
    decision, channel = the_decision(bot, op)
    text = decision.args["text"]
    assert f"`{SAFE}`: reversible" in text
    assert f"`{DROPPING}`: data-losing" in text and 'DROP TABLE "Project" destroys 10 rows' in text
    assert f"`{HARMFUL}`: data-losing (the failed or harmful one: left out)" in text
    assert "Deploy 1 reversible migration'" in str(decision.args["blocks"])
    bot.signer.block_action(f"{Action.DECIDE}_safe", None, user="U_ALICE", channel=channel)

    plan = bot.wait_until(
        lambda: len(bot.store.approvals(op.id)) == 3 and bot.store.approvals(op.id)[2]
    ).plan_text
    assert f"{SAFE}: REVERSIBLE" in plan and "CREATE TABLE orders" in plan
    assert f"  {DROPPING}" not in plan.split("left out")[0]
    assert DROPPING in plan.split("left out")[1].splitlines()[0]
    approve_next(bot, op.id, 3)
    bot.wait_status(op.id, "succeeded")
    with psycopg.connect(restored_pg) as conn:
        assert conn.execute('SELECT count(*) FROM "Project"').fetchone()[0] == 10


def test_the_other_choice_deploys_data_losing_and_irreversible_ones_with_their_class_rows_and_sql(
    bot_factory, aws, pg_url, restored_pg, monkeypatch, tmp_path
):
    """The choice beside the default: its button says which classes it deploys and that the
    failed one stays out; the approver signs each migration's class, what it destroys
    (counted on the restored database), squawk's findings and its whole SQL."""
    _, bot = rds_bot(bot_factory, aws, pg_url, restored_pg, monkeypatch, tmp_path)
    add_migration(tmp_path, DROPPING, 'DROP TABLE "Project";\n')
    add_migration(tmp_path, BACKFILL, BACKFILL_SQL)
    project_with_ten_rows(restored_pg)

    op, _ = start_restore(bot)
    decision, channel = the_decision(bot, op)
    text = decision.args["text"]
    assert f"`{SAFE}`: reversible" in text
    assert f"`{DROPPING}`: data-losing" in text and 'DROP TABLE "Project" destroys 10 rows' in text
    assert f"`{BACKFILL}`: irreversible" in text
    assert "UPDATE users: a data change cannot be undone from its SQL" in text
    # The failed one, counted on the restored copy (3 emails there), is in no choice.
    assert f"`{HARMFUL}`: data-losing (the failed or harmful one: left out)" in text
    assert "DROP COLUMN users.email destroys 3 non-null values" in text
    # squawk's findings, per migration, in the question.
    assert "squawk prefer-identity:" in text.split(f"`{SAFE}`")[1].split(f"`{HARMFUL}`")[0]
    assert "squawk ban-drop-table:" in text.split(f"`{DROPPING}`")[1].split(f"`{BACKFILL}`")[0]
    assert buttons(decision) == {
        f"{Action.DECIDE}_safe": "Deploy 1 reversible migration",
        f"{Action.DECIDE}_none": "Deploy none",
        f"{Action.DECIDE}_all": "Deploy 3, data-losing and irreversible ones too (not the failed"
        " one)",
    }
    bot.signer.block_action(f"{Action.DECIDE}_all", None, user="U_ALICE", channel=channel)

    approval = bot.wait_until(
        lambda: len(bot.store.approvals(op.id)) == 3 and bot.store.approvals(op.id)[2]
    )
    plan = approval.plan_text
    deployed, _, rest = plan.partition("left out")
    assert [m for m in (SAFE, DROPPING, BACKFILL, HARMFUL) if f"  {m}\n" in deployed] == [
        SAFE,
        DROPPING,
        BACKFILL,
    ]
    assert rest.splitlines()[0].endswith(HARMFUL)
    dropping = rest.split(f"{DROPPING}: ")[1].split(f"{BACKFILL}: ")[0]
    assert dropping.startswith("DATA-LOSING\n")
    assert 'DROP TABLE "Project" destroys 10 rows' in dropping
    assert "squawk ban-drop-table:" in dropping
    assert '  sql:\n    DROP TABLE "Project";' in dropping
    backfill = rest.split(f"{BACKFILL}: ")[1]
    assert backfill.startswith("IRREVERSIBLE\n")
    assert f"    {BACKFILL_SQL.strip()}" in backfill
    assert "squawk prefer-identity:" in rest.split(f"{SAFE}: REVERSIBLE")[1]
    # Nothing ran before the approval.
    with psycopg.connect(restored_pg) as conn:
        assert conn.execute('SELECT count(*) FROM "Project"').fetchone()[0] == 10

    approve_next(bot, op.id, 3)
    bot.wait_status(op.id, "succeeded")
    with psycopg.connect(restored_pg) as conn:
        assert conn.execute("SELECT to_regclass('\"Project\"')").fetchone()[0] is None
        applied = conn.execute(
            "SELECT migration_name FROM _prisma_migrations WHERE finished_at IS NOT NULL ORDER BY 1"
        ).fetchall()
        assert [r[0] for r in applied] == ["20260301_init", SAFE, DROPPING, BACKFILL]
        emails = conn.execute("SELECT count(email) FROM users").fetchone()[0]
        assert emails == 3  # the failed migration did not run
