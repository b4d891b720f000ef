"""The bot runs as a real process and is killed with SIGKILL at every step
boundary of every runbook covered here (bot/faults.py crash points: a step "started"
(recorded running, action not run), "acted" (action done, success not recorded) and
"finished" (success recorded)). It is restarted, and the operation must resume or stop in
a safe state that is reported in the incident channel; no step runs twice unless it is
idempotent.

Boundaries covered: every step x (started, finished), plus "acted" for each step that is
not idempotent (the moment where a repeat would do harm). The count is printed.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import psycopg
import pytest

from bot.runbooks import RUNBOOKS
from bot.slack.ids import Action, Block, Callback
from bot.store import Store
from bot.store.records import DecisionStatus
from tests.rig.bot_server import DEFAULT_CONFIG, free_port, wait_until
from tests.rig.signer import Signer
from tests.scenario.test_drill import submit_every_item
from tests.scenario.test_pitr import RDS_ENV, SECRET_ID, SOURCE, prepare_database
from tests.scenario.test_resolve import BAD, BAD_SQL, GOOD, INIT_SQL
from tests.unit.aws.source_instance import make_source

COVERED = ("drill", "resolve", "deploy", "revert", "sql", "pitr")


# PITR's steps each take seconds against moto (snapshot, restore, verification on a real
# database): all 17 of its boundaries would add minutes to CI. Its riskiest ones are covered:
# the restore (destructive), the wait that must resume from the recorded restore id, and
# every moment of the traffic switch (not idempotent). reapply_migrations is skipped in
# this scenario (nothing to re-apply), so it has no boundary to crash at.
PITR_BOUNDARIES = [
    ("pitr", "restore", "started"),
    ("pitr", "wait_for_restore", "started"),
    ("pitr", "switch_traffic", "started"),
    ("pitr", "switch_traffic", "acted"),
    ("pitr", "switch_traffic", "finished"),
]

# The undo of a switch (after a PITR run to its end): the moment the secret is back but the
# scheduled deletion of the now live old instance is not cancelled yet, and the cancel.
UNDO_BOUNDARIES = [
    ("pitr_undo_switch", "undo_switch", "finished"),
    ("pitr_undo_switch", "cancel_cleanup", "started"),
    ("pitr_undo_switch", "cancel_cleanup", "finished"),
]


# The revert's file-write boundary: the reverse applied and recorded in Prisma's history,
# its success not yet recorded by the bot (the rerun must find it applied, not run it again)
# and the file not yet written into the migrations directory.
EXTRA_BOUNDARIES = [("revert", "apply", "acted")]


def boundaries() -> list[tuple[str, str, str]]:
    points = []
    for name in COVERED:
        if name == "pitr":
            points += PITR_BOUNDARIES + UNDO_BOUNDARIES
            continue
        for step in RUNBOOKS[name].steps:
            moments = ["started", "finished"] + ([] if step.idempotent else ["acted"])
            points += [(name, step.id, m) for m in moments]
    return points + EXTRA_BOUNDARIES


BOUNDARIES = boundaries()


def test_report_coverage(capsys):
    with capsys.disabled():
        print(f"\ncrash harness: {len(BOUNDARIES)} step boundaries across {', '.join(COVERED)}")
    assert len(BOUNDARIES) >= 25


def bot_env(fake_slack, secret: str, config, pg_url: str) -> dict:
    """A bot process's environment: this one's minus any Slack/bot settings, plus the fake
    Slack, the config and staging's database."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "ROLLBACK_"))}
    return env | {
        "PGHOSTADDR": "127.0.0.1",
        "SLACK_BOT_TOKEN": fake_slack.token,
        "SLACK_SIGNING_SECRET": secret,
        "SLACK_API_URL": fake_slack.url,
        "ROLLBACK_BOT_CONFIG": str(config),
        "STAGING_DATABASE_URL": pg_url,
    }


@dataclass
class BotProcess:
    """`rollback-bot serve` as a real process, killed and restarted by the test."""

    env: dict
    port: int
    state_db: Path
    slack: object
    signer: Signer
    proc: subprocess.Popen | None = None
    outputs: list[str] = field(default_factory=list)

    def start(self, crash_at: str | None = None, timeout: float = 20) -> None:
        env = dict(self.env)
        if crash_at:
            env["ROLLBACK_BOT_CRASH_AT"] = crash_at
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "bot.main",
                "serve",
                "--host",
                "127.0.0.1",
                "--port",
                str(self.port),
                "--log-level",
                "warning",
            ],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        deadline = time.monotonic() + timeout
        while True:
            try:
                with contextlib.closing(
                    __import__("socket").create_connection(("127.0.0.1", self.port), timeout=0.2)
                ):
                    return
            except OSError:
                assert self.proc.poll() is None, self.proc.stdout.read()
                assert time.monotonic() < deadline, "bot did not start"
                time.sleep(0.05)

    def wait_killed(self, timeout: float = 30) -> int:
        code = self.proc.wait(timeout)
        self.outputs.append(self.proc.stdout.read())
        return code

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    @property
    def store(self) -> Store:
        return Store(self.state_db)

    def wait_until(self, predicate, timeout: float = 20, what: str = "condition"):
        return wait_until(predicate, timeout, what)


@pytest.fixture
def project(tmp_path, pg_url):
    directory = tmp_path / "migrations"
    directory.mkdir()
    (directory / "migration_lock.toml").write_text('provider = "postgresql"\n')
    for name, sql in ((GOOD, INIT_SQL), (BAD, BAD_SQL)):
        (directory / name).mkdir()
        (directory / name / "migration.sql").write_text(sql)
    from bot.prisma.deploy import deploy

    with contextlib.suppress(Exception):
        deploy(pg_url, directory)
    return directory


@pytest.fixture
def rds(aws, pg_server):
    """PITR's world: moto's RDS with a source instance on the test PostgreSQL's port (so the
    "restored" endpoint reaches a real database through PGHOSTADDR=127.0.0.1, as in
    tests/scenario/test_pitr.py) and the database secret the switch moves."""
    url = pg_server.create_database()
    prepare_database(url)
    make_source(aws, SOURCE, port=urlsplit(url).port)
    aws.client("secretsmanager").create_secret(
        Name=SECRET_ID, SecretString=json.dumps({"url": url})
    )
    return url


@pytest.fixture
def bot_process(tmp_path, fake_slack, pg_url, project, pg_server):
    secret = "crash-harness-signing-secret"
    state_db = tmp_path / "state.db"
    config = tmp_path / "rollback.toml"
    config.write_text(
        DEFAULT_CONFIG.format(
            state_db=state_db,
            approval_expiry_minutes=30,
            reminder_delay_minutes=30,
            progress_edit_interval_seconds=0.5,
            drill_seconds=0.3,
            drill_events=3,
            top_extra="",
            production_extra="",
            development_extra="",
            tables_extra=RDS_ENV,
            staging_extra=f'migrations_dir = "{project}"',
        )
    )
    # The restarted process is the same replica (as a restarted container in its pod): it
    # takes back the leases of the one that was killed at once.
    env = bot_env(fake_slack, secret, config, pg_url) | {
        "ROLLBACK_BOT_REPLICA": "crash-harness-bot"
    }
    port = free_port()
    bot = BotProcess(
        env,
        port,
        state_db,
        fake_slack,
        Signer(f"http://127.0.0.1:{port}/slack/events", secret, fake_slack),
    )
    yield bot
    bot.stop()


# --- driving each runbook: start it, then answer its gates from the store's state ------


def quietly(fn):
    """A request to a bot that may be dying: a lost answer is not a failure here."""
    with contextlib.suppress(OSError, AssertionError):
        return fn()
    return None


def start_drill(bot):
    quietly(lambda: bot.signer.slash("drill --env staging"))


def start_resolve(bot):
    quietly(lambda: bot.signer.slash(f"resolve {BAD} --env staging"))
    update = bot.slack.wait_for("views.update")[-1]
    quietly(lambda: bot.signer.submit_view(update.args["view_id"], user="U_ALICE", values={}))


def start_deploy(bot, pg_url, project):
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute(
            "UPDATE _prisma_migrations SET rolled_back_at = now() WHERE finished_at IS NULL"
        )
        conn.execute('DROP TABLE IF EXISTS "Post"; ALTER TABLE "User" DROP COLUMN IF EXISTS "bio"')
    (project / BAD / "migration.sql").write_text(
        'CREATE TABLE "Post" ("id" SERIAL PRIMARY KEY, "title" TEXT);\n'
    )
    quietly(lambda: bot.signer.slash("deploy --env staging"))
    # What would run is shown first; the operation starts on Continue.
    call = bot.slack.wait_for(
        "views.update", where=lambda c: c.args["view"].get("callback_id") == Callback.DEPLOY
    )[-1]
    quietly(lambda: bot.signer.submit_view(call.response["view"]["id"], user="U_ALICE", values={}))


def start_revert(bot, pg_url, project):
    """Reverts the first migration: its table holds data, so the reverse backs it up first.
    The failed one is resolved and its file removed beforehand (revert wants no other
    migration failed or pending)."""
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute(
            "UPDATE _prisma_migrations SET rolled_back_at = now() WHERE finished_at IS NULL"
        )
        conn.execute('DROP TABLE IF EXISTS "Post"; ALTER TABLE "User" DROP COLUMN IF EXISTS "bio"')
        conn.execute("""INSERT INTO "User" ("email") VALUES ('a@example.com')""")
    (project / BAD / "migration.sql").unlink()
    (project / BAD).rmdir()
    quietly(lambda: bot.signer.slash(f"revert {GOOD} --env staging"))
    update = bot.slack.wait_for("views.update")[-1]
    quietly(lambda: bot.signer.submit_view(update.args["view_id"], user="U_ALICE", values={}))


def start_pitr(bot):
    quietly(lambda: bot.signer.slash("pitr --env rds"))
    form = bot.slack.wait_for(
        "views.update",
        where=lambda c: (
            c.args["view"]["callback_id"] == Callback.PITR
            and any(b.get("block_id") == Block.PITR_MODE for b in c.args["view"]["blocks"])
        ),
    )[-1]
    view_id = form.response["view"]["id"]
    quietly(lambda: bot.signer.submit_view(view_id, user="U_ALICE", values={}))


def start_undo_switch(bot):
    """A PITR run to its end (restore, switch, cleanup scheduled), then "Undo switch"."""
    start_pitr(bot)
    pitr = bot.wait_until(lambda: bot.store.operations(limit=1), what="the recovery")[0]
    answer_gates(bot, pitr.id, until_dead=False, timeout=90)
    assert bot.store.operation(pitr.id).status == "succeeded"
    channel = bot.store.operation(pitr.id).incident_channel
    bot.wait_until(
        lambda: any("Cleanup scheduled" in m["text"] for m in bot.slack.messages(channel)),
        what="the cleanup card",
    )
    quietly(
        lambda: bot.signer.block_action(
            Action.PITR_UNDO_SWITCH, None, user="U_ALICE", channel=channel
        )
    )


def start_sql(bot, pg_url):
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute(
            "CREATE TABLE notes (id int PRIMARY KEY, body text);"
            " INSERT INTO notes VALUES (1, 'a'), (2, 'b')"
        )
    quietly(lambda: bot.signer.slash("sql --env staging"))
    opened = bot.slack.wait_for(
        "views.open", where=lambda c: c.args["view"]["callback_id"] == Callback.SQL
    )[-1]
    values = {Block.SQL_TEXT: "DELETE FROM notes WHERE id = 2;", Block.SQL_REASON: "crash"}
    view_id = opened.response["view"]["id"]
    quietly(lambda: bot.signer.submit_view(view_id, user="U_ALICE", values=values))


FINAL = ("succeeded", "stopped", "failed", "cancelled")


def answer_gates(bot, op_id: str, *, until_dead: bool, timeout: float = 40):
    """Does what the people in the channel would do next, from the recorded state, until
    the operation ends (or, before the restart, until the process dies)."""
    deadline = time.monotonic() + timeout
    answered: set[str] = set()
    while time.monotonic() < deadline:
        if until_dead and bot.proc.poll() is not None:
            return
        op = bot.store.operation(op_id)
        if op.status in FINAL:
            return
        if op.status == "waiting_checklist" and "checklist" not in answered:
            answered.add("checklist")
            quietly(lambda: tick_checklist(bot, op_id))
        channel = op.incident_channel
        for approval in bot.store.approvals(op_id):
            if approval.status == "pending" and approval.message_ts and approval.id not in answered:
                answered.add(approval.id)
                quietly(
                    lambda channel=channel: bot.signer.block_action(
                        Action.APPROVE, None, user="U_BOB", channel=channel
                    )
                )
        for decision in bot.store.decisions(op_id, DecisionStatus.PENDING):
            if decision.id not in answered and decision.message_ts:
                answered.add(decision.id)
                choices = list(decision.choices)
                choice = "commit" if "commit" in choices else choices[0]
                quietly(
                    lambda channel=channel, choice=choice: bot.signer.block_action(
                        f"{Action.DECIDE}_{choice}", None, user="U_ALICE", channel=channel
                    )
                )
        time.sleep(0.1)
    raise AssertionError(f"operation {op_id} did not end: {bot.store.operation(op_id)}")


def _errors(bot, op_id: str) -> list[str]:
    return [s.error for s in bot.store.steps(op_id) if s.error]


def tick_checklist(bot, op_id):
    before = len(bot.slack.calls_to("views.open"))
    bot.signer.slash(f"checklist {op_id} before")
    call = bot.slack.wait_for("views.open", count=before + 1)[-1]
    submit_every_item(bot, call.response["view"]["id"])


@pytest.mark.parametrize(
    ("runbook", "step_id", "moment"), BOUNDARIES, ids=[":".join(b) for b in BOUNDARIES]
)
def test_killed_at_a_step_boundary_resumes_or_stops_safely(
    bot_process, request, runbook, step_id, moment, pg_url, project
):
    bot = bot_process
    if runbook.startswith("pitr"):
        # Only PITR needs moto's RDS: set it up (and its AWS settings) for it alone.
        request.getfixturevalue("rds")
        bot.env.update({k: v for k, v in os.environ.items() if k.startswith("AWS_")})
    bot.start(crash_at=f"{runbook}:{step_id}:{moment}")
    starters = {
        "drill": lambda: start_drill(bot),
        "resolve": lambda: start_resolve(bot),
        "deploy": lambda: start_deploy(bot, pg_url, project),
        "revert": lambda: start_revert(bot, pg_url, project),
        "pitr": lambda: start_pitr(bot),
        "sql": lambda: start_sql(bot, pg_url),
        "pitr_undo_switch": lambda: start_undo_switch(bot),
    }
    starters[runbook]()
    op = bot.wait_until(
        lambda: [o for o in bot.store.operations(limit=1) if o.runbook == runbook],
        what="the operation",
    )[0]
    answer_gates(bot, op.id, until_dead=True)
    assert bot.wait_killed() == -signal.SIGKILL, "the crash point was not reached"

    bot.start()  # restarted without the crash point
    answer_gates(bot, op.id, until_dead=False)
    final = bot.store.operation(op.id)

    step = RUNBOOKS[runbook].step(step_id)
    row = bot.store.step(op.id, step_id)
    audit = [a.event for a in bot.store.audit(op.id)]
    assert "resumed" in audit
    if moment == "finished":
        assert row.attempts == 1  # recorded as done: never repeated
        assert final.status == "succeeded", (final.result, _errors(bot, op.id))
    elif step.idempotent:
        # done: "todo" for a step whose part is telling a person what to do (resolve's next
        # step is a to-do for the requester, not a tick)
        assert row.attempts == 2 and row.status in ("succeeded", "todo"), row.error
        assert final.status == "succeeded", (final.result, _errors(bot, op.id))
    else:
        # Not safe to repeat: stopped, with the reason, and the step ran at most once.
        assert final.status == "stopped", final
        assert "not safe to repeat" in final.result
        assert row.attempts == 1
    if runbook == "revert":  # written once, after it applied, exactly as approved
        (written,) = project.glob(f"*_revert_{GOOD}")
        assert (written / "migration.sql").read_text() == final.params["sql"]
        assert not list(project.rglob("*.partial"))
    if runbook == "pitr_undo_switch":  # the old instance is live again: never deleted
        job = bot.store.job(f"pitr-cleanup:{final.params['pitr_operation']}")
        assert job.done_at is not None
        pitr_channel = bot.store.operation(final.params["pitr_operation"]).incident_channel
        # Killed after the cancel was recorded, the card's edit may have died in the outbox
        # with the process (nothing replays Slack calls); the job is cancelled regardless,
        # and a deletion started from a stale button is refused (the secret's version).
        if (step_id, moment) != ("cancel_cleanup", "finished"):
            bot.wait_until(
                lambda: any(
                    "Cleanup cancelled" in m["text"] for m in bot.slack.messages(pitr_channel)
                ),
                what="the cleanup card edited",
            )
    # Reported where people look: a thread line in the incident channel says so.
    channel = final.incident_channel
    bot.wait_until(
        lambda: any(
            "restarted" in m["text"]
            for m in bot.slack.messages(channel)
            + [r for m in bot.slack.messages(channel) for r in bot.slack.thread(channel, m["ts"])]
        ),
        what="the restart reported in the incident channel",
    )
