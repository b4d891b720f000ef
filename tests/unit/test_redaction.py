"""bot/redaction.py: the one scrubber every error message and log line goes through."""

from __future__ import annotations

import logging

from bot.logs import RedactSecrets
from bot.redaction import Secret, redact_url, scrub, secret_values

URL = "postgresql://app:s3cr3t-pw@db.internal:5432/shop"


def test_a_secret_never_formats_itself():
    secret = Secret(URL)
    assert "s3cr3t" not in f"{secret} {secret!r}"
    assert secret.reveal() == URL


def test_redact_url_masks_only_the_password():
    assert redact_url(URL) == "postgresql://app:***@db.internal:5432/shop"


def test_scrub_masks_the_url_its_password_alone_and_any_other_url_password():
    text = (
        f'could not connect to "{URL}": password "s3cr3t-pw" rejected;'
        " also tried postgresql://other:hunter22@replica/shop"
    )
    clean = scrub(text, secret_values([URL]))
    assert "s3cr3t-pw" not in clean and "hunter22" not in clean
    assert "db.internal" not in clean  # the whole URL went, not just its password
    assert "postgresql://other:***@replica/shop" in clean


def test_secret_values_adds_a_urls_password_and_skips_empty_values():
    assert secret_values([URL, "", None, "xoxb-token"]) == {URL, "s3cr3t-pw", "xoxb-token"}


def test_the_log_filter_scrubs_and_leaves_short_values_alone():
    record = logging.LogRecord(
        "t", logging.INFO, __file__, 1, "url %s pw %s abc", (URL, "s3cr3t-pw"), None
    )
    RedactSecrets([URL, "abc"]).filter(record)
    message = record.getMessage()
    assert "s3cr3t-pw" not in message and "db.internal" not in message
    assert message.endswith("abc")
