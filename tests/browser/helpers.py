"""Helpers the browser tests share (the fixtures are in conftest.py)."""

from __future__ import annotations

from pathlib import Path

SHOTS = Path(__file__).parent / "screenshots"


def shot(page, name: str) -> Path:
    SHOTS.mkdir(exist_ok=True)
    path = SHOTS / f"{name}.png"
    page.screenshot(path=str(path))
    return path


def type_command(page, text: str, box: str = "message box") -> None:
    field = page.get_by_label(box)
    field.fill(text)
    field.press("Enter")


DOCS_SHOTS = Path(__file__).parents[2] / "docs" / "screenshots"
# docs/screenshots/*.png are committed and used by README: they are rewritten only when asked
# (UPDATE_SCREENSHOTS=1), never by an ordinary run; the walk-through's assertions always run.
UPDATE_SCREENSHOTS = "UPDATE_SCREENSHOTS"


def final_shot(page, name: str) -> Path:
    import os

    path = shot(page, name)
    if os.environ.get(UPDATE_SCREENSHOTS):
        DOCS_SHOTS.mkdir(parents=True, exist_ok=True)
        (DOCS_SHOTS / f"{name}.png").write_bytes(path.read_bytes())
    return path


def act_as(page, user: str) -> None:
    from playwright.sync_api import expect

    page.get_by_label("Acting as").select_option(user)
    expect(page.get_by_label("Acting as")).to_have_value(user)


def open_channel(page, name) -> None:
    """A channel in the sidebar by its name (a str or a compiled pattern)."""
    page.locator("#channels a", has_text=name).click()


def tick_every_box(dialog) -> None:
    from playwright.sync_api import expect

    boxes = dialog.get_by_role("checkbox")
    expect(boxes.first).to_be_visible()
    for n in range(boxes.count()):
        if not boxes.nth(n).is_checked() and boxes.nth(n).is_enabled():
            boxes.nth(n).check()


def approve(page, approver: str = "U_BOB") -> None:
    """The second person approves the newest request in the open channel, through the
    button's confirmation dialog."""
    act_as(page, approver)
    messages = page.get_by_role("log", name="messages")
    messages.get_by_role("button", name="Approve").last.click()
    page.get_by_role("alertdialog").get_by_role("button", name="Approve").click()


def save_checklist(page, dialog) -> None:
    """Save the before-checklist: the modal says what was saved; Close dismisses it."""
    from playwright.sync_api import expect

    dialog.get_by_role("button", name="Save").click()
    saved = page.get_by_role("dialog")
    expect(saved).to_contain_text("Saved: all")
    saved.get_by_role("button", name="Close", exact=True).click()
    expect(page.get_by_role("dialog")).to_have_count(0)
