"""/rollback report <operation id>: the Markdown incident report (SQL, plans, people), for
the operation's people only, posted in its own incident channel (or, when it has none,
shown only to the person who asked): never in a channel of the asker's choosing."""

from bot.errors import PermissionDenied
from bot.incident_report import incident_report
from bot.slack import views
from bot.slack.blocks import markdown
from commands.parser import Spec

NAME = "report"
SPEC = Spec(
    "report <operation-id>",
    "Post the incident report (UTC timeline, people, SQL, AWS ids, checklists, approvals)"
    " in the operation's incident channel.",
    positional=("operation-id",),
)
# Slack allows at most 12,000 characters of markdown blocks per message.
_CHUNK = 11000


def run(ctx) -> dict:
    op_id = ctx.parsed.args["operation-id"]
    text = incident_report(ctx.services.store, op_id)  # NotFound for an unknown id
    if not ctx.services.engine.is_involved(op_id, ctx.user):
        raise PermissionDenied(
            f"Only the people of `{op_id}` (its requester, approvers and whoever acted on it)"
            " can see its incident report.",
            "Ask its requester to run `/rollback report` in the incident channel.",
        )
    channel = ctx.services.store.operation(op_id).incident_channel
    for part in _chunks(text):
        message = {"text": f"Incident report {op_id}", "blocks": [markdown(part)]}
        if channel:
            ctx.services.outbox.post(channel, message)
        else:
            ctx.client.chat_postEphemeral(channel=ctx.channel, user=ctx.user, **message)
    where = f"in <#{channel}>" if channel else "here, visible only to you"
    return views.info_message(f"Posted the incident report for `{op_id}` {where}.")


def _chunks(text: str) -> list[str]:
    parts, current = [], ""
    for line in text.splitlines(keepends=True):
        if len(current) + len(line) > _CHUNK and current:
            parts.append(current)
            current = ""
        current += line[:_CHUNK]
    return [*parts, current] if current else parts
