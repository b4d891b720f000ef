"""Typed errors. Each carries a message a stressed engineer can act on.

One error handler (handlers/error_reporter.py) turns a ``UserError`` into a message where the
user is (ephemeral, modal field, thread); anything else is logged with a correlation id
and the user is told that something unexpected happened, with that id.
"""

from __future__ import annotations


class RollbackBotError(Exception):
    """Base of every error this application raises on purpose."""


class UserError(RollbackBotError):
    """Something the user can fix: bad input, wrong state, missing permission.

    ``message`` says what was wrong, ``hint`` what to do about it. Both may quote what a
    person typed; ``people``: the Slack users the bot itself mentions in them (``<@U1>``),
    whose mentions stay live where everything else is shown as typed.
    """

    def __init__(
        self,
        message: str,
        hint: str | None = None,
        *,
        code: str | None = None,
        people: tuple[str, ...] = (),
    ):
        super().__init__(message)
        self.message = message
        self.hint = hint
        self.code = code
        self.people = frozenset(people)

    def __str__(self) -> str:
        return self.message if not self.hint else f"{self.message} {self.hint}"


class CommandError(UserError):
    """A /rollback command that cannot be understood."""


class ConfigError(RollbackBotError):
    """The settings or config file are wrong; the message names the setting and the fix."""


class PermissionDenied(UserError):
    """The user may not do this (not a requester, not an approver, self-approval...)."""


class ConflictError(UserError):
    """The state does not allow it (another operation running, approval already decided...)."""


class NotFound(UserError):
    """An operation, migration, snapshot... that does not exist."""
