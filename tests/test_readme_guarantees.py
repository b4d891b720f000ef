"""README's "What rollback-bot guarantees": every guarantee names test files, and they exist
and hold tests."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).parents[1]


def _guarantees() -> list[str]:
    text = (ROOT / "README.md").read_text()
    section = text.split("## What rollback-bot guarantees", 1)[1].split("\n## ", 1)[0]
    return [b for b in re.split(r"\n- ", section)[1:]]


def test_every_guarantee_names_test_files_that_exist():
    guarantees = _guarantees()
    assert len(guarantees) >= 10
    for guarantee in guarantees:
        paths = re.findall(r"`(tests/[\w/]+\.py)`", guarantee)
        assert paths, f"no test file named for: {guarantee[:80]}"
        for path in paths:
            source = (ROOT / path).read_text()
            assert "def test_" in source or "assert" in source, path
