"""/rollback history: recent operations with who asked, who approved, and when."""

from bot.slack import views
from commands.parser import Spec

NAME = "history"
SPEC = Spec("history", "Recent operations: id, runbook, environment, status, people, times.")
ANSWER_IN_ACK = True


def run(ctx) -> dict:
    store = ctx.services.store
    ops = store.operations(limit=20)
    return views.history_message(ops, store.approvers_by_operation([o.id for o in ops]))
