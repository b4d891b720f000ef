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
