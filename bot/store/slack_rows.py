"""Where the bot's Slack copies live: each approver's copy of an approval request, and the
incident channels the bot created (to reuse one per environment, or archive one after its
operation). Part of the Store (bot/store/sqlite.py)."""

from __future__ import annotations

from bot.clock import iso, utcnow
from bot.store.transactions import Connected


class SlackRows(Connected):
    def add_approval_copy(self, approval_id: str, channel: str, ts: str) -> None:
        """Another copy of the request (an approver's DM), updated with the first."""
        self._change(
            "INSERT INTO approval_copies (approval_id, channel, ts) VALUES (?, ?, ?)"
            " ON CONFLICT (approval_id, channel) DO UPDATE SET ts = excluded.ts",
            (approval_id, channel, ts),
        )

    def approval_copies(self, approval_id: str) -> list[tuple[str, str]]:
        rows = self._query(
            "SELECT channel, ts FROM approval_copies WHERE approval_id = ? ORDER BY channel",
            (approval_id,),
        )
        return [(r["channel"], r["ts"]) for r in rows]

    # --- incident channels the bot created -------------------------------------------

    def add_bot_channel(
        self, channel: str, environment: str, operation_id: str | None, reused: bool
    ) -> None:
        self._change(
            "INSERT INTO bot_channels (channel, environment, operation_id, reused, created_at)"
            " VALUES (?, ?, ?, ?, ?) ON CONFLICT (channel) DO NOTHING",
            (channel, environment, operation_id, int(reused), iso(utcnow())),
        )

    def reused_channel(self, environment: str) -> str | None:
        """The environment's own incident channel, when the bot made one and it is live."""
        rows = self._query(
            "SELECT channel FROM bot_channels WHERE environment = ? AND reused = 1"
            " AND archived_at IS NULL ORDER BY created_at DESC LIMIT 1",
            (environment,),
        )
        return rows[0]["channel"] if rows else None

    def operation_channel(self, operation_id: str) -> str | None:
        """The channel the bot created for this one operation (to archive it), if any."""
        rows = self._query(
            "SELECT channel FROM bot_channels WHERE operation_id = ? AND reused = 0"
            " AND archived_at IS NULL",
            (operation_id,),
        )
        return rows[0]["channel"] if rows else None

    def is_archived(self, channel: str) -> bool:
        rows = self._query(
            "SELECT 1 FROM bot_channels WHERE channel = ? AND archived_at IS NOT NULL", (channel,)
        )
        return bool(rows)

    def channel_archived(self, channel: str) -> None:
        self._change(
            "UPDATE bot_channels SET archived_at = ? WHERE channel = ?", (iso(utcnow()), channel)
        )
