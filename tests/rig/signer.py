"""The rig's request signer: signed slash commands, clicks, view submissions and events.
It lives in bot/sandbox/signer.py (the sandbox's page signs with it too); re-exported here."""

from __future__ import annotations

from bot.sandbox.signer import (
    ACK_DEADLINE,
    Response,
    Signer,
    element_state,
    state_values,
)

__all__ = ["ACK_DEADLINE", "Response", "Signer", "element_state", "state_values"]
