"""handlers/error_reporter.py: every listener reports its errors exactly once."""

from __future__ import annotations

import pytest

from handlers.error_reporter import reports_errors


def test_a_listener_cannot_be_wrapped_twice():
    def listener(ack):
        ack()

    with pytest.raises(TypeError, match="already reports its errors"):
        reports_errors(reports_errors(listener))


def test_a_user_error_becomes_the_ack_and_anything_else_a_ref(caplog):
    from bot.errors import UserError

    class Ack:
        response = None

        def __call__(self, **message):
            self.response = message

    def refuses(ack):
        raise UserError("Not today.", "Try tomorrow.")

    def breaks(ack):
        raise RuntimeError("kaputt-42")

    ack = Ack()
    reports_errors(refuses)(ack=ack)
    assert "Not today." in ack.response["text"] and "Try tomorrow." in ack.response["text"]
    ack = Ack()
    reports_errors(breaks)(ack=ack)
    assert "Something unexpected went wrong (ref" in ack.response["text"]
    assert "kaputt-42" not in ack.response["text"] and "kaputt-42" in caplog.text
