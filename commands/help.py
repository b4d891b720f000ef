"""/rollback help (and bare /rollback): every subcommand with one line each."""

from bot.slack import views
from commands.parser import Spec

NAME = "help"
SPEC = Spec("help", "Show this list.")
ANSWER_IN_ACK = True


def run(ctx) -> dict:
    from commands import usage_lines

    return views.help_message(usage_lines())
