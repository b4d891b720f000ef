"""Reproduced leak: a Secrets Manager URL carrying its password as a query parameter
(``postgresql://user@host:5432/db?password=...&sslmode=prefer``) was posted whole in the
incident channel, written to the audit log and to the operation's params by the switch
card. The rig's end-of-test check (the test PostgreSQL's password in no Slack payload, log
line or audit record) is the assertion; the params are checked here too."""

from __future__ import annotations

import json
from urllib.parse import quote, urlsplit

from tests.scenario.test_pitr import (
    RDS_ENV,
    SECRET_ID,
    SOURCE,
    approve_next,
    open_modal,
    prepare_database,
    tick_human_items,
)
from tests.unit.aws.source_instance import make_source


def query_form(pg_url: str) -> str:
    parts = urlsplit(pg_url)
    password = quote(parts.password or "", safe="")
    netloc = f"{parts.username}@{parts.hostname}:{parts.port}"
    return f"postgresql://{netloc}{parts.path}?password={password}&sslmode=prefer"


def test_a_password_in_the_urls_query_reaches_no_message_record_or_param(
    bot_factory, aws, pg_url, pg_server, monkeypatch
):
    prepare_database(pg_url)
    monkeypatch.setenv("PGHOSTADDR", "127.0.0.1")
    make_source(aws, SOURCE, port=urlsplit(pg_url).port)
    aws.client("secretsmanager").create_secret(
        Name=SECRET_ID, SecretString=json.dumps({"url": query_form(pg_url)})
    )
    bot = bot_factory(tables_extra=RDS_ENV)
    view_id = open_modal(bot)
    bot.signer.submit_view(view_id, user="U_ALICE", values={})
    op = bot.wait_until(lambda: bot.store.active_operation("rds"), what="operation")
    bot.wait_until(
        lambda: any(
            i.item_id == "backup" and i.checked for i in bot.store.checklist(op.id, "before")
        ),
        what="backup ticked",
    )
    tick_human_items(bot, view_id)
    approve_next(bot, op.id, 1)
    approve_next(bot, op.id, 2)
    bot.wait_status(op.id, "succeeded", timeout=60)
    bot.slack.wait_for("chat.postMessage", where=lambda c: "Traffic switched" in str(c.args))
    params = json.dumps(bot.store.operation(op.id).params)
    assert pg_server.password not in params
    assert "?password" not in params and "postgresql://" not in params
    card = next(
        c.args for c in bot.slack.calls_to("chat.postMessage") if "Traffic switched" in str(c.args)
    )
    assert f":{urlsplit(pg_url).port}{urlsplit(pg_url).path}" in json.dumps(card)  # host:port/db
