"""Acks before work, across threads: a command's work after its ack waits (briefly) while
other requests still wait for theirs.

Why: listeners ack and then work in the same Bolt listener thread, and every thread shares
one GIL. When a burst of commands arrives (an incident: several people type at once), the
work of the first ones (reading migration status, starting a drill) competed with the
dispatch of the later ones, so their acks queued behind that work: p99 of 20 concurrent
acks over Socket Mode was 5x a bare Bolt app's (bench/results.md). Holding the work until
no ack is pending and no request arrived for QUIET seconds (a burst arrives one request at
a time), for at most MAX_WAIT, lets the whole burst be acked first.

Both transports count what they are dispatching (bot/server.py, bot/socket_mode.py);
commands/ waits after ack(). One bot per process, so one counter per process.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

MAX_WAIT = 0.2  # seconds; well inside the 3 s a trigger_id lives for the modal after
QUIET = 0.01  # seconds without a new request before the work goes
POLL = 0.002

_pending = 0
_last_arrival = 0.0
_idle = threading.Lock()


def awaiting() -> None:
    """A request arrived that will need an ack."""
    global _pending, _last_arrival
    with _idle:
        _pending += 1
        _last_arrival = time.monotonic()


def acked() -> None:
    """That request's ack is on its way (or it will get none)."""
    global _pending
    with _idle:
        _pending -= 1


@contextmanager
def awaiting_ack() -> Iterator[None]:
    """Around the dispatch of one request, until its ack is ready to go out."""
    awaiting()
    try:
        yield
    finally:
        acked()


def let_acks_go_first(max_wait: float = MAX_WAIT) -> None:
    """Called after ack(), before the work: returns once no request awaits its ack and
    none arrived for QUIET seconds, or after max_wait. (Polled: it only ever waits during
    a burst, and a woken waiter re-checks whether the burst went on.)"""
    deadline = time.monotonic() + max_wait
    while time.monotonic() < deadline:
        if _pending == 0 and time.monotonic() - _last_arrival >= QUIET:
            return
        time.sleep(POLL)
