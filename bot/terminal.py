"""`rollback-bot cli ...`: the break-glass front end, for when Slack itself is down.

The same runbooks, engine, store and audit log as the Slack bot; only the front end differs.
Each invocation acts as one person, does one thing (start an operation, tick a checklist,
approve, decide), then walks the operation in the foreground, printing the engine's events
and progress bars, until it finishes or waits at a gate. The next person continues it with
their own invocation; every state change is in the shared store first.

Who the person is comes from bot/break_glass.py: the OS account running the command (real
uid, mapped in the config's ``[break_glass] users``) or, for an approval, an SSH signature
verified against the config's allowed_signers. ``--as`` and ``$ROLLBACK_BOT_USER`` only
confirm it. User groups (``@db-approvers``) come from ``[break_glass] groups``, else from
Slack's API when a token is set; an unresolvable group has no members, so nobody gains a
permission from it.
"""

from __future__ import annotations

import argparse
import os
import queue
import re
import sys
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from bot import break_glass
from bot.clock import shown_utc, utcnow
from bot.core import build_core
from bot.engine.leases import replica_name
from bot.engine.model import Event
from bot.errors import PermissionDenied, UserError
from bot.store.records import FINAL_STATES, ApprovalStatus, EventKind, OperationStatus
from bot.words import runbook_name, status_words

USER_ENV = "ROLLBACK_BOT_USER"
# Read once, to say it is ignored: the caller's environment never grants a permission.
GROUPS_ENV = "ROLLBACK_BOT_USERGROUPS"
BAR_WIDTH = 30
EXIT_OK, EXIT_FAILED, EXIT_REFUSED = 0, 1, 3


def add_parser(sub) -> None:
    terminal = sub.add_parser(
        "cli",
        help="break-glass: run the runbooks from a terminal when Slack is down",
        description="Run the rollback runbooks from a terminal (same engine, store and audit"
        " log as the Slack bot). Identity: your OS account, mapped in the config's"
        " [break_glass] users; an approver may sign instead (--ssh-key, --signature).",
    )
    terminal.add_argument("--config", help="TOML config file (default: $ROLLBACK_BOT_CONFIG)")
    terminal.add_argument(
        "--as", dest="user", help="your Slack user id: refused unless it is who you are"
    )
    # --as also after the action (`cli approve apr-1 --as U_BOB`); SUPPRESS keeps the one
    # given before it when absent.
    who = argparse.ArgumentParser(add_help=False)
    who.add_argument("--as", dest="user", default=argparse.SUPPRESS, help="your Slack user id")
    actions = terminal.add_subparsers(dest="action", required=True, metavar="ACTION")

    def action(name: str, help: str) -> argparse.ArgumentParser:
        return actions.add_parser(name, help=help, parents=[who])

    status = action("status", help="migration status, diagnosis, active operation")
    status.add_argument("--env")
    resolve = action("resolve", help="option 1: mark a failed migration resolved")
    resolve.add_argument("migration")
    resolve.add_argument("--applied", action="store_true")
    resolve.add_argument("--env")
    revert = action("revert", help="option 2: run a migration's reverse SQL")
    revert.add_argument("migration")
    revert.add_argument("--env")
    sql = action("sql", help="option 4: manual SQL (from --file or stdin)")
    sql.add_argument("--env")
    sql.add_argument("--file", default="-", help="SQL file ('-': stdin)")
    sql.add_argument("--verification", default="", help="a SELECT that shows it worked")
    sql.add_argument("--reason", required=True, help="why (goes into the incident log)")
    pitr = action("pitr", help="option 3: point-in-time recovery on AWS RDS")
    pitr.add_argument("--env")
    pitr.add_argument("--mode", choices=["snapshot", "time"], default="time")
    pitr.add_argument("--at", help='restore point "YYYY-MM-DD HH:MM" UTC (default: suggested)')
    pitr.add_argument("--target", help="new instance id (default: <source>-recovery-<time>)")
    pitr.add_argument("--instance-class", help="default: the source's")
    drill = action("drill", help="rehearse the procedure; touches no database")
    drill.add_argument("--env")
    for parser in (resolve, revert, sql, pitr, drill):
        parser.add_argument("--yes", action="store_true", help="do not ask for confirmation")
    _people_actions(action)


def _people_actions(action) -> None:
    """What a person does to an operation already started."""
    approve = action("approve", help="decide an approval request (second person)")
    approve.add_argument("approval_id")
    approve.add_argument("--deny", action="store_true")
    approve.add_argument("--yes", action="store_true", help="do not ask for confirmation")
    approve.add_argument("--ssh-key", type=Path, help="sign this decision with your SSH key")
    approve.add_argument(
        "--signature", type=Path, help="an SSH signature of the text --message prints"
    )
    approve.add_argument(
        "--message", action="store_true", help="print the text to sign, and do nothing else"
    )
    checklist = action("checklist", help="show or tick an operation's checklist")
    checklist.add_argument("operation_id")
    checklist.add_argument("which", nargs="?", default="before", choices=["before", "after"])
    checklist.add_argument("--tick", help="'all' or comma-separated item ids")
    decide = action("decide", help="answer a step's question (requester)")
    decide.add_argument("decision_id")
    decide.add_argument("choice")
    follow = action("follow", help="continue an operation and show its progress")
    follow.add_argument("operation_id")
    cancel = action("cancel", help="stop an operation between steps (requester or approver)")
    cancel.add_argument("operation_id")
    takeover = action("takeover", help="become the requester of an operation (approvers)")
    takeover.add_argument("operation_id")
    takeover.add_argument("--reason", required=True, help="why (goes into the incident log)")


# --------------------------------------------------------------------------- services


@dataclass
class UserGroups:
    """@handle -> members, from the config's [break_glass] groups, else Slack's API when a
    token is set and Slack answers. Never from the caller's environment."""

    groups: dict[str, frozenset[str]]
    slack: object | None = None

    @classmethod
    def from_config(cls, config, environ=os.environ) -> UserGroups:
        slack = None
        if environ.get("SLACK_BOT_TOKEN"):
            from slack_sdk import WebClient

            from bot.slack.directory import Directory

            # Slack itself, never $SLACK_API_URL: a caller could point that at a server of
            # their own that says they are in @db-approvers.
            slack = Directory(WebClient(token=environ["SLACK_BOT_TOKEN"], timeout=5))
        return cls(dict(config.break_glass.groups), slack)

    def members_of(self, handle: str) -> set[str]:
        if handle in self.groups:
            return set(self.groups[handle])
        if self.slack is not None:
            return self.slack.members_of(handle)
        return set()


# --------------------------------------------------------------------------- printing


def _plain(text: str) -> str:
    """Slack's mentions as the terminal shows them."""
    return re.sub(r"<@([A-Z0-9_]+)>", r"@\1", text or "")


def progress_bar(done: float, total: float, width: int = BAR_WIDTH) -> str:
    share = 0.0 if not total else max(0.0, min(1.0, done / total))
    filled = round(share * width)
    return f"[{'#' * filled}{'.' * (width - filled)}] {share * 100:3.0f}%"


@dataclass
class Console:
    """Prints the engine's events; questions for this user are queued for the main thread."""

    out: object = sys.stdout
    # Who runs this invocation: output only the requester may see is printed for them alone.
    user: str | None = None
    questions: queue.Queue = field(default_factory=queue.Queue)
    _bar_open: bool = False

    @property
    def tty(self) -> bool:
        return bool(getattr(self.out, "isatty", lambda: False)())

    def line(self, text: str = "") -> None:
        if self._bar_open:
            self.out.write("\n")
            self._bar_open = False
        self.out.write(text + "\n")
        self.out.flush()

    def __call__(self, event: Event) -> None:
        if event.kind == EventKind.PROGRESS:
            self._progress(event)
            return
        if event.kind == EventKind.FOR_REQUESTER and event.detail.get("user") != self.user:
            return
        stamp = event.at.astimezone(UTC).strftime("%H:%M:%S")
        self.line(f"{stamp}  {_plain(event.message)}")
        if event.kind in (EventKind.CARD, EventKind.FOR_REQUESTER):
            self._card(event.detail)
        elif event.kind == EventKind.APPROVAL_REQUESTED:
            self.line(_indent(event.detail.get("plan", "")))
        elif event.kind == EventKind.DECISION_REQUESTED:
            self.questions.put(event)

    def _progress(self, event: Event) -> None:
        bar = f"{progress_bar(event.detail.get('done', 0), event.detail.get('total', 0))}"
        text = f"          {bar} {_plain(event.message)}"[:160]
        if self.tty:
            # One line, redrawn in place.
            self.out.write("\r" + text.ljust(100))
            self._bar_open = True
        else:
            self.out.write(text + "\n")
        self.out.flush()

    def _card(self, detail: dict) -> None:
        data = detail.get("data", detail)
        for key, value in data.items():
            if value in (None, "", [], {}):
                continue
            self.line(_indent(f"{key.replace('_', ' ')}: {_words(value)[:400]}"))


# What to type next, by the recommendation's id (the Slack card's words, for a terminal).
NEXT_STEP = {
    "resolve_rolled_back": "mark it rolled back: rollback-bot cli resolve {name} --env {env}",
    "undo_then_resolve": "undo what took effect, then mark it rolled back:"
    " rollback-bot cli resolve {name} --env {env}",
    "revert": "write a reverse migration: rollback-bot cli revert {name} --env {env}",
    "pitr": "point-in-time recovery (option 3): rollback-bot cli pitr --env {env}",
}


def _words(value) -> str:
    """A card's value as a person reads it: lists one item after another, mappings as
    "key value", never a JSON dump."""
    if isinstance(value, dict):
        return "; ".join(f"{k.replace('_', ' ')} {_words(v)}" for k, v in value.items())
    if isinstance(value, list | tuple):
        return ", ".join(_words(v) for v in value)
    return str(value)


def _indent(text: str, by: str = "          ") -> str:
    return "\n".join(by + line for line in str(text).splitlines())


# --------------------------------------------------------------------------- the front end


# Every step ran (an approver may have declined an optional one: the report says which).
_FINISHED = (OperationStatus.SUCCEEDED, OperationStatus.SUCCEEDED_WITH_DECLINED)


class Terminal:
    def __init__(self, config, claimed: str | None, out=sys.stdout, stdin=sys.stdin):
        self.config = config
        self.claimed = claimed
        self.user: str | None = None
        self.stdin = stdin
        # Who it is for requester-only output: known once the OS account is mapped (me()).
        self.console = Console(out, None)
        # The same core as the Slack bot, without start(): the bot's process resumes
        # operations and runs the scheduled jobs (it picks up the rows written here).
        self.core = build_core(
            config,
            members_of=UserGroups.from_config(config).members_of,
            replica=replica_name("cli"),
        )
        self.engine, self.store = self.core.engine, self.core.store
        self.engine.subscribe(self.console)

    def close(self) -> None:
        self.core.stop()

    def say(self, text: str = "") -> None:
        self.console.line(text)

    def me(self) -> str:
        """The caller's Slack user id, from the OS account running this command."""
        if self.user is None:
            who = break_glass.caller(self.config.path, self.claimed)
            self.user = self.console.user = who.user
        return self.user

    def _maybe_me(self) -> str | None:
        try:
            return self.me()
        except UserError:
            return None

    def confirm(
        self, question: str, assume_yes: bool, hint: str = "Pass --yes to confirm."
    ) -> bool:
        if assume_yes:
            return True
        if not self.stdin.isatty():
            raise UserError(f"{question} Nothing was started.", hint)
        self.console.out.write(f"{question} [y/N] ")
        self.console.out.flush()
        return self.stdin.readline().strip().lower() in ("y", "yes")

    # -- following an operation

    def follow(self, op_id: str) -> int:
        """Walk the operation here until it ends or waits for someone; say what is next."""
        self._maybe_me()  # the requester following it sees what only they may see
        self.engine.kick(op_id)
        while True:
            self._answer_questions()
            op = self.store.operation(op_id)
            if op.status in FINAL_STATES:
                self._wait_quiet(op_id)
                self.say(f"{op.id}: {status_words(op.status)}. {_plain(op.result or '')}")
                return EXIT_OK if op.status in _FINISHED else EXIT_FAILED
            if op.status in (
                OperationStatus.WAITING_CHECKLIST,
                OperationStatus.WAITING_APPROVAL,
            ) and not (self.engine.is_walking(op_id)):
                self._wait_quiet(op_id)
                self._next_for(self.store.operation(op_id))
                return EXIT_OK
            time.sleep(0.05)

    def _wait_quiet(self, op_id: str, timeout: float = 10) -> None:
        """Let the walker finish (its last events print) before we say what is next."""
        deadline = time.monotonic() + timeout
        while self.engine.is_walking(op_id) and time.monotonic() < deadline:
            time.sleep(0.02)

    def _next_for(self, op) -> None:
        if op.status == OperationStatus.WAITING_CHECKLIST:
            self.say(f"{op.id} waits for the before-rollback checklist:")
            self._show_checklist(op.id, "before")
            tick = f"rollback-bot cli checklist {op.id} before --tick all"
            self.say(f"Tick it ({op.requester}):  {tick}")
            return
        pending = [a for a in self.store.approvals(op.id) if a.status == ApprovalStatus.PENDING]
        if not pending:
            self.say(f"{op.id} waits for an approval request (the last one expired).")
            return
        approval = pending[-1]
        env = self.config.environment(op.environment)
        self.say(
            f"{op.id} waits for a second person to approve {approval.id}"
            f" (plan hash {approval.plan_hash[:12]}, expires"
            f" {shown_utc(approval.expires_at, 'minutes')})."
        )
        self.say(f"Approvers: {', '.join(env.approvers)}. The requester cannot approve.")
        self.say(
            f"Approve:  rollback-bot cli approve {approval.id}  (from an approver's own OS"
            " account, or add --ssh-key YOUR_KEY)"
        )

    def _answer_questions(self) -> None:
        try:
            event = self.console.questions.get_nowait()
        except queue.Empty:
            return
        detail = event.detail
        choices = detail["choices"]
        op = self.store.operation(event.operation_id)
        options = ", ".join(f"{k} ({v})" for k, v in choices.items())
        if self.stdin.isatty() and self._maybe_me() == op.requester:
            while True:
                self.console.out.write(f"Choose one of {options}: ")
                self.console.out.flush()
                choice = self.stdin.readline().strip()
                if choice in choices:
                    break
            self.engine.decide(detail["decision_id"], op.requester, choice)
            return
        self.say(
            f"Answer (the requester, {op.requester}), default {detail['default']} at"
            f" {shown_utc(detail['expires_at'], 'time')}:"
            f"  rollback-bot cli decide {detail['decision_id']} <{'|'.join(choices)}>"
        )

    def _show_checklist(self, op_id: str, which: str) -> None:
        for item in self.store.checklist(op_id, which):
            mark = "x" if item.checked else " "
            who = f"  ({item.checked_by})" if item.checked else ""
            self.say(f"  [{mark}] {item.item_id:<12} {item.label}{who}")

    # -- actions

    def status(self, args) -> int:
        from bot.runbooks.status import assess, status_card_data

        env = self.config.environment(args.env)
        data = status_card_data(env.name, assess(env))
        counts = ", ".join(f"{k.replace('_', ' ')} {v}" for k, v in data["counts"].items())
        self.say(f"Migrations on {env.name}: {data['headline'][0]} ({counts})")
        for failed in data["failed"]:
            self.say(f"  FAILED {failed['name']} (started {shown_utc(failed['started_at'])})")
            self.say(_indent(failed.get("error") or failed["logs"], "    "))
            self.say(f"    {failed['diagnosis']}")
            for statement in failed["statements"]:
                verdict = statement["verdict"].replace("_", " ")
                self.say(f"      {verdict:<12} {statement['description']}")
            step = NEXT_STEP.get(failed["recommendation"] or "")
            if step:
                self.say(f"    next: {step.format(name=failed['name'], env=env.name)}")
        for name in data["pending"]:
            self.say(f"  pending {name}")
        if data["lock_holder"]:
            self.say(f"  migration lock held by {data['lock_holder']}")
        holder = self.engine.holder(env.name)
        if holder:
            op = holder.operation
            self.say(
                f"Active operation: {op.id} ({runbook_name(op.runbook)},"
                f" {status_words(op.status)}), held by {holder.user}"
                f" since {shown_utc(holder.since, 'minutes')}"
            )
        return EXIT_OK

    def resolve(self, args) -> int:
        from bot.runbooks.resolve.plan import plan_resolve

        user = self.me()
        env = self.config.environment(args.env)
        self.engine.check_requester(env, user, "a resolve")
        plan = plan_resolve(env, args.migration, applied=args.applied)
        verb = "recorded as applied" if plan.mode == "applied" else "marked rolled back"
        self.say(f"{plan.migration} on {env.name} will be {verb}.")
        self.say(f"Diagnosis: {plan.summary}")
        if plan.undo_sql:
            self.say("First, undo what took effect (one transaction), backups first:")
            self.say(_indent("\n".join([*plan.undo_effects, *(f"{s};" for s in plan.undo_sql)])))
        if plan.not_applied:  # confirmed on its own question, never by --yes alone
            self.say("These statements did NOT take effect, yet it would be recorded as applied:")
            self.say(_indent("\n".join(plan.not_applied)))
            answer_here = (
                "Run it again in a terminal and answer the question: --yes does not confirm"
                " recording statements that never ran."
            )
            if not self.confirm("Record it as applied anyway?", False, answer_here):
                return EXIT_REFUSED
        return self._start("resolve", env, user, plan.params(), args.yes)

    def revert(self, args) -> int:
        from bot.runbooks.revert.plan import plan_revert

        user = self.me()
        env = self.config.environment(args.env)
        self.engine.check_requester(env, user, "a reverse migration")
        plan = plan_revert(self.config, env, args.migration, datetime.now(UTC))
        self.say(f"Reverse SQL for {plan.migration} on {env.name}:")
        self.say(_indent(plan.sql))
        return self._start("revert", env, user, plan.params(), args.yes)

    def sql(self, args) -> int:
        from bot.runbooks import sql as sql_runbook

        user = self.me()
        env = self.config.environment(args.env)
        text = self.stdin.read() if args.file == "-" else Path(args.file).read_text()
        self.say(f"Manual SQL on {env.name} ({args.reason}):")
        self.say(_indent(text.strip()))
        if not self.confirm("Start the manual SQL rollback?", args.yes):
            return EXIT_REFUSED
        op = sql_runbook.start(self.engine, env.name, user, text, args.verification, args.reason)
        self.say(f"Started {op.id}.")
        return self.follow(op.id)

    def pitr(self, args) -> int:
        from bot.runbooks.pitr import choices as pitr

        user = self.me()
        env = self.config.environment(args.env)
        self.engine.check_requester(env, user, "a point-in-time recovery")
        now = utcnow()
        choices = pitr.recovery_choices(env, self.config, now)
        point = (
            datetime.strptime(args.at, "%Y-%m-%d %H:%M").replace(tzinfo=UTC)
            if args.at
            else choices.suggestion.at
        )
        form = {
            "mode": args.mode,
            "date": f"{point:%Y-%m-%d}",
            "time": f"{point:%H:%M}",
            "target": args.target or choices.default_target,
            "instance_class": args.instance_class or choices.source.instance_class,
        }
        self.say(f"Restore {choices.source.id} at {form['date']} {form['time']} UTC ({args.mode})")
        self.say(f"  suggested because: {choices.suggestion.reason}")
        self.say(f"  new instance: {form['target']} ({form['instance_class']})")
        try:
            params = pitr.restore_params(
                env, form, now, self.config.pitr_snapshot_max_age_minutes
            ) | pitr.pitr_settings(self.config)
        except pitr.FormErrors as error:
            raise UserError("; ".join(f"{k}: {v}" for k, v in error.errors.items())) from None
        return self._start("pitr", env, user, params, args.yes)

    def drill(self, args) -> int:
        user = self.me()
        env = self.config.environment(args.env)
        params = {
            "slow_step_seconds": self.config.drill_slow_step_seconds,
            "progress_events": self.config.drill_progress_events,
        }
        return self._start("drill", env, user, params, args.yes)

    def _start(self, runbook: str, env, user: str, params: dict, yes: bool) -> int:
        if not self.confirm(f"Start {runbook_name(runbook)} on {env.name}?", yes):
            return EXIT_REFUSED
        op = self.engine.start(runbook, env.name, user, params)
        self.say(f"Started {op.id}.")
        return self.follow(op.id)

    def approve(self, args) -> int:
        approval = self.store.approval(args.approval_id)
        if approval is None:
            raise UserError(f"Approval {args.approval_id} does not exist.")
        message = break_glass.approval_message(approval, not args.deny)
        if args.message:
            self.console.out.write(message.decode())
            return EXIT_OK
        who = self._approver(message, args)
        user = who.user
        op = self.store.operation(approval.operation_id)
        self.say(
            f"{op.id}: {runbook_name(op.runbook)} on {op.environment}, requested by {op.requester}."
        )
        self.say(f"Exact plan (hash {approval.plan_hash[:12]}):")
        self.say(_indent(approval.plan_text))
        verb = "Deny" if args.deny else "Approve"
        if not self.confirm(f"{verb} this plan?", args.yes):
            return EXIT_REFUSED
        self.store.append_audit(
            op.id,
            user,
            EventKind.BREAK_GLASS_IDENTITY,
            f"break-glass CLI: {who.how}",
            detail={"approval_id": approval.id, "identity": who.how},
        )
        self.engine.decide_approval(approval.id, user, not args.deny)
        self.say(f"You {'denied' if args.deny else 'approved'} {op.id}.")
        return self.follow(op.id)

    def _approver(self, message: bytes, args) -> break_glass.Identity:
        """Whoever signed this decision, else the OS account running the command."""
        if args.signature or args.ssh_key:
            signature = (
                args.signature.read_bytes()
                if args.signature
                else break_glass.sign(args.ssh_key, message)
            )
            who = break_glass.signer(self.config.break_glass, message, signature)
            if self.claimed and self.claimed != who.user:
                raise PermissionDenied(f"--as {self.claimed} is not who signed: {who.how}.")
            return who
        who = break_glass.caller(self.config.path, self.claimed)
        self.user = self.console.user = who.user
        return who

    def checklist(self, args) -> int:
        op = self.store.operation(args.operation_id)
        if op is None:
            raise UserError(f"There is no operation {args.operation_id}.")
        if args.tick:
            user = self.me()
            items = self.store.checklist(op.id, args.which)
            wanted = {i.item_id for i in items if i.checked and not i.by_bot}
            wanted |= (
                {i.item_id for i in items}
                if args.tick == "all"
                else {t.strip() for t in args.tick.split(",") if t.strip()}
            )
            self.engine.tick_checklist(op.id, args.which, wanted, user)
        self._show_checklist(op.id, args.which)
        if args.tick and op.status not in FINAL_STATES:
            return self.follow(op.id)
        return EXIT_OK

    def decide(self, args) -> int:
        self.engine.decide(args.decision_id, self.me(), args.choice)
        self.say(f"Decided: {args.choice}.")
        return EXIT_OK

    def follow_op(self, args) -> int:
        if self.store.operation(args.operation_id) is None:
            raise UserError(f"There is no operation {args.operation_id}.")
        return self.follow(args.operation_id)

    def takeover(self, args) -> int:
        op = self.engine.take_over(args.operation_id, self.me(), args.reason)
        self.say(f"You now hold {op.id} ({runbook_name(op.runbook)} on {op.environment}).")
        return self.follow(op.id)

    def cancel(self, args) -> int:
        op_id = args.operation_id
        if self.engine.cancel(op_id, self.me()) == "requested":
            self.say(f"Cancelling {op_id}: a step is running; it stops as soon as that ends.")
        else:
            self.say(f"Cancelled {op_id}. Steps that already ran stay done.")
        return self.follow(args.operation_id)


def run(args, config) -> int:
    """`rollback-bot cli ACTION`: a UserError is the user's message and exit 3."""
    terminal = Terminal(config, args.user or os.environ.get(USER_ENV))
    if os.environ.get(GROUPS_ENV):
        terminal.say(
            f"rollback-bot: {GROUPS_ENV} is ignored: user groups come from the config's"
            " [break_glass] groups or from Slack, never from the caller's environment."
        )
    action = {"follow": terminal.follow_op}.get(args.action) or getattr(terminal, args.action)
    try:
        return action(args)
    except UserError as error:
        terminal.say(f"rollback-bot: {_plain(error.message)}")
        if error.hint:
            terminal.say(f"  {_plain(error.hint)}")
        return EXIT_REFUSED
    finally:
        terminal.close()
