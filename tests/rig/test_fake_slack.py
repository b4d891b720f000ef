"""The fake Slack and the signer hold Slack's rules: proven with slack_sdk and a real Bolt app."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator

import pytest
import uvicorn
from slack_bolt import App
from slack_bolt.adapter.asgi import SlackRequestHandler
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.builtin_handlers import RateLimitErrorRetryHandler
from slack_sdk.webhook import WebhookClient

from tests.rig.fake_slack import FakeSlack
from tests.rig.signer import Signer

SIGNING_SECRET = "test-signing-secret"


def plain(text: str) -> dict:
    return {"type": "plain_text", "text": text}


def section(text: str, **extra) -> dict:
    return {"type": "section", "text": {"type": "mrkdwn", "text": text}, **extra}


def options(count: int) -> list[dict]:
    return [{"text": plain(f"step {i}"), "value": f"s{i}"} for i in range(count)]


def modal(*blocks: dict, title: str = "Rollback", **extra) -> dict:
    return {"type": "modal", "title": plain(title), "blocks": list(blocks), **extra}


@pytest.fixture
def client(fake_slack: FakeSlack) -> WebClient:
    # No retries, so each test sees exactly what the fake served.
    return WebClient(token=fake_slack.token, base_url=fake_slack.url, retry_handlers=[])


def slack_error(call, **kwargs) -> dict:
    with pytest.raises(SlackApiError) as raised:
        call(**kwargs)
    return raised.value.response.data


# ---------------------------------------------------------------- messages


def test_post_and_update_land_in_the_channel(fake_slack: FakeSlack, client: WebClient):
    posted = client.chat_postMessage(
        channel="#engineering", text="rolling back", blocks=[section("1/3")]
    )
    client.chat_update(channel=posted["channel"], ts=posted["ts"], text="rolled back")

    [message] = fake_slack.messages("engineering")
    assert posted["channel"] == "C_ENG"
    assert message["text"] == "rolled back"
    # Slack keeps the blocks when chat.update sends text only (python-slack-sdk#523).
    assert message["blocks"][0]["text"]["text"] == "1/3"
    assert message["blocks"][0]["block_id"]  # Slack fills in block ids
    assert message["edit_count"] == 1
    assert [h["text"] for h in message["history"]] == ["rolling back"]


def test_ts_are_slack_shaped_and_increasing(client: WebClient):
    stamps = [client.chat_postMessage(channel="C_GEN", text=str(i))["ts"] for i in range(5)]
    assert all(len(ts.split(".")[1]) == 6 for ts in stamps)
    assert stamps == sorted(stamps, key=float) and len(set(stamps)) == 5


def test_thread_replies_mark_the_parent(fake_slack: FakeSlack, client: WebClient):
    parent = client.chat_postMessage(channel="C_ENG", text="restore started")
    client.chat_postMessage(channel="C_ENG", thread_ts=parent["ts"], text="step 1 ok")

    thread = fake_slack.thread("C_ENG", parent["ts"])
    assert [m["text"] for m in thread] == ["restore started", "step 1 ok"]
    assert thread[0]["reply_count"] == 1 and thread[1]["thread_ts"] == parent["ts"]


def test_post_to_a_user_id_goes_to_their_dm(fake_slack: FakeSlack, client: WebClient):
    posted = client.chat_postMessage(channel="U_BOB", text="approve?")
    assert posted["channel"].startswith("D")
    assert fake_slack.messages("U_BOB")[0]["text"] == "approve?"


def test_form_bodies_decode_json_fields(fake_slack: FakeSlack, client: WebClient):
    form = {"channel": "C_ENG", "text": "x", "blocks": json.dumps([section("from a form")])}
    client.api_call("chat.postMessage", data=form)
    broken = {**form, "blocks": "[{"}
    data = slack_error(client.api_call, api_method="chat.postMessage", data=broken)

    [call] = fake_slack.calls_to("chat.postMessage")
    assert call.args["blocks"][0]["text"]["text"] == "from a form"
    assert data["error"] == "invalid_blocks_format"


@pytest.mark.filterwarnings("ignore:The top-level `text` argument is missing")
@pytest.mark.parametrize(
    ("method", "kwargs", "error"),
    [
        ("chat_postMessage", {"channel": "#nope", "text": "x"}, "channel_not_found"),
        ("chat_postMessage", {"channel": "C_ENG"}, "no_text"),
        ("chat_update", {"channel": "C_ENG", "ts": "1.000001", "text": "x"}, "message_not_found"),
        (
            "chat_postEphemeral",
            {"channel": "C_ENG", "user": "U_NOPE", "text": "x"},
            "user_not_found",
        ),
        ("users_info", {"user": "U_NOPE"}, "user_not_found"),
        ("usergroups_users_list", {"usergroup": "S_NOPE"}, "no_such_subteam"),
        ("conversations_info", {"channel": "engineering"}, "channel_not_found"),
    ],
)
def test_bad_arguments_get_slacks_errors(client: WebClient, method, kwargs, error):
    assert slack_error(getattr(client, method), **kwargs)["error"] == error


def test_auth_and_unknown_methods(fake_slack: FakeSlack, client: WebClient):
    wrong = WebClient(token="xoxb-wrong", base_url=fake_slack.url, retry_handlers=[])
    assert slack_error(wrong.auth_test)["error"] == "invalid_auth"
    anonymous = WebClient(base_url=fake_slack.url, retry_handlers=[])
    assert slack_error(anonymous.api_call, api_method="auth.test")["error"] == "not_authed"
    assert slack_error(client.api_call, api_method="chat.fly")["error"] == "unknown_method"
    assert client.auth_test()["user_id"] == fake_slack.bot_user_id


def test_ephemerals_delete_and_permalink(fake_slack: FakeSlack, client: WebClient):
    client.chat_postEphemeral(channel="C_ENG", user="U_ALICE", text="only you")
    posted = client.chat_postMessage(channel="C_ENG", text="temp")
    link = client.chat_getPermalink(channel="C_ENG", message_ts=posted["ts"])["permalink"]
    client.chat_delete(channel="C_ENG", ts=posted["ts"])

    assert [e["text"] for e in fake_slack.ephemerals("C_ENG", user="U_ALICE")] == ["only you"]
    assert link.endswith("/archives/C_ENG/p" + posted["ts"].replace(".", ""))
    assert fake_slack.messages("C_ENG") == []


# ---------------------------------------------------------------- Block Kit limits


def checkboxes(count: int) -> dict:
    element = {"type": "checkboxes", "action_id": "steps", "options": options(count)}
    return {"type": "input", "block_id": "steps", "label": plain("Steps"), "element": element}


def text_input(optional: bool = False, **element) -> dict:
    element = {"type": "plain_text_input", "action_id": "v", **element}
    block = {"type": "input", "block_id": "v", "label": plain("Value"), "element": element}
    return {**block, "optional": optional}


INVALID_BLOCKS = {
    "51 blocks": [section(f"{i}") for i in range(51)],
    "section text 3001": [section("x" * 3001)],
    "11 fields": [{"type": "section", "fields": [{"type": "mrkdwn", "text": "f"}] * 11}],
    "checkboxes 11 options": [
        {
            "type": "actions",
            "elements": [{"type": "checkboxes", "action_id": "c", "options": options(11)}],
        }
    ],
    "button text 76": [
        {
            "type": "actions",
            "elements": [{"type": "button", "action_id": "b", "text": plain("x" * 76)}],
        }
    ],
    "duplicate block_id": [section("a", block_id="same"), section("b", block_id="same")],
    "unknown block type": [{"type": "sectoin", "text": {"type": "mrkdwn", "text": "x"}}],
    "misspelled field": [section("x", acessory={"type": "button", "text": plain("b")})],
    "text as a string": [{"type": "section", "text": "plain string"}],
    "input max_length 3001": [text_input(max_length=3001)],
}


@pytest.mark.parametrize("blocks", INVALID_BLOCKS.values(), ids=INVALID_BLOCKS.keys())
def test_invalid_blocks_are_rejected(fake_slack: FakeSlack, client: WebClient, blocks):
    data = slack_error(client.chat_postMessage, channel="C_ENG", text="x", blocks=blocks)
    assert data["error"] == "invalid_blocks"
    assert data["response_metadata"]["messages"], "Slack says what failed"
    assert fake_slack.messages("C_ENG") == []


def test_a_rich_valid_message_is_accepted(client: WebClient):
    confirm = {
        "title": plain("Sure?"),
        "text": plain("Restore"),
        "confirm": plain("Yes"),
        "deny": plain("No"),
    }
    button = {
        "type": "button",
        "action_id": "go",
        "text": plain("Go"),
        "style": "danger",
        "confirm": confirm,
    }
    select = {
        "type": "static_select",
        "action_id": "env",
        "placeholder": plain("env"),
        "options": options(3),
    }
    blocks = [
        {"type": "header", "text": plain("Rollback")},
        section("*PITR*", fields=[{"type": "mrkdwn", "text": "a"}] * 10, accessory=button),
        {"type": "actions", "elements": [select, {"type": "datepicker", "action_id": "day"}]},
        {"type": "context", "elements": [{"type": "mrkdwn", "text": "by alice"}]},
        {"type": "divider"},
        {
            "type": "rich_text",
            "elements": [
                {"type": "rich_text_preformatted", "elements": [{"type": "text", "text": "SQL"}]}
            ],
        },
        *[section(str(i)) for i in range(44)],
    ]
    assert len(blocks) == 50
    assert client.chat_postMessage(channel="C_ENG", text="x", blocks=blocks)["ok"]


INVALID_VIEWS = {
    "101 blocks": (modal(*[section(str(i)) for i in range(101)]), "invalid_blocks"),
    "title 25 chars": (modal(section("x"), title="x" * 25), "invalid_arguments"),
    "private_metadata 3001": (
        modal(section("x"), private_metadata="m" * 3001),
        "invalid_arguments",
    ),
    "input without submit": (modal(text_input()), "invalid_arguments"),
    "checkboxes 11 options": (modal(checkboxes(11), submit=plain("Go")), "invalid_blocks"),
    "over 250 KB": (modal(*[section("x" * 2900) for i in range(90)]), "view_too_large"),
}


@pytest.mark.parametrize(("view", "error"), INVALID_VIEWS.values(), ids=INVALID_VIEWS.keys())
def test_invalid_views_are_rejected(fake_slack: FakeSlack, client: WebClient, view, error):
    trigger = fake_slack.new_trigger_id("U_ALICE")
    assert slack_error(client.views_open, trigger_id=trigger, view=view)["error"] == error
    assert fake_slack.views() == {}


# ---------------------------------------------------------------- modals and triggers


def test_trigger_ids_are_single_use_and_expire(fake_slack: FakeSlack, client: WebClient):
    view = modal(section("x"))
    trigger = fake_slack.new_trigger_id("U_ALICE")
    assert client.views_open(trigger_id=trigger, view=view)["ok"]
    assert (
        slack_error(client.views_open, trigger_id=trigger, view=view)["error"]
        == "exchanged_trigger_id"
    )
    assert (
        slack_error(client.views_open, trigger_id="123.456.abc", view=view)["error"]
        == "invalid_trigger_id"
    )

    late = fake_slack.new_trigger_id("U_ALICE")
    fake_slack.advance(3.1)  # Slack: trigger_id valid for 3 s
    assert (
        slack_error(client.views_open, trigger_id=late, view=view)["error"] == "expired_trigger_id"
    )


def test_modal_stack_is_three_deep(fake_slack: FakeSlack, client: WebClient):
    trigger = fake_slack.new_trigger_id
    root = client.views_open(trigger_id=trigger("U_BOB"), view=modal(section("1")))["view"]
    for depth in (2, 3):
        client.views_push(trigger_id=trigger("U_BOB"), view=modal(section(str(depth))))

    data = slack_error(client.views_push, trigger_id=trigger("U_BOB"), view=modal(section("4")))
    assert data["error"] == "push_limit_reached"
    views = fake_slack.views()
    assert sorted(v["stack_position"] for v in views.values()) == [1, 2, 3]
    assert {v["root_view_id"] for v in views.values()} == {root["id"]}
    assert {v["user"] for v in views.values()} == {"U_BOB"}


def test_views_update_checks_the_hash(fake_slack: FakeSlack, client: WebClient):
    opened = client.views_open(
        trigger_id=fake_slack.new_trigger_id("U_ALICE"),
        view=modal(section("v1"), external_id="plan-1", callback_id="plan", private_metadata="pm"),
    )["view"]
    stale = slack_error(
        client.views_update, view_id=opened["id"], hash="0.stale", view=modal(section("v2"))
    )
    assert stale["error"] == "hash_conflict"

    updated = client.views_update(
        external_id="plan-1", hash=opened["hash"], view=modal(section("v3"))
    )
    assert updated["view"]["id"] == opened["id"] and updated["view"]["hash"] != opened["hash"]
    assert fake_slack.views()[opened["id"]]["blocks"][0]["text"]["text"] == "v3"


def test_views_publish_sets_the_home_tab(fake_slack: FakeSlack, client: WebClient):
    home = {"type": "home", "blocks": [section("Recent rollbacks")]}
    assert (
        slack_error(client.views_publish, user_id="U_NOPE", view=home)["error"] == "user_not_found"
    )
    client.views_publish(user_id="U_CAROL", view=home)
    assert fake_slack.home("U_CAROL")["blocks"][0]["text"]["text"] == "Recent rollbacks"
    assert fake_slack.home("U_ALICE") is None


# ---------------------------------------------------------------- channels and groups


@pytest.mark.parametrize(
    ("name", "error"),
    [
        ("engineering", "name_taken"),
        ("", "invalid_name_required"),
        ("Rollback-1", "invalid_name_specials"),
        ("roll back", "invalid_name_specials"),
        ("r" * 81, "invalid_name_maxlength"),
    ],
)
def test_conversations_create_checks_names(client: WebClient, name, error):
    assert slack_error(client.conversations_create, name=name)["error"] == error


def test_create_invite_and_list(fake_slack: FakeSlack, client: WebClient):
    created = client.conversations_create(name="inc-2024-rollback")["channel"]
    client.conversations_invite(channel=created["id"], users=["U_ALICE", "U_BOB"])
    again = slack_error(client.conversations_invite, channel=created["id"], users="U_BOB")
    unknown = slack_error(client.conversations_invite, channel=created["id"], users="U_NOPE")

    assert created["id"].startswith("C") and created["id"][1:].isalnum() and created["id"].isupper()
    assert (again["error"], unknown["error"]) == ("already_in_channel", "user_not_found")
    assert fake_slack.members("inc-2024-rollback") == {"U0BOT", "U_ALICE", "U_BOB"}
    names = {c["name"] for c in client.conversations_list()["channels"]}
    assert names == {"engineering", "general", "inc-2024-rollback"}


def test_private_channels_dms_and_archiving_as_slack_answers(
    fake_slack: FakeSlack, client: WebClient
):
    private = client.conversations_create(name="inc-private", is_private=True)["channel"]
    assert private["is_private"] and private["is_group"] and not private["is_channel"]
    client.conversations_invite(channel=private["id"], users="U_ALICE")
    # A DM: conversations.open (im:write), the second time already_open.
    dm = client.conversations_open(users="U_BOB")
    assert dm["channel"]["id"].startswith("D") and "already_open" not in dm.data
    assert client.conversations_open(users="U_BOB")["already_open"] is True
    many = ",".join(f"U_{n}" for n in range(9))
    assert slack_error(client.conversations_open, users=many)["error"] == "too_many_users"
    assert slack_error(client.conversations_open, users="U_NOPE")["error"] == "user_not_found"
    empty = slack_error(lambda: client.api_call("conversations.open", params={"users": ""}))
    assert empty["error"] == "users_list_not_supplied"
    client.chat_postMessage(channel=dm["channel"]["id"], text="approve?")
    assert fake_slack.messages(dm["channel"]["id"])[0]["text"] == "approve?"

    # Archived: no posting, no inviting, not twice; #general and DMs never.
    client.conversations_archive(channel=private["id"])
    assert fake_slack.channel(private["id"])["is_archived"] is True
    errors = [
        slack_error(client.chat_postMessage, channel=private["id"], text="x")["error"],
        slack_error(client.conversations_invite, channel=private["id"], users="U_BOB")["error"],
        slack_error(client.conversations_archive, channel=private["id"])["error"],
        slack_error(client.conversations_archive, channel="C_GEN")["error"],
        slack_error(client.conversations_archive, channel=dm["channel"]["id"])["error"],
    ]
    assert errors == [
        "is_archived",
        "is_archived",
        "already_archived",
        "cant_archive_general",
        "method_not_supported_for_channel_type",
    ]
    # A private channel the bot is not in does not exist for it.
    theirs = fake_slack.add_channel("secret", is_private=True, members={"U_ALICE"})
    assert slack_error(client.chat_postMessage, channel=theirs, text="x")["error"] == (
        "channel_not_found"
    )
    assert slack_error(client.conversations_archive, channel=theirs)["error"] == "not_in_channel"


def test_a_method_needing_a_scope_the_token_lacks_is_refused(
    fake_slack: FakeSlack, client: WebClient
):
    fake_slack.bot_token_scopes -= {"im:write", "groups:write"}
    refused = slack_error(client.conversations_open, users="U_BOB")
    assert refused["error"] == "missing_scope" and refused["needed"] == "im:write"
    private = slack_error(client.conversations_create, name="inc-x", is_private=True)
    assert private["error"] == "missing_scope" and private["needed"] == "groups:write"
    public = fake_slack.add_channel("quiet", members={"U_ALICE"})
    fake_slack.bot_token_scopes.discard("chat:write.public")
    assert slack_error(client.chat_postMessage, channel=public, text="x")["error"] == (
        "not_in_channel"
    )


def test_usergroups(client: WebClient, fake_slack: FakeSlack):
    group = fake_slack.add_usergroup("sre", ["U_CAROL"])
    assert client.usergroups_users_list(usergroup="S_DBA")["users"] == ["U_BOB", "U_DAVE"]
    assert client.usergroups_users_list(usergroup=group)["users"] == ["U_CAROL"]
    handles = {g["handle"] for g in client.usergroups_list(include_users=True)["usergroups"]}
    assert handles == {"db-approvers", "sre"}


# ---------------------------------------------------------------- streams


def test_stream_start_append_stop(fake_slack: FakeSlack, client: WebClient):
    parent = client.chat_postMessage(channel="C_ENG", text="restore")
    stream = client.chat_stream(
        channel="C_ENG",
        thread_ts=parent["ts"],
        recipient_team_id=fake_slack.team_id,
        recipient_user_id="U_ALICE",
        buffer_size=1,
    )
    stream.append(markdown_text="snapshot found. ")
    stream.append(
        chunks=[{"type": "task_update", "id": "1", "title": "Restore", "status": "complete"}]
    )
    stream.stop(markdown_text="done")

    reply = fake_slack.thread("C_ENG", parent["ts"])[-1]
    assert reply["text"] == "snapshot found. done"
    assert reply["stream"]["state"] == "stopped"
    assert [c["type"] for c in reply["stream"]["chunks"]] == [
        "markdown_text",
        "task_update",
        "markdown_text",
    ]


def test_stale_stream_is_not_streaming(fake_slack: FakeSlack, client: WebClient):
    parent = client.chat_postMessage(channel="C_ENG", text="restore")
    started = client.chat_startStream(
        channel="C_ENG",
        thread_ts=parent["ts"],
        recipient_team_id=fake_slack.team_id,
        recipient_user_id="U_ALICE",
    )
    fake_slack.advance(301)  # Slack: a stream goes stale after ~5 minutes
    data = slack_error(
        client.chat_appendStream, channel="C_ENG", ts=started["ts"], markdown_text="x"
    )
    assert data["error"] == "message_not_in_streaming_state"


def test_stream_in_a_channel_needs_a_thread(client: WebClient):
    data = slack_error(client.chat_startStream, channel="C_ENG", thread_ts="")
    assert data["error"] == "invalid_arguments"


# ---------------------------------------------------------------- rate limits and faults


def test_over_the_limit_gets_429_with_retry_after(fake_slack: FakeSlack, client: WebClient):
    for i in range(10):  # burst of 10 in one channel, then ~1 per second
        client.chat_postMessage(channel="C_ENG", text=str(i))
    with pytest.raises(SlackApiError) as raised:
        client.chat_postMessage(channel="C_ENG", text="one too many")

    assert raised.value.response.status_code == 429
    assert int(raised.value.response.headers["Retry-After"]) >= 1
    assert raised.value.response.data == {"ok": False, "error": "ratelimited"}
    assert fake_slack.rate_limited["chat.postMessage"] == 1
    assert client.chat_postMessage(channel="#general", text="other channel")["ok"]  # per channel


def test_retry_handler_recovers_from_429(fake_slack: FakeSlack):
    fake_slack.set_rate_limit("chat.update", per_second=2, burst=1)
    patient = WebClient(
        token=fake_slack.token,
        base_url=fake_slack.url,
        retry_handlers=[RateLimitErrorRetryHandler(max_retry_count=2)],
    )
    posted = patient.chat_postMessage(channel="C_ENG", text="0%")
    patient.chat_update(channel="C_ENG", ts=posted["ts"], text="50%")
    started = time.monotonic()
    assert patient.chat_update(channel="C_ENG", ts=posted["ts"], text="100%")["ok"]

    assert time.monotonic() - started >= 0.9  # it honoured Retry-After: 1
    assert fake_slack.rate_limited["chat.update"] == 1
    assert fake_slack.messages("C_ENG")[0]["text"] == "100%"


def test_injected_faults(fake_slack: FakeSlack, client: WebClient):
    fake_slack.fail_next("chat.postMessage", status=503)
    fake_slack.fail_next("chat.postMessage", error="fatal_error")
    first = slack_error(client.chat_postMessage, channel="C_ENG", text="x")
    second = slack_error(client.chat_postMessage, channel="C_ENG", text="x")

    assert first["ok"] is False and fake_slack.calls[0].status == 503
    assert second["error"] == "fatal_error"
    assert client.chat_postMessage(channel="C_ENG", text="x")["ok"]
    assert len(fake_slack.messages("C_ENG")) == 1


def test_a_slow_answer_still_posts(fake_slack: FakeSlack):
    impatient = WebClient(
        token=fake_slack.token, base_url=fake_slack.url, timeout=0.3, retry_handlers=[]
    )
    fake_slack.fail_next("chat.postMessage", delay=1.0)
    with pytest.raises(OSError):
        impatient.chat_postMessage(channel="C_ENG", text="did it post?")
    # Slack did the work; only the answer was late. A blind retry would post twice.
    assert [m["text"] for m in fake_slack.messages("C_ENG")] == ["did it post?"]


@pytest.mark.filterwarnings("ignore:The top-level `text` argument is missing")
def test_wait_for_explains_a_timeout(fake_slack: FakeSlack, client: WebClient):
    slack_error(client.chat_postMessage, channel="C_ENG")
    with pytest.raises(AssertionError) as raised:
        fake_slack.wait_for("chat.postMessage", timeout=0.2)
    assert "no_text" in str(raised.value) and "got 0" in str(raised.value)


def test_wait_for_sees_calls_from_other_threads(fake_slack: FakeSlack, client: WebClient):
    threading.Timer(
        0.2, client.chat_postMessage, kwargs={"channel": "C_ENG", "text": "later"}
    ).start()
    [call] = fake_slack.wait_for("chat.postMessage", where=lambda c: c.args["text"] == "later")
    assert call.ok and call.args["channel"] == "C_ENG"


# ---------------------------------------------------------------- response_url


def test_response_url_is_recorded_and_limited_to_five_uses(fake_slack: FakeSlack):
    url = fake_slack.new_response_url(channel="C_ENG", user="U_ALICE")
    hook = WebhookClient(url)
    statuses = [hook.send(text=f"update {i}").status_code for i in range(6)]
    bad = WebhookClient(fake_slack.new_response_url()).send(text="x", blocks=[section("x" * 3001)])

    assert statuses == [200] * 5 + [404]  # Slack: a response_url works 5 times
    assert [r["text"] for r in fake_slack.responses(url)] == [f"update {i}" for i in range(5)]
    assert [e["text"] for e in fake_slack.ephemerals("C_ENG", user="U_ALICE")][0] == "update 0"
    assert (bad.status_code, bad.body) == (400, "invalid_blocks")


# ---------------------------------------------------------------- a real Bolt app


def build_bolt_app(fake: FakeSlack) -> App:
    """A tiny Bolt app, wired like the bot: ack first, then respond / call the Web API."""
    client = WebClient(token=fake.token, base_url=fake.url)
    app = App(
        signing_secret=SIGNING_SECRET,
        token=fake.token,
        client=client,
        token_verification_enabled=False,
    )

    @app.command("/rollback")
    def rollback(ack, respond, command, client):
        ack()
        if command["text"] == "plan":
            ticket = text_input(optional=True)
            view = modal(
                checkboxes(3),
                ticket,
                submit=plain("Run"),
                callback_id="plan",
                private_metadata="pm",
            )
            client.views_open(trigger_id=command["trigger_id"], view=view)
            return
        respond(f"working on {command['text']}")
        approve = {
            "type": "button",
            "action_id": "approve",
            "text": plain("Approve"),
            "value": "pr-7",
        }
        client.chat_postMessage(
            channel=command["channel_id"],
            text=f"rollback {command['text']}",
            blocks=[section("Needs approval"), {"type": "actions", "elements": [approve]}],
        )

    @app.action("approve")
    def approve(ack, action, body, respond):
        ack()
        respond(replace_original=True, text=f"{action['value']} approved by {body['user']['id']}")

    @app.view("plan")
    def plan(ack, view, body, client):
        values = view["state"]["values"]
        ticket = values["v"]["v"]["value"]
        if ticket and not ticket.startswith("INC-"):
            ack(response_action="errors", errors={"v": "Use an INC- ticket"})
            return
        ack()
        steps = [o["value"] for o in values["steps"]["steps"]["selected_options"]]
        client.chat_postMessage(
            channel="C_ENG", text=json.dumps({"steps": steps, "ticket": ticket})
        )

    @app.event("app_mention")
    def mention(event, client, request):
        retry = request.headers.get("x-slack-retry-num", ["0"])[0]
        client.chat_postMessage(channel=event["channel"], text=f"hello (retry {retry})")

    return app


@pytest.fixture(scope="module")
def bolt_url(fake_slack_server: FakeSlack) -> Iterator[str]:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    config = uvicorn.Config(
        SlackRequestHandler(build_bolt_app(fake_slack_server)), log_level="warning", lifespan="off"
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.01)
    yield f"http://127.0.0.1:{sock.getsockname()[1]}/slack/events"
    server.should_exit = True
    thread.join(timeout=5)


@pytest.fixture
def signer(bolt_url: str, fake_slack: FakeSlack) -> Signer:
    return Signer(bolt_url, SIGNING_SECRET, fake_slack)


def test_signed_slash_command_reaches_bolt(fake_slack: FakeSlack, signer: Signer):
    response = signer.slash("staging", user="U_CAROL")

    assert response.status == 200 and response.acked_in_time
    [call] = fake_slack.wait_for("chat.postMessage")
    assert call.args["text"] == "rollback staging" and call.args["channel"] == "C_ENG"
    fake_slack.wait_for("response_url")
    assert fake_slack.responses(response.sent["response_url"])[0]["text"] == "working on staging"
    assert fake_slack.ephemerals("C_ENG", user="U_CAROL")[0]["text"] == "working on staging"


@pytest.mark.parametrize("tamper", ["forge", "stale", "garbage"])
def test_bad_signatures_get_401(fake_slack: FakeSlack, signer: Signer, tamper: str):
    body = b"command=%2Frollback&text=x&user_id=U_ALICE&channel_id=C_ENG"
    form = "application/x-www-form-urlencoded"
    if tamper == "forge":
        response = signer.post(body, form, forge=True)
    elif tamper == "stale":  # Slack: reject when |now - timestamp| > 300 s
        response = signer.post(body, form, timestamp=int(time.time()) - 600)
    else:
        response = signer.post(body, form, signature="v0=" + "0" * 64)
    assert response.status == 401
    assert fake_slack.calls == []


def test_button_click_replaces_the_message(fake_slack: FakeSlack, signer: Signer):
    signer.slash("prod")
    fake_slack.wait_for("chat.postMessage")
    actions_block_id = fake_slack.messages("C_ENG")[0]["blocks"][1]["block_id"]

    response = signer.block_action("approve", None, user="U_BOB")  # the button's own value

    assert response.status == 200
    [action] = response.sent["actions"]
    assert (action["block_id"], action["value"]) == (actions_block_id, "pr-7")  # from the message
    assert response.sent["message"]["ts"] == response.sent["container"]["message_ts"]
    with pytest.raises(AssertionError, match="no element 'deploy'"):
        signer.block_action("deploy", None, user="U_BOB", message=response.sent["message"])
    fake_slack.wait_for("response_url", count=2)
    [message] = fake_slack.messages("C_ENG")
    assert message["text"] == "pr-7 approved by U_BOB" and message["edit_count"] == 1
    assert message["blocks"] == []  # replace_original with text only drops the blocks


def test_modal_submission_round_trip(fake_slack: FakeSlack, signer: Signer):
    signer.slash("plan", user="U_DAVE")
    [opened] = fake_slack.wait_for("views.open")
    view_id = opened.response["view"]["id"]

    rejected = signer.submit_view(
        view_id, user="U_DAVE", values={"steps": ["s0", "s2"], "v": "JIRA-1"}
    )
    assert rejected.json() == {"response_action": "errors", "errors": {"v": "Use an INC- ticket"}}
    assert view_id in fake_slack.views()  # errors keep the modal open

    accepted = signer.submit_view(
        view_id, user="U_DAVE", values={"steps": ["s0", "s2"], "v": "INC-9"}
    )
    assert accepted.status == 200 and accepted.body == ""
    [call] = fake_slack.wait_for("chat.postMessage")
    assert json.loads(call.args["text"]) == {"steps": ["s0", "s2"], "ticket": "INC-9"}
    assert fake_slack.views() == {}  # an empty ack closes the modal
    assert [c.ok for c in fake_slack.calls_to("response_action", ok=None)] == [True, True]


def test_submit_view_refuses_an_empty_required_input(fake_slack: FakeSlack, signer: Signer):
    signer.slash("plan")
    [opened] = fake_slack.wait_for("views.open")
    with pytest.raises(AssertionError, match="required input 'steps'"):
        signer.submit_view(opened.response["view"]["id"], user="U_ALICE", values={"v": "INC-1"})


def test_view_closed_only_when_the_app_asked(fake_slack: FakeSlack, signer: Signer, client):
    trigger = fake_slack.new_trigger_id
    quiet = client.views_open(trigger_id=trigger("U_BOB"), view=modal(section("x")))["view"]
    with pytest.raises(ValueError, match="notify_on_close"):
        signer.view_closed(quiet["id"], user="U_BOB")

    noisy = modal(section("x"), notify_on_close=True, callback_id="noisy")
    opened = client.views_open(trigger_id=trigger("U_BOB"), view=noisy)["view"]
    response = signer.view_closed(opened["id"], user="U_BOB")
    assert response.status == 404  # signed and accepted; this Bolt app has no listener for it
    assert response.sent["view"]["callback_id"] == "noisy"
    assert opened["id"] not in fake_slack.views()


def test_events_carry_retry_headers(fake_slack: FakeSlack, signer: Signer):
    event = {
        "type": "app_mention",
        "user": "U_ALICE",
        "text": "<@U0BOT> hi",
        "channel": "C_GEN",
        "ts": "1.000001",
    }
    response = signer.event(event, event_id="Ev123", retry_num=1)
    assert response.status == 200
    [call] = fake_slack.wait_for("chat.postMessage")
    assert (call.args["channel"], call.args["text"]) == ("C_GEN", "hello (retry 1)")
