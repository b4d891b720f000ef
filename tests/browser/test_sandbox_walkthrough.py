"""The sandbox walked through as a newcomer would, in a real browser (issue 19): each of the
runbook's options typed as a command, its modals filled, a second person approving through
"Acting as", and the final state checked and photographed (docs/screenshots/, rewritten
only with UPDATE_SCREENSHOTS=1; the assertions always run)."""

from __future__ import annotations

import re

from playwright.sync_api import expect

from tests.browser.helpers import (
    approve,
    final_shot,
    open_channel,
    save_checklist,
    tick_every_box,
    type_command,
)


def test_pitr_restores_real_data_then_switches_traffic_to_it(page, sandbox):
    messages = page.get_by_role("log", name="messages")
    type_command(page, "/rollback pitr --env production")
    recovery = page.get_by_role("dialog", name="Point-in-time recovery")
    # The suggested point is 5 minutes before the failed release started; defaults kept.
    expect(recovery).to_contain_text("Suggested restore point")
    expect(recovery).to_contain_text("before migration 20251208120000_problematic_migration")
    recovery.get_by_role("button", name="Continue").click()

    checklist = page.get_by_role("dialog", name=re.compile("Before rollback"))
    tick_every_box(checklist)
    save_checklist(page, checklist)

    open_channel(page, re.compile(r"inc-\d{8}-rollback-pitr-production"))
    expect(messages).to_contain_text("POINT-IN-TIME RECOVERY on environment production")
    approve(page)

    # The restore completed with a real second database: verification reads both and they
    # differ as a restore to before the release must (the sign-ups since are lost, the
    # failed release's table is gone).
    expect(messages).to_contain_text("SWITCH TRAFFIC on environment production", timeout=60_000)
    messages.locator(".replies").first.click()
    thread = page.get_by_role("complementary", name="thread")
    expect(thread).to_contain_text("Verification: current production database vs restored")
    card = thread.locator(".msg", has_text="Verification: current production database").first
    expect(card).to_contain_text(re.compile(r"Current production\s*✅ 28"))
    expect(card).to_contain_text(re.compile(r"Restored sandbox-production-recovery-\d+\s*✅ 25"))
    expect(card).to_contain_text(re.compile(r"Current production\s*❌ 1"))
    expect(card).to_contain_text(re.compile(r"Restored sandbox-production-recovery-\d+\s*✅ 0"))
    assert any("is database demo_production__" in line for line in sandbox.output)

    approve(page)  # the switch
    # The requester chooses what to re-apply: the failed release is left out; deploy none.
    page.get_by_label("Acting as").select_option("U_ALICE")
    expect(messages).to_contain_text("the failed or harmful one: left out", timeout=60_000)
    messages.get_by_role("button", name="Deploy none").last.click()
    status = messages.locator(".msg").first
    expect(status).to_contain_text(re.compile("Finished|Succeeded"), timeout=60_000)
    expect(thread).to_contain_text("Traffic switched to sandbox-production-recovery-")
    # The picture: every step done beside the verification of the restored database.
    status.scroll_into_view_if_needed()
    card.scroll_into_view_if_needed()
    final_shot(page, "pitr")

    # Production now is the restored database: the failed release never ran there.
    open_channel(page, "engineering")
    type_command(page, "/rollback status --env production")
    latest = messages.locator(".msg.ephemeral").last
    expect(latest).to_contain_text("20251208120000_problematic_migration")
    expect(latest).to_contain_text(re.compile(r"Failed\s*0"))
    expect(latest).to_contain_text(re.compile(r"Pending\s*1"))
    expect(latest).not_to_contain_text("2 of 3 statements took effect")
