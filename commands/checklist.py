"""/rollback checklist <operation id> [before|after|safety]: reopen a checklist."""

from bot.checklists import CHECKLISTS
from bot.errors import NotFound, UserError
from bot.slack import views
from commands.parser import Spec

NAME = "checklist"
SPEC = Spec(
    "checklist <operation-id> [before|after|safety]",
    "Reopen an operation's checklist.",
    positional=("operation-id",),
    optional_positional=("which",),
)


def run(ctx) -> dict | None:
    op_id = ctx.parsed.args["operation-id"]
    which = ctx.parsed.args.get("which", "before")
    if which not in CHECKLISTS:
        raise UserError(f"There is no `{which}` checklist.", "Use before, after or safety.")
    store = ctx.services.store
    op = store.operation(op_id)
    if op is None:
        raise NotFound(f"There is no operation `{op_id}`.", "See `/rollback history`.")
    ctx.services.engine.check_may_tick(op_id, ctx.user)
    items = store.checklist(op_id, which)
    if not items:
        raise NotFound(f"Operation `{op_id}` has no {which} checklist.")
    ctx.client.views_open(trigger_id=ctx.trigger_id, view=views.checklist_modal(op, which, items))
    return None
