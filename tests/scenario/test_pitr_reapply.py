"""PITR's re-apply (issue 15, reproduction 3): "Deploy 1 safe migration(s)" offered a
generated `DROP TABLE "Project"` with its name only. Each candidate is now classified with
revert's analysis on the restored database, data-losing ones are left out of the default,
and the plan the approver signs holds each migration's class, what it destroys and its SQL.
"""

from __future__ import annotations

import psycopg

from bot.slack.ids import Action
from tests.scenario import test_pitr_recovery as recovery
from tests.scenario.test_pitr import approve_next
from tests.scenario.test_pitr_recovery import HARMFUL, SAFE, rds_bot, start_restore

restored_server, restored_pg = recovery.restored_server, recovery.restored_pg
DROPPING = "20260304000000_revert_add_project"


def test_a_data_losing_migration_is_not_called_safe_and_the_plan_shows_the_sql(
    bot_factory, aws, pg_url, restored_pg, monkeypatch, tmp_path
):
    _, bot = rds_bot(bot_factory, aws, pg_url, restored_pg, monkeypatch, tmp_path)
    (tmp_path / "migrations" / DROPPING).mkdir()
    (tmp_path / "migrations" / DROPPING / "migration.sql").write_text('DROP TABLE "Project";\n')
    with psycopg.connect(restored_pg, autocommit=True) as conn:  # on the restored copy
        conn.execute('CREATE TABLE "Project" (id int)')
        conn.execute('INSERT INTO "Project" SELECT generate_series(1, 10)')

    op, _ = start_restore(bot)
    channel = approve_next(bot, op.id, 1)
    approve_next(bot, op.id, 2)
    decision = bot.slack.wait_for(
        "chat.postMessage",
        where=lambda c: c.args.get("channel") == channel and f"{Action.DECIDE}_safe" in str(c.args),
    )[-1]
    text = decision.args["text"]
    assert f"`{SAFE}`: reversible" in text
    assert f"`{DROPPING}`: data-losing" in text and "(10 rows on the restored database)" in text
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
