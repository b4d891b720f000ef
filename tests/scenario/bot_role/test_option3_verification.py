"""Option 3's database side (verification queries on the current and the restored database,
read through the switched secret) as the bot's role."""

from __future__ import annotations

from tests.scenario import test_pitr as flows


def test_pitr_verification_as_the_documented_role(bot_factory, aws, pg_url, monkeypatch):
    flows.test_pitr_restore_verify_switch_and_undo(bot_factory, aws, pg_url, monkeypatch)
