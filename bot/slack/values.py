"""What the bot's buttons and modals carry back to it: a button's ``value`` and a modal's
``private_metadata``, each a small typed model. View builders write them (``encode``), and
handlers read them once (``parse``), so no handler takes a JSON string apart.

The JSON keys are the field names, unchanged from the first release: a button on a message
posted by an older version still works. A value that does not parse (a hand-crafted
payload, a message from an incompatible version) is a UserError: nothing is done.
"""

from __future__ import annotations

import dataclasses
import json
import typing
from dataclasses import dataclass
from typing import Self

from bot.errors import UserError

# Slack allows 2,000 characters in a button's value and 3,000 in private_metadata.
VALUE_MAX = 2000


class SlackValue:
    def encode(self) -> str:
        text = json.dumps(dataclasses.asdict(self), separators=(",", ":"))
        if len(text) > VALUE_MAX:
            raise ValueError(f"{type(self).__name__} is longer than Slack allows: {len(text)}")
        return text

    @classmethod
    def parse(cls, text: str | None) -> Self:
        try:
            data = json.loads(text or "")
        except ValueError:
            data = None
        hints = typing.get_type_hints(cls)
        names = [f.name for f in dataclasses.fields(cls)]  # type: ignore[arg-type]
        if not isinstance(data, dict) or set(data) != set(names):
            raise _stale(cls)
        if not all(isinstance(data[name], hints[name]) for name in names):
            raise _stale(cls)
        return cls(**data)


def _stale(cls: type) -> UserError:
    return UserError(
        "This button or form no longer matches what the bot expects; nothing was done.",
        "Use the latest message, or run the `/rollback` command again.",
        code=f"bad_{cls.__name__}",
    )


@dataclass(frozen=True)
class ChecklistRef(SlackValue):
    """An operation's checklist: the "open checklist" buttons and the checklist modal."""

    op: str
    checklist: str


@dataclass(frozen=True)
class DecisionChoice(SlackValue):
    """One answer button of a mid-step decision (Commit, Roll back...)."""

    id: str
    choice: str


@dataclass(frozen=True)
class OperationRef(SlackValue):
    """A point-in-time recovery, on its switch and cleanup cards' buttons."""

    op: str


@dataclass(frozen=True)
class FinalSnapshotChoice(SlackValue):
    """The scheduled cleanup's "skip / keep the final snapshot" button."""

    op: str
    skip: bool


@dataclass(frozen=True)
class EnvironmentRef(SlackValue):
    """An environment: the "Re-run migrations" button, the pitr and sql modals."""

    env: str


@dataclass(frozen=True)
class DeployModal(SlackValue):
    """The re-run confirmation: its environment and a requester's window override."""

    env: str
    window_override: str = ""


@dataclass(frozen=True)
class ResolveModal(SlackValue):
    """What the resolve confirmation modal plans again from on submission."""

    env: str
    migration: str
    mode: str  # "rolled_back" or "applied"


@dataclass(frozen=True)
class RevertModal(SlackValue):
    """What the revert review modal plans again from: the same moment gives the same names."""

    env: str
    migration: str
    stamp: str


@dataclass(frozen=True)
class CheckRef(SlackValue):
    """A migration's check card: its "Answer the checklist" button and modal."""

    env: str
    migration: str
    checksum: str
    channel: str


@dataclass(frozen=True)
class PlanPage(SlackValue):
    """A page of an approval's whole plan: the "View full plan" and page buttons, and the
    plan modal."""

    approval: str
    page: int
