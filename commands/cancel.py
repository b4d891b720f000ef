"""/rollback cancel <operation id>: stop an operation between steps (its requester, or an
approver of its environment)."""

from bot.slack import views
from commands.parser import Spec

NAME = "cancel"
SPEC = Spec(
    "cancel <operation-id>",
    "Stop an operation between steps (its requester or an approver).",
    positional=("operation-id",),
)


def run(ctx) -> dict:
    op_id = ctx.parsed.args["operation-id"]
    if ctx.services.engine.cancel(op_id, ctx.user) == "requested":
        return views.info_message(
            f"Cancelling `{op_id}`: a step is running; the operation stops as soon as it ends."
        )
    return views.info_message(f"Cancelled `{op_id}`. Steps that already ran stay done.")
