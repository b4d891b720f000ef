"""`rollback-bot cli ...` (bot/terminal.py), the break-glass front end, run as a real process
(one per person, as in an incident with Slack down) against a real PostgreSQL and a config file:
the same engine, store and audit log as the Slack bot, the two-person rule across two
invocations under two identities (the OS account running the command, and an approver's SSH
signature checked with ssh-keygen), and progress bars."""

from __future__ import annotations

import getpass
import os
import pty
import pwd
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import psycopg
import pytest

from bot.sandbox import demo
from bot.store import Store
from bot.store.records import DecisionStatus
from tests.unit.slack.test_catalog import bare_ids

CONFIG = """
default_environment = "staging"
state_db = "{state_db}"

[drill]
slow_step_seconds = 0.5
progress_events = 5

[environments.staging]
database_url_env = "STAGING_DATABASE_URL"
migrations_dir = "{migrations}"
protected = true
approvers = ["@db-approvers", "U_CAROL"]

[environments.development]
database_url_env = "DEVELOPMENT_DATABASE_URL"
protected = false

[break_glass]
users = {{ {account} = "U_ALICE" }}
allowed_signers = "{allowed_signers}"
# Slack is down: the approvers' group comes from the config.
groups = {{ db-approvers = ["U_BOB", "U_DAVE"] }}
"""

# Each person's own SSH key; erin's is allowed to sign but she is no approver, mallory's is
# not in allowed_signers at all.
SIGNERS = {"U_BOB": "bob", "U_DAVE": "dave", "U_ERIN": "erin", "U_ALICE": "alice"}


def _keys(tmp_path: Path) -> tuple[Path, dict[str, Path]]:
    keys = {}
    lines = []
    for name in [*SIGNERS.values(), "mallory"]:
        key = tmp_path / "keys" / name
        key.parent.mkdir(exist_ok=True)
        subprocess.run(
            ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", name, "-f", str(key)],
            check=True,
        )
        keys[name] = key
    for user, name in SIGNERS.items():
        public = (tmp_path / "keys" / f"{name}.pub").read_text().strip()
        lines.append(f'{user} namespaces="rollback-bot-approval" {public}')
    allowed = tmp_path / "allowed_signers"
    allowed.write_text("\n".join(lines) + "\n")
    allowed.chmod(0o644)
    return allowed, keys


@dataclass
class Result:
    code: int
    out: str


@pytest.fixture
def cli(tmp_path, pg_url):
    migrations = demo.write_migrations(tmp_path)
    demo.prepare_database(pg_url, migrations)
    config = tmp_path / "rollback.toml"
    state_db = tmp_path / "state.db"
    allowed, keys = _keys(tmp_path)
    config.write_text(
        CONFIG.format(
            state_db=state_db,
            migrations=migrations,
            account=getpass.getuser() if os.getuid() else "root",
            allowed_signers=allowed,
        )
    )
    config.chmod(0o644)  # only its owner writes it, whatever the umask
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "ROLLBACK_BOT_"))}
    env |= {
        "ROLLBACK_BOT_CONFIG": str(config),
        "STAGING_DATABASE_URL": pg_url,
        "DEVELOPMENT_DATABASE_URL": pg_url,
    }

    def run(*args: str, signed_by: str | None = None, stdin: str = "", **extra) -> Result:
        """The command as the OS account running the tests (alice); ``signed_by`` adds
        that person's SSH key (another person approving from the same shell)."""
        key = ["--ssh-key", str(keys[SIGNERS.get(signed_by, signed_by)])] if signed_by else []
        proc = subprocess.run(
            [sys.executable, "-m", "bot.main", "cli", *args, *key],
            env={**env, **extra},
            input=stdin,
            capture_output=True,
            text=True,
            timeout=60,
        )
        return Result(proc.returncode, proc.stdout + proc.stderr)

    run.url = pg_url
    run.keys = keys
    run.state_db = state_db
    run.env = env
    run.migrations = migrations
    return run


def _columns(url: str, table: str) -> list[str]:
    with psycopg.connect(url) as conn:
        rows = conn.execute(
            "SELECT column_name FROM information_schema.columns WHERE table_name = %s", (table,)
        )
        return [r[0] for r in rows]


def _audit(state_db: Path, op_id: str) -> list[tuple[str, str]]:
    store = Store(state_db)
    try:
        return [(a.actor, a.event) for a in store.audit(op_id)]
    finally:
        store.close()


def test_status_shows_the_failed_migration_and_its_diagnosis(cli):
    result = cli("status", "--env", "staging")
    assert result.code == 0, result.out
    assert f"FAILED {demo.FAILED}" in result.out
    assert "2 of 3 statements took effect" in result.out
    # Words, not the program's names (issue 19): PostgreSQL's error, what to type next.
    assert 'ERROR: relation "Invoice" does not exist' in result.out
    assert (
        f"next: undo what took effect, then mark it rolled back: rollback-bot cli resolve"
        f" {demo.FAILED} --env staging" in result.out
    )
    for name in ("undo_then_resolve", "not_applied", "verdict:", "recommended:", "{"):
        assert name not in result.out, name


def test_resolve_with_a_second_person_approving_in_another_invocation(cli):
    started = cli("resolve", demo.FAILED, "--env", "staging", "--yes")
    assert started.code == 0, started.out
    op_id = re.search(r"Started (op-\S+)\.", started.out).group(1)
    assert "waits for the before-rollback checklist" in started.out
    assert (
        f"Tick it (U_ALICE):  rollback-bot cli checklist {op_id} before --tick all" in started.out
    )

    ticked = cli("checklist", op_id, "before", "--tick", "all")
    assert ticked.code == 0, ticked.out
    approval_id = re.search(r"approve (apr-[0-9a-f]+)", ticked.out).group(1)
    # Nothing ran before the approval: what the failed migration left is still there.
    assert _columns(cli.url, "Proposal") and "bio" in _columns(cli.url, "User")
    # The runbook and its state in words, not `resolve, waiting_approval` (issue 19).
    held = cli("status", "--env", "staging")
    assert (
        f"Active operation: {op_id} (Migration resolve (option 1), Waiting for approval),"
        " held by U_ALICE" in held.out
    ), held.out

    # The requester cannot approve her own request; nor can someone who is no approver.
    # A second invocation under the same OS account is the same person, whatever it claims.
    own = cli("approve", approval_id, "--yes")
    assert own.code == 3 and "cannot approve your own request" in own.out
    claimed = cli("approve", approval_id, "--yes", "--as", "U_DAVE")
    assert claimed.code == 3 and "--as U_DAVE does not match who you are" in claimed.out
    claimed = cli("approve", approval_id, "--yes", ROLLBACK_BOT_USER="U_DAVE")
    assert claimed.code == 3 and "does not match who you are" in claimed.out
    stranger = cli("approve", approval_id, "--yes", signed_by="U_ERIN")
    assert stranger.code == 3 and "not an approver" in stranger.out
    unknown_key = cli("approve", approval_id, "--yes", signed_by="mallory")
    assert unknown_key.code == 3 and "does not verify" in unknown_key.out

    # dave is in @db-approvers (the config's [break_glass] groups); he signs with his own
    # key from alice's shell: his approval runs the rest.
    approved = cli("approve", approval_id, "--yes", signed_by="U_DAVE")
    assert approved.code == 0, approved.out
    assert "DROP TABLE IF EXISTS" in approved.out  # he saw the exact plan
    assert (
        f"{op_id}: Migration resolve (option 1) on staging, requested by U_ALICE." in approved.out
    )
    assert f"{op_id}: Finished. The bot's steps are done" in approved.out
    for shown in (started, ticked, held, approved):
        assert bare_ids(shown.out) == [], shown.out
    assert "bio" not in _columns(cli.url, "User")
    assert _columns(cli.url, "Proposal") == []

    status = cli("status", "--env", "staging")
    assert "rolled back 1" in status.out and "FAILED" not in status.out
    events = _audit(cli.state_db, op_id)
    assert ("U_ALICE", "started") in events
    assert ("U_ALICE", "checklist_completed") in events
    assert ("U_ALICE", "approval_refused") in events
    assert ("U_DAVE", "approval_granted") in events
    assert ("U_DAVE", "break_glass_identity") in events
    identity = [a for a in Store(cli.state_db).audit(op_id) if a.event == "break_glass_identity"]
    assert "SSH signature by U_DAVE (ED25519 SHA256:" in identity[-1].message
    assert ("rollback-bot", "finished") in events


def test_drill_shows_progress_bars(cli):
    started = cli("drill", "--env", "development", "--yes")
    op_id = re.search(r"Started (op-\S+)\.", started.out).group(1)
    done = cli("checklist", op_id, "--tick", "all")
    assert done.code == 0, done.out
    assert re.search(r"\[#{30}\] 100% simulated work 5/5", done.out), done.out
    assert re.search(r"\[#+\.+\]\s+\d+% simulated work 1/5", done.out), done.out
    assert f"{op_id}: Finished." in done.out


def test_cancel_says_what_happened_in_words(cli):
    started = cli("drill", "--env", "development", "--yes")
    op_id = re.search(r"Started (op-\S+)\.", started.out).group(1)
    cancelled = cli("cancel", op_id)
    assert f"Cancelled {op_id}. Steps that already ran stay done." in cancelled.out
    assert f"{op_id}: Cancelled before any change. Cancelled by" in cancelled.out
    assert "cancel cancelled" not in cancelled.out and bare_ids(cancelled.out) == []
    again = cli("cancel", op_id)
    assert again.code != 0 and "already ended (Cancelled before any change)" in again.out


def test_who_you_are_comes_from_the_os_account_and_confirmation_is_explicit(cli):
    config = Path(cli.env["ROLLBACK_BOT_CONFIG"])
    mapped = config.read_text()
    # An OS account the config does not map is nobody: refused, nothing started.
    config.write_text(re.sub(r"users = \{[^}]*\}", 'users = { someone_else = "U_ZED" }', mapped))
    anonymous = cli("resolve", demo.FAILED, "--env", "staging", "--yes")
    assert anonymous.code == 3 and "is not in the config's [break_glass] users" in anonymous.out
    config.write_text(mapped)
    # --as that matches is accepted; the caller's environment cannot add group members.
    unconfirmed = cli(
        "resolve", demo.FAILED, "--env", "staging", "--as", "U_ALICE",
        ROLLBACK_BOT_USERGROUPS="db-approvers=U_ALICE",
    )  # fmt: skip
    assert unconfirmed.code == 3 and "Pass --yes" in unconfirmed.out
    assert "ROLLBACK_BOT_USERGROUPS is ignored" in unconfirmed.out
    assert "Started" not in unconfirmed.out
    status = cli("status", "--env", "staging")
    assert "Active operation" not in status.out


def test_an_approval_signed_elsewhere_counts_for_that_decision_only(cli, tmp_path):
    """The approver signs the printed text on their own machine (ssh-keygen -Y sign) and
    hands over the signature: it approves that plan and cannot be reused to deny, or for
    another approval."""
    started = cli("drill", "--env", "staging", "--yes")
    op_id = re.search(r"Started (op-\S+)\.", started.out).group(1)
    ticked = cli("checklist", op_id, "before", "--tick", "all")
    approval_id = re.search(r"approve (apr-[0-9a-f]+)", ticked.out).group(1)
    text = cli("approve", approval_id, "--message")
    assert text.code == 0 and f"approval: {approval_id}" in text.out
    assert "decision: approve" in text.out and "plan-sha256: " in text.out
    message = tmp_path / "decision.txt"
    message.write_text(text.out)
    subprocess.run(
        ["ssh-keygen", "-Y", "sign", "-q", "-f", str(cli.keys["bob"]), "-n",
         "rollback-bot-approval", str(message)],
        check=True, capture_output=True,
    )  # fmt: skip
    signature = f"{message}.sig"
    as_denial = cli("approve", approval_id, "--deny", "--yes", "--signature", signature)
    assert as_denial.code == 3 and "does not verify" in as_denial.out
    approved = cli("approve", approval_id, "--yes", "--signature", signature)
    assert approved.code == 0, approved.out
    assert f"{op_id}: Finished." in approved.out
    assert ("U_BOB", "approval_granted") in _audit(cli.state_db, op_id)


def test_world_writable_identity_files_are_refused(cli):
    started = cli("drill", "--env", "staging", "--yes")
    op_id = re.search(r"Started (op-\S+)\.", started.out).group(1)
    ticked = cli("checklist", op_id, "before", "--tick", "all")
    approval_id = re.search(r"approve (apr-[0-9a-f]+)", ticked.out).group(1)
    (cli.keys["bob"].parent.parent / "allowed_signers").chmod(0o666)
    refused = cli("approve", approval_id, "--yes", signed_by="U_BOB")
    assert refused.code == 2 and "writable by its group or by everyone" in refused.out
    assert ("U_BOB", "approval_granted") not in _audit(cli.state_db, op_id)
    # The config says who is who: one anybody may edit is refused too.
    (cli.keys["bob"].parent.parent / "allowed_signers").chmod(0o644)
    Path(cli.env["ROLLBACK_BOT_CONFIG"]).chmod(0o666)
    refused = cli("approve", approval_id, "--yes")
    assert refused.code == 2 and "the config file (it says who is who)" in refused.out


NOBODY = 65534  # an unprivileged OS account every Debian machine has ("nobody")


def _as_another_account(cli, config: Path, *args: str) -> Result:
    """The CLI run by another person's OS account: its real uid is NOBODY's (what the
    break-glass identity reads), its file access stays the test's, so it can reach the
    state and the migrations the test made."""
    proc = subprocess.run(
        [sys.executable, "-m", "bot.main", "cli", *args],
        env={**cli.env, "ROLLBACK_BOT_CONFIG": str(config)},
        capture_output=True,
        text=True,
        timeout=60,
        preexec_fn=lambda: os.setresuid(NOBODY, 0, 0),
    )
    return Result(proc.returncode, proc.stdout + proc.stderr)


@pytest.mark.skipif(os.getuid() != 0, reason="acting as another OS account needs root")
def test_a_config_the_caller_wrote_cannot_make_them_the_approver(cli, tmp_path):
    """The caller picks the config ($ROLLBACK_BOT_CONFIG): a copy of their own that maps
    their account to an approver is refused; the administrators' file counts."""
    started = cli("drill", "--env", "staging", "--yes")
    op_id = re.search(r"Started (op-\S+)\.", started.out).group(1)
    ticked = cli("checklist", op_id, "before", "--tick", "all")
    approval_id = re.search(r"approve (apr-[0-9a-f]+)", ticked.out).group(1)
    nobody = pwd.getpwuid(NOBODY).pw_name
    administrators = Path(cli.env["ROLLBACK_BOT_CONFIG"]).read_text()
    as_bob = re.sub(r"users = \{[^}]*\}", f'users = {{ {nobody} = "U_BOB" }}', administrators)

    forged = tmp_path / "mine.toml"
    forged.write_text(as_bob)
    forged.chmod(0o644)
    os.chown(forged, NOBODY, NOBODY)  # the caller's own copy
    refused = _as_another_account(cli, forged, "approve", approval_id, "--yes")
    assert refused.code == 2, refused.out
    assert f"is owned by you (uid {NOBODY})" in refused.out
    assert "could change who you are" in refused.out
    assert ("U_BOB", "approval_granted") not in _audit(cli.state_db, op_id)

    # The same mapping in a file its administrators (root) own: the account is bob.
    kept = tmp_path / "administered.toml"
    kept.write_text(as_bob)
    kept.chmod(0o644)
    approved = _as_another_account(cli, kept, "approve", approval_id, "--yes")
    assert approved.code == 0, approved.out
    assert f"{op_id}: Finished." in approved.out
    identity = [a for a in Store(cli.state_db).audit(op_id) if a.event == "break_glass_identity"]
    assert f"OS account {nobody} (uid {NOBODY})" in identity[-1].message


def test_sql_from_a_terminal_commits_on_the_requesters_word(cli):
    with psycopg.connect(cli.url, autocommit=True) as conn:
        conn.execute(
            "CREATE TABLE notes (id int PRIMARY KEY, body text);"
            " INSERT INTO notes VALUES (1, 'keep'), (2, 'remove')"
        )
    started = cli(
        "sql",
        "--env",
        "development",
        "--reason",
        "INC-9",
        "--yes",
        "--verification",
        "SELECT count(*) FROM notes",
        stdin="DELETE FROM notes WHERE id = 2;",
    )
    assert started.code == 0, started.out
    op_id = re.search(r"Started (op-\S+)\.", started.out).group(1)
    # The dry run's rows are printed in the requester's own invocation, never audited.
    assert "its rows, for you only" in started.out, started.out
    assert "for_requester" not in {event for _, event in _audit(cli.state_db, op_id)}
    # The checklist opens the gate; the apply step then holds its transaction and waits for
    # the requester's decision, given by a second invocation, as in an incident.
    base = {k: v for k, v in os.environ.items() if not k.startswith(("SLACK_",))}
    waiting = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "bot.main",
            "cli",
            "checklist",
            op_id,
            "--tick",
            "all",
        ],
        env={**base, **_cli_env(cli)},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        decision = _wait_for_decision(cli.state_db, op_id)
        decided = cli("decide", decision, "commit")
        assert decided.code == 0, decided.out
        out = waiting.communicate(timeout=60)[0]
    finally:
        waiting.kill()
    assert f"{op_id}: Finished." in out, out
    with psycopg.connect(cli.url) as conn:
        assert conn.execute("SELECT id FROM notes ORDER BY id").fetchall() == [(1,)]
        backups = conn.execute(
            "SELECT tablename FROM pg_tables WHERE tablename LIKE 'notes_backup_%'"
        ).fetchall()
    assert len(backups) == 1


def _cli_env(cli) -> dict:
    return cli.env


def _wait_for_decision(state_db: Path, op_id: str, timeout: float = 40) -> str:
    import time

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        store = Store(state_db)
        try:
            pending = store.decisions(op_id, DecisionStatus.PENDING)
        finally:
            store.close()
        if pending:
            return pending[0].id
        time.sleep(0.2)
    raise AssertionError("no decision was asked")


def _run_with_approval(cli, *args: str) -> str:
    """Start as alice, tick the checklist, dave signs his approval; returns the output."""
    started = cli(*args, "--yes")
    assert started.code == 0, started.out
    op_id = re.search(r"Started (op-\S+)\.", started.out).group(1)
    ticked = cli("checklist", op_id, "before", "--tick", "all")
    approval_id = re.search(r"approve (apr-[0-9a-f]+)", ticked.out).group(1)
    approved = cli("approve", approval_id, "--yes", signed_by="U_DAVE")
    assert f"{op_id}: Finished." in approved.out, approved.out
    return approved.out


def test_revert_from_a_terminal_backs_up_and_drops_a_table(cli):
    # Revert wants no failed or pending migration: resolve the demo's failed one and take
    # its file away (the runbook's "fix the migration file").
    _run_with_approval(cli, "resolve", demo.FAILED, "--env", "staging")
    failed_dir = cli.migrations / demo.FAILED
    (failed_dir / "migration.sql").unlink()
    failed_dir.rmdir()

    _run_with_approval(cli, "revert", demo.PROJECTS, "--env", "staging")
    assert _columns(cli.url, "Project") == []
    with psycopg.connect(cli.url) as conn:
        backups = conn.execute(
            "SELECT tablename FROM pg_tables WHERE tablename LIKE 'Project_backup_%'"
        ).fetchall()
        assert len(backups) == 1
        rows = conn.execute(f'SELECT count(*) FROM "{backups[0][0]}"').fetchone()[0]
    assert rows == 10  # every project kept


RDS_ENV = """
[environments.rds]
database_secret_id = "skillancer/rds/database"
rds_instance_id = "skillancer-rds"
protected = true
approvers = ["@db-approvers"]

[pitr]
poll_seconds = 0.2
"""


def test_pitr_from_a_terminal_restores_verifies_and_switches(aws, cli, tmp_path):
    """moto's RDS has no database behind an endpoint: the source is created on the test
    PostgreSQL's port and PGHOSTADDR=127.0.0.1 makes the "restored" endpoint reach it."""
    import json
    from urllib.parse import urlsplit

    from tests.unit.aws.source_instance import make_source

    make_source(aws, "skillancer-rds", port=urlsplit(cli.url).port)
    aws.client("secretsmanager").create_secret(
        Name="skillancer/rds/database", SecretString=json.dumps({"url": cli.url})
    )
    config = Path(cli.env["ROLLBACK_BOT_CONFIG"])
    config.write_text(config.read_text() + RDS_ENV)
    cli.env.update({k: v for k, v in os.environ.items() if k.startswith("AWS_")})
    cli.env["PGHOSTADDR"] = "127.0.0.1"

    out = cli("pitr", "--env", "rds", "--mode", "time", "--yes").out
    started = re.search(r"Started (op-\S+)\.", out)
    assert started, out
    op_id = started.group(1)
    for _ in range(12):  # follow the printed next step, as two people would
        if f"{op_id}: Finished." in out:
            break
        if m := re.search(r"approve (apr-[0-9a-f]+)", out):
            out = cli("approve", m.group(1), "--yes", signed_by="U_DAVE").out
        elif m := re.search(r"decide (dec-[0-9a-f]+) <([^>]+)>", out):
            out = cli("decide", m.group(1), m.group(2).split("|")[-1]).out
        elif "--tick all" in out:
            out = cli("checklist", op_id, "before", "--tick", "all").out
        else:
            out = cli("follow", op_id).out
    assert f"{op_id}: Finished." in out, out
    secret = aws.client("secretsmanager").get_secret_value(SecretId="skillancer/rds/database")
    assert "skillancer-rds-recovery" in json.loads(secret["SecretString"])["url"]
    # The same core as the Slack bot: the switch scheduled the old instance's cleanup, for
    # the running bot's scheduler to start when it comes due.
    store = Store(cli.state_db)
    try:
        jobs = {j.id: j.kind for j in store.pending_jobs()}
    finally:
        store.close()
    assert jobs[f"pitr-cleanup:{op_id}"] == "pitr_cleanup_due"


def _on_a_terminal(cli, answer: str, *args: str) -> Result:
    """The command with a terminal as its stdin (a person at the keyboard), who types
    ``answer`` to the first question asked."""
    controller, terminal = pty.openpty()
    proc = subprocess.Popen(
        [sys.executable, "-m", "bot.main", "cli", *args],
        env=cli.env,
        stdin=terminal,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    os.close(terminal)
    try:
        os.write(controller, f"{answer}\n".encode())
        out, _ = proc.communicate(timeout=60)
    finally:
        os.close(controller)
    return Result(proc.returncode, out)


def _operations(state_db: Path) -> list:
    store = Store(state_db)
    try:
        return store.operations(limit=10)
    finally:
        store.close()


def test_resolve_applied_of_a_partly_applied_migration_needs_its_own_answer_not_yes(cli):
    """Issue 15, reproduction 4: `--applied` on a migration of which the last statement
    never ran. --yes confirms starting an operation, never recording that statement as
    applied: that needs a person's answer to its own question."""
    args = ("resolve", demo.FAILED, "--env", "staging", "--applied", "--yes")
    refused = cli(*args)
    assert refused.code == 3, refused.out
    assert "These statements did NOT take effect" in refused.out and '"Invoice"' in refused.out
    assert "Record it as applied anyway? Nothing was started." in refused.out
    assert "--yes does not confirm" in refused.out and "Pass --yes" not in refused.out
    assert _operations(cli.state_db) == []

    declined = _on_a_terminal(cli, "n", *args)
    assert declined.code == 3, declined.out
    assert "Record it as applied anyway? [y/N]" in declined.out
    assert _operations(cli.state_db) == []

    confirmed = _on_a_terminal(cli, "y", *args)
    assert confirmed.code == 0, confirmed.out
    op_id = re.search(r"Started (op-\S+)\.", confirmed.out).group(1)
    [op] = _operations(cli.state_db)
    assert op.id == op_id and op.runbook == "resolve" and op.params["mode"] == "applied"
    assert any('"Invoice"' in s for s in op.params["not_applied"])
