"""/rollback and its subcommands: one module per subcommand, one ``register(app)``."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from bot import ack_first
from bot.errors import CommandError, UserError
from bot.slack import views
from commands import (
    backups,
    cancel,
    check,
    checklist,
    deploy,
    doctor,
    drill,
    history,
    pitr,
    report,
    resolve,
    snapshot,
    sql,
    status,
    takeover,
)
from commands import help as help_command
from commands import revert as revert_command
from commands.parser import Parsed, closest, parse_arguments, split
from handlers.error_reporter import reports_errors

if TYPE_CHECKING:
    from slack_bolt import Ack, App, Respond
    from slack_sdk import WebClient

    from bot.app import Services

# Order is the order /rollback help lists them in: the runbook's options 1-4 first.
SUBCOMMANDS = {
    m.NAME: m
    for m in (
        help_command,
        status,
        resolve,
        revert_command,
        pitr,
        sql,
        deploy,
        check,
        drill,
        history,
        report,
        checklist,
        cancel,
        takeover,
        doctor,
        snapshot,
        backups,
    )
}


@dataclass
class CommandContext:
    services: Services
    user: str
    channel: str
    trigger_id: str
    parsed: Parsed
    client: WebClient

    @property
    def environment(self) -> str | None:
        return self.parsed.options.get("env")


def usage_lines() -> dict[str, str]:
    return {m.SPEC.usage: m.SPEC.summary for m in SUBCOMMANDS.values()}


def parse(text: str) -> tuple[object, Parsed]:
    tokens = split(text)
    name = tokens[0].lower() if tokens else "help"
    module = SUBCOMMANDS.get(name)
    if module is None:
        guess = closest(name, SUBCOMMANDS)
        did_you_mean = f" Did you mean `{guess}`?" if guess else ""
        listing = ", ".join(f"`{n}`" for n in SUBCOMMANDS)
        raise CommandError(
            f"Unknown subcommand `{name}`.{did_you_mean}",
            f"Subcommands: {listing}. `/rollback help` explains each.",
            code="unknown_subcommand",
        )
    return module, parse_arguments(name, tokens[1:], module.SPEC)


def register(app: App, services: Services) -> None:
    @app.command("/rollback")
    @reports_errors
    def rollback(ack: Ack, command: dict, respond: Respond, client: WebClient) -> None:
        try:
            module, parsed = parse(command.get("text", ""))
        except UserError as error:
            ack(**views.error_message(error))
            return
        ctx = CommandContext(
            services,
            command["user_id"],
            command["channel_id"],
            command.get("trigger_id", ""),
            parsed,
            client,
        )
        if getattr(module, "ANSWER_IN_ACK", False):
            try:
                ack(**module.run(ctx))
            except UserError as error:
                ack(**views.error_message(error))
            return
        ack()
        ack_first.let_acks_go_first()  # the burst's other acks before this work
        reply = module.run(ctx)
        if reply:
            respond(response_type="ephemeral", **reply)
