"""bot/ack_first.py: a command's work waits while another request awaits its ack, and goes
as soon as the last one is acked (or after max_wait)."""

from __future__ import annotations

import threading

from bot import ack_first


def _wait_in_thread(max_wait: float) -> threading.Event:
    done = threading.Event()

    def work() -> None:
        ack_first.let_acks_go_first(max_wait)
        done.set()

    threading.Thread(target=work, daemon=True).start()
    return done


def test_work_waits_for_the_pending_ack_and_goes_when_it_is_sent():
    ack_first.awaiting()
    try:
        done = _wait_in_thread(max_wait=30)
        assert not done.wait(0.3), "the work went while an ack was pending"
    finally:
        ack_first.acked()
    assert done.wait(10), "the work did not go once the last ack was sent"


def test_work_goes_after_max_wait_even_if_an_ack_stays_pending():
    ack_first.awaiting()
    try:
        assert _wait_in_thread(max_wait=0.05).wait(10)
    finally:
        ack_first.acked()


def test_work_goes_at_once_when_nothing_awaits_an_ack():
    assert _wait_in_thread(max_wait=30).wait(10)
