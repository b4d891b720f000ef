"""/rollback report <operation id>: the Markdown incident report (SQL, plans, people), for
the operation's people only, posted where the operation's story is (its incident channel,
or its thread there; the notify channel's thread once that channel is archived) and the
caller is told where; when it has nowhere, shown only to the person who asked: never in a
channel of the asker's choosing."""

from slack_sdk.errors import SlackApiError

from bot.errors import PermissionDenied
from bot.incident_report import incident_report
from bot.slack import views
from bot.slack.channels import report_target
from commands.parser import Spec

NAME = "report"
SPEC = Spec(
    "report <operation-id>",
    "Post the incident report (UTC timeline, people, SQL, AWS ids, checklists, approvals)"
    " in the operation's incident channel.",
    positional=("operation-id",),
)


def run(ctx) -> dict:
    services = ctx.services
    op_id = ctx.parsed.args["operation-id"]
    text = incident_report(services.store, op_id)  # NotFound for an unknown id
    if not services.engine.is_involved(op_id, ctx.user):
        raise PermissionDenied(
            f"Only the people of `{op_id}` (its requester, approvers and whoever acted on it)"
            " can see its incident report.",
            "Ask its requester to run `/rollback report` in the incident channel.",
        )
    op = services.engine.operation(op_id)
    channel, thread = report_target(services.store, op)
    messages = views.report_messages(op.id, text)
    if not channel:
        for message in messages:
            ctx.client.chat_postEphemeral(channel=ctx.channel, user=ctx.user, **message)
        return views.info_message(
            f"Posted the incident report for `{op.id}` here, visible only to you."
        )
    first = None
    for message in messages:
        posted = services.outbox.post(channel, message, thread_ts=thread)
        first = first or posted
    return views.info_message(
        f"Posted the incident report for `{op.id}` in {_where(services, first, thread)}."
    )


def _where(services, first: dict, thread: str | None) -> str:
    where = f"{'its thread in ' if thread else ''}<#{first['channel']}>"
    try:
        link = services.outbox.call(
            lambda: services.client.chat_getPermalink(
                channel=first["channel"], message_ts=first["ts"]
            ),
            "chat.getPermalink",
        )["permalink"]
    except SlackApiError:
        return where  # the channel is enough to find it
    return f"{where} ({link})"
