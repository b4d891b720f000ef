"""/rollback report <operation id>: posts the Markdown incident report in this channel."""

from bot.incident_report import incident_report
from bot.slack import views
from bot.slack.blocks import markdown
from commands.parser import Spec

NAME = "report"
SPEC = Spec(
    "report <operation-id>",
    "Post the incident report (UTC timeline, people, SQL, AWS ids, checklists, approvals).",
    positional=("operation-id",),
)
# Slack allows at most 12,000 characters of markdown blocks per message.
_CHUNK = 11000


def run(ctx) -> dict:
    op_id = ctx.parsed.args["operation-id"]
    text = incident_report(ctx.services.store, op_id)
    for part in _chunks(text):
        ctx.services.outbox.post(
            ctx.channel, {"text": f"Incident report {op_id}", "blocks": [markdown(part)]}
        )
    return views.info_message(f"Posted the incident report for `{op_id}`.")


def _chunks(text: str) -> list[str]:
    parts, current = [], ""
    for line in text.splitlines(keepends=True):
        if len(current) + len(line) > _CHUNK and current:
            parts.append(current)
            current = ""
        current += line[:_CHUNK]
    return [*parts, current] if current else parts
