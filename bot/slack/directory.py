"""Who is who: user group handles resolved to members (usergroups.list and
usergroups.users.list, Tier 2, so cached briefly)."""

from __future__ import annotations

import logging
import threading
import time

from slack_sdk.errors import SlackApiError

log = logging.getLogger(__name__)


class Directory:
    def __init__(self, client, cache_seconds: float = 60):
        self.client = client
        self.cache_seconds = cache_seconds
        self._lock = threading.Lock()
        self._groups: tuple[float, dict[str, str]] | None = None
        self._members: dict[str, tuple[float, set[str]]] = {}

    def group_id(self, handle: str) -> str | None:
        with self._lock:
            fresh = self._groups and time.monotonic() - self._groups[0] < self.cache_seconds
            if not fresh:
                resp = self.client.usergroups_list()
                by_handle = {g["handle"]: g["id"] for g in resp.get("usergroups", [])}
                self._groups = (time.monotonic(), by_handle)
            return self._groups[1].get(handle)

    def members_of(self, handle: str) -> set[str]:
        """Members of @handle; an unknown or unreadable group has no members, so nobody
        gains a permission from a lookup that failed."""
        cached = self._members.get(handle)
        if cached and time.monotonic() - cached[0] < self.cache_seconds:
            return cached[1]
        try:
            group = self.group_id(handle)
            if group is None:
                log.warning("user group @%s not found", handle)
                return set()
            users = set(self.client.usergroups_users_list(usergroup=group).get("users", []))
        except SlackApiError as error:
            log.warning("cannot resolve @%s: %s", handle, error.response.get("error"))
            return set()
        self._members[handle] = (time.monotonic(), users)
        return users

    def mentions(self, principals: tuple[str, ...]) -> str:
        out = []
        for p in principals:
            if p.startswith("@"):
                try:
                    gid = self.group_id(p[1:])
                except SlackApiError:
                    gid = None
                out.append(f"<!subteam^{gid}>" if gid else p)
            else:
                out.append(f"<@{p}>")
        return ", ".join(out) or "nobody configured"
