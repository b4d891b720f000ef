"""0007: a decision's evidence as a table (option 4: the verification query's result, once a
second person approved), kept apart from its prompt so Slack shows it in a code block of
its own: inside the prompt's mrkdwn its fences were broken by the escaping every quoted
text gets, and its cells read as formatting (bot/slack/views.py, decision_message)."""

from __future__ import annotations

from typing import Any

_COLUMN = "ALTER TABLE decisions ADD COLUMN evidence_table TEXT NOT NULL DEFAULT ''"


def sqlite(conn: Any) -> None:
    conn.execute(_COLUMN)


def postgres(conn: Any) -> None:
    conn.execute(_COLUMN)
