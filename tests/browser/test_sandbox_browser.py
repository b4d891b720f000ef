"""`rollback-bot sandbox` in a real browser. Debian's chromium (apt package
`chromium`, driven by Playwright through its own executable, never a browser download) runs
the runbook's option 1 end to end on the sandbox's Slack look-alike page: alice resolves
the migration that failed mid-way on staging, confirms, ticks the before-checklist, bob
approves, and the status message says finished. Screenshots go to tests/browser/screenshots/
(gitignored); UPDATE_README_SCREENSHOT=1 also refreshes docs/sandbox.png for the README.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from bot.sandbox.demo import FAILED
from tests.browser.helpers import save_checklist, shot, type_command


def test_resolve_with_approval_in_the_browser(page):
    from playwright.sync_api import expect

    # alice asks for the status first: the failed migration and its diagnosis.
    type_command(page, "/rollback status --env staging")
    messages = page.get_by_role("log", name="messages")
    expect(messages).to_contain_text("2 of 3 statements took effect")
    expect(messages).to_contain_text("Only visible to you")

    # The resolve modal opens, then fills in with the diagnosis and the undo SQL.
    type_command(page, f"/rollback resolve {FAILED} --env staging")
    modal = page.get_by_role("dialog")
    expect(modal).to_contain_text("will be marked rolled back")
    expect(modal).to_contain_text('DROP TABLE IF EXISTS "public"."Proposal"')
    shot(page, "1-resolve-confirm")
    modal.get_by_role("button", name="Continue").click()

    # The before-checklist modal: every item a person must tick.
    checklist = page.get_by_role("dialog", name=re.compile("Before rollback"))
    expect(checklist).to_be_visible()
    boxes = checklist.get_by_role("checkbox")
    assert boxes.count() >= 3
    for n in range(boxes.count()):
        boxes.nth(n).check()
    shot(page, "2-before-checklist")
    save_checklist(page, checklist)

    # The incident channel appears; the approval request waits in it.
    incident = re.compile(r"inc-\d{8}-rollback-resolve-staging")
    page.locator("#channels a", has_text=incident).click()
    expect(messages).to_contain_text("Approval needed")
    expect(messages).to_contain_text("prisma migrate resolve --rolled-back")

    # alice cannot approve her own request; bob can.
    page.get_by_label("Acting as").select_option("U_BOB")
    expect(page.get_by_label("Acting as")).to_have_value("U_BOB")
    shot(page, "3-approval-requested")
    messages.get_by_role("button", name="Approve").first.click()
    page.get_by_role("alertdialog").get_by_role("button", name="Approve").click()

    # The live status message is edited in place until the operation has finished.
    expect(messages).to_contain_text("Approved", timeout=30_000)
    expect(messages).to_contain_text("Finished", timeout=60_000)
    expect(messages.locator(".edited").first).to_be_visible()
    thread_link = messages.locator(".replies").first
    thread_link.click()
    thread = page.get_by_role("complementary", name="thread")
    expect(thread).to_contain_text("marked rolled back", timeout=30_000)
    final = shot(page, "4-finished")
    if os.environ.get("UPDATE_README_SCREENSHOT"):
        # docs/sandbox.png is committed; refreshed on purpose only, not by every run.
        (Path(__file__).parents[2] / "docs" / "sandbox.png").write_bytes(final.read_bytes())

    # The history says so too: alice's status now shows the migration rolled back.
    page.get_by_label("Acting as").select_option("U_ALICE")
    page.locator("#channels a", has_text="engineering").click()
    type_command(page, "/rollback status --env staging")
    expect(messages).to_contain_text(re.compile(r"Rolled back\s*1"))
