"""/rollback takeover <operation id> --reason "...": an approver of the environment becomes
the operation's requester (its requester went offline mid-incident); audited with the reason."""

from bot.slack import views
from commands.parser import Spec

NAME = "takeover"
SPEC = Spec(
    'takeover <operation-id> --reason "<why>"',
    "Take over an operation whose requester is gone (approvers of its environment).",
    positional=("operation-id",),
    options=("reason",),
)


def run(ctx) -> dict:
    op = ctx.services.engine.take_over(
        ctx.parsed.args["operation-id"], ctx.user, ctx.parsed.options.get("reason", "")
    )
    return views.info_message(
        f"You now hold `{op.id}` ({views.runbook_name(op.runbook)} on {op.environment}): its"
        " checklists and questions are yours, and a second person approves what is left."
    )
