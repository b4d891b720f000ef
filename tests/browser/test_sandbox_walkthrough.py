"""The sandbox walked through as a newcomer would, in a real browser (issue 19): each of the
runbook's options typed as a command, its modals filled, a second person approving through
"Acting as", and the final state checked and photographed (docs/screenshots/, rewritten
only with UPDATE_SCREENSHOTS=1; the assertions always run)."""

from __future__ import annotations

import re
import shutil

from playwright.sync_api import expect

from bot.sandbox.demo import FAILED, PROJECTS
from tests.browser.helpers import (
    act_as,
    approve,
    final_shot,
    open_channel,
    save_checklist,
    tick_every_box,
    type_command,
)

# The README's pictures: small enough to commit, wide enough to read.
DOCS_VIEWPORT = {"width": 1280, "height": 800}


def test_pitr_restores_real_data_then_switches_traffic_to_it(page, sandbox):
    page.set_viewport_size(DOCS_VIEWPORT)
    messages = page.get_by_role("log", name="messages")
    type_command(page, "/rollback pitr --env production")
    recovery = page.get_by_role("dialog", name="Point-in-time recovery")
    # The suggested point is 5 minutes before the failed release started; defaults kept.
    expect(recovery).to_contain_text("Suggested restore point")
    expect(recovery).to_contain_text("before migration 20251208120000_problematic_migration")
    recovery.get_by_role("button", name="Continue").click()

    checklist_then_incident_channel(page, "pitr", "production")
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


def test_manual_sql_dry_run_approval_then_commit(page):
    page.set_viewport_size(DOCS_VIEWPORT)
    messages = page.get_by_role("log", name="messages")
    type_command(page, "/rollback sql --env staging")
    modal = page.get_by_role("dialog", name="Manual SQL rollback")
    modal.get_by_label("SQL", exact=True).fill('DELETE FROM "Project" WHERE "id" > 8;')
    modal.get_by_label("Verification query (one SELECT)").fill(
        'SELECT "id" FROM "Project" ORDER BY "id"'
    )
    modal.get_by_label("Reason").fill("two test projects created by the failed release's QA")
    modal.get_by_role("button", name="Start dry run").click()

    checklist_then_incident_channel(page, "sql", "staging")
    # The approver sees the dry run's counts and the backup before anything is written.
    expect(messages).to_contain_text('DELETE FROM "Project" WHERE "id" > 8', timeout=60_000)
    expect(messages).to_contain_text("Approval needed")
    approve(page)

    # Only the requester commits, with the verification result in front of them.
    page.get_by_label("Acting as").select_option("U_ALICE")
    commit = messages.get_by_role("button", name="Commit").last
    expect(commit).to_be_visible(timeout=60_000)
    # ... as a table in a code block: no stray backtick, the header and the value aligned.
    # The demo's 10 projects less the 2 deleted, uncommitted yet.
    decision = messages.locator(".msg", has_text="decide for").last
    expect(decision.locator("pre").last).to_have_text(
        re.compile(r"^id\s*\n-+\s*\n" + r"\s*\n".join(str(n) for n in range(1, 9)) + r"\s*$")
    )
    expect(decision).not_to_contain_text("`")
    commit.click()
    confirm = page.get_by_role("alertdialog")
    if confirm.count():
        confirm.get_by_role("button", name=re.compile("Commit")).click()
    status = messages.locator(".msg").first
    expect(status).to_contain_text("Finished", timeout=60_000)

    # The rows are gone for good: read again after COMMIT, on a connection of its own, staging
    # holds projects 1-8 only, and the backup holds the 2 deleted.
    messages.locator(".replies").first.click()
    thread = page.get_by_role("complementary", name="thread")
    expect(thread).to_contain_text("After commit: verification query: 8 rows")
    expect(status).to_contain_text(
        re.compile(r'after commit · "Project_backup_\d+_\d+": 2 rows; verification query: 8 rows')
    )
    status.scroll_into_view_if_needed()
    final_shot(page, "sql")


def test_resolve_then_revert_on_staging(page, sandbox):
    page.set_viewport_size(DOCS_VIEWPORT)
    messages = page.get_by_role("log", name="messages")
    # alice asks for the status first: the failed migration and its diagnosis.
    type_command(page, "/rollback status --env staging")
    expect(messages).to_contain_text("2 of 3 statements took effect")
    expect(messages).to_contain_text("Only visible to you")

    # Option 1: the resolve modal shows the diagnosis and the undo SQL before anything runs.
    type_command(page, f"/rollback resolve {FAILED} --env staging")
    modal = page.get_by_role("dialog")
    expect(modal).to_contain_text("will be marked rolled back")
    expect(modal).to_contain_text('DROP TABLE IF EXISTS "public"."Proposal"')
    modal.get_by_role("button", name="Continue").click()
    # The approval request waits in the incident channel; alice cannot approve it, bob can.
    checklist_then_incident_channel(page, "resolve", "staging")
    expect(messages).to_contain_text("Approval needed")
    expect(messages).to_contain_text("prisma migrate resolve --rolled-back")
    approve(page)
    # The live status message is edited in place until the operation has finished.
    status = messages.locator(".msg").first
    expect(status).to_contain_text("Finished", timeout=60_000)
    expect(status.locator(".edited")).to_be_visible()
    messages.locator(".replies").first.click()
    thread = page.get_by_role("complementary", name="thread")
    expect(thread).to_contain_text("marked rolled back")
    status.scroll_into_view_if_needed()
    final_shot(page, "resolve")

    # The history says so: the failed migration is rolled back.
    act_as(page, "U_ALICE")
    open_channel(page, "engineering")
    type_command(page, "/rollback status --env staging")
    expect(messages.locator(".msg.ephemeral").last).to_contain_text(re.compile(r"Rolled back\s*1"))

    # The release is pulled: its developer deletes the migration from the repository (a
    # rolled-back migration with no file is nothing Prisma applies).
    shutil.rmtree(sandbox.migrations_dir() / FAILED)

    # Option 2: the feature the release before brought goes too: its reverse, reviewed,
    # approved (bob), applied as Prisma applies a migration.
    open_channel(page, "engineering")
    act_as(page, "U_ALICE")
    type_command(page, f"/rollback revert {PROJECTS} --env staging")
    review = page.get_by_role("dialog")
    expect(review).to_contain_text(
        'data-losing: drops table public."Project" (10 rows; copied first'
    )
    review.get_by_role("button", name="Continue").click()
    status = run_with_approval(page, "revert", re.compile(r'DROP TABLE[^;]*"Project"'))
    status.scroll_into_view_if_needed()  # the picture shows the "Finished" headline
    final_shot(page, "revert")


def run_with_approval(page, runbook: str, planned):
    """What follows a confirmed command on staging: the before-checklist, the approval in the
    incident channel (bob), the status message at Finished (returned)."""
    messages = page.get_by_role("log", name="messages")
    checklist_then_incident_channel(page, runbook, "staging")
    expect(messages).to_contain_text("Approval needed")
    expect(messages).to_contain_text(planned)
    approve(page)
    status = messages.locator(".msg").first
    expect(status).to_contain_text("Finished", timeout=60_000)
    return status


def checklist_then_incident_channel(page, runbook: str, env: str) -> None:
    """The before-checklist the confirmed command opened, every box ticked and saved; then
    the operation's incident channel, where its approval request waits."""
    checklist = page.get_by_role("dialog", name=re.compile("Before rollback"))
    tick_every_box(checklist)
    save_checklist(page, checklist)
    open_channel(page, re.compile(rf"inc-\d{{8}}-rollback-{runbook}-{env}"))
