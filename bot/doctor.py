"""``rollback-bot doctor [--env NAME]`` and ``/rollback doctor``: whether the bot, from where
it runs, can do what the runbooks will ask of it. One PASS/FAIL line per check, by section;
nothing is changed anywhere (write permissions on AWS can only be proven by writing, so the
AWS checks are the reads each runbook starts with; docs/iam-policy.json lists the rest).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib.resources import files
from pathlib import Path

import boto3
import psycopg
import yaml
from botocore.exceptions import BotoCoreError
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError, SlackClientError

from bot import aws, database
from bot.aws import rds, secrets_manager
from bot.errors import ConfigError, RollbackBotError, UserError
from bot.prisma.status import migration_status
from bot.redaction import Secret
from bot.serving import quiet_logger, state_db_writable
from bot.settings import Config, Environment, SlackSettings
from bot.store import migrations
from bot.store.maintenance import Finding as Check  # one PASS/FAIL line
from bot.store.schema import version_of
from bot.text import plural

# The Slack app's manifest, shipped in the package (an installed bot has no checkout): a copy
# of the top-level manifest.yml that tests/test_wheel.py holds identical.
MANIFEST = files("bot").joinpath("manifest.yml")


@dataclass(frozen=True)
class Section:
    title: str
    checks: tuple[Check, ...]

    @property
    def ok(self) -> bool:
        return all(c.ok for c in self.checks)


def run(
    config: Config, slack: SlackSettings | ConfigError, env_name: str | None = None
) -> list[Section]:
    """``slack``: the settings, or the error that reading them from the environment gave."""
    envs = [config.environment(env_name)] if env_name else list(config.environments.values())
    sections = [Section("state database", tuple(state_checks(config.state_db)))]
    if isinstance(slack, ConfigError):
        sections.append(Section("Slack", (Check(False, str(slack)),)))
    else:
        sections.append(Section("Slack", tuple(slack_checks(slack, envs))))
    aws_ready = True
    if needing_aws := [e for e in envs if e.rds_instance_id or e.database_secret_id]:
        aws_section = Section("AWS", tuple(aws_checks(needing_aws)))
        sections.append(aws_section)
        aws_ready = aws_section.ok
    sections += [
        Section(f"environment {e.name}", tuple(environment_checks(e, aws_ready))) for e in envs
    ]
    return sections


def report(sections: list[Section]) -> str:
    lines = []
    for section in sections:
        lines.append(f"{section.title}:")
        lines += [f"  {check.line()}" for check in section.checks]
    failed = sum(not c.ok for s in sections for c in s.checks)
    lines.append("All checks passed." if not failed else f"{plural(failed, 'check')} failed.")
    return "\n".join(lines)


def _guarded(what: str, probe: Callable[[], str]) -> Check:
    """A check that passes with ``probe``'s detail, or fails with the error's own words."""
    try:
        return Check(True, f"{what}: {probe()}")
    except (RollbackBotError, psycopg.Error, sqlite3.Error, OSError, BotoCoreError) as error:
        return Check(False, f"{what}: {error}")


# --- the state database -----------------------------------------------------------------


def state_checks(path: Path | Secret) -> list[Check]:
    if isinstance(path, Path) and not path.is_file():
        return [Check(False, f"{path} does not exist yet (the bot creates it at start)")]
    writable = state_db_writable(path)
    # A PostgreSQL state (bot/store/postgres.py) is named without its URL (it may hold a
    # password); its schema version is checked as a file's is.
    what = path if isinstance(path, Path) else "the PostgreSQL state"
    checks = [Check(writable["ok"], f"{what} takes writes" + _error(writable))]
    if not writable["ok"] and not isinstance(path, Path):
        return checks
    have, latest = version_of(path), migrations.latest_version()
    checks.append(Check(have == latest, f"schema version {have} (this release: {latest})"))
    return checks


def _error(result: dict) -> str:
    return f" ({result['error']})" if result.get("error") else ""


# --- Slack ---------------------------------------------------------------------------------


def manifest_scopes() -> set[str]:
    manifest = yaml.safe_load(MANIFEST.read_text())
    return set(manifest["oauth_config"]["scopes"]["bot"])


def slack_checks(slack: SlackSettings, envs: list[Environment]) -> list[Check]:
    client = WebClient(
        token=slack.bot_token.reveal(),
        base_url=slack.api_url or WebClient.BASE_URL,
        timeout=10,
        logger=quiet_logger(),
    )
    try:
        answer = client.auth_test()
    except SlackApiError as error:
        return [Check(False, f"Slack refused the bot token: {error.response.get('error')}")]
    except (SlackClientError, OSError) as error:
        return [Check(False, f"cannot reach Slack ({type(error).__name__})")]
    checks = [Check(True, f"bot token accepted (team {answer.get('team')})")]
    granted = {s.strip() for s in (answer.headers.get("x-oauth-scopes") or "").split(",") if s}
    missing = sorted(manifest_scopes() - granted)
    checks.append(
        Check(not missing, "token scopes match manifest.yml")
        if not missing
        else Check(False, f"token lacks scopes {', '.join(missing)}: reinstall the app")
    )
    handles = sorted({p for e in envs for p in (*e.approvers, *e.requesters) if p.startswith("@")})
    if handles:
        checks.append(_user_groups(client, handles))
    return checks


def _user_groups(client: WebClient, handles: list[str]) -> Check:
    try:
        groups = {g["handle"] for g in client.usergroups_list().get("usergroups", [])}
    except SlackApiError as error:
        reason = error.response.get("error")
        return Check(False, f"user groups cannot be read ({reason}): a paid Slack plan is needed")
    unknown = [h for h in handles if h.removeprefix("@") not in groups]
    if unknown:
        return Check(False, f"user groups not found: {', '.join(unknown)}")
    return Check(True, f"user groups resolvable: {', '.join(handles)}")


# --- AWS -----------------------------------------------------------------------------------


def aws_checks(needing_aws: list[Environment]) -> list[Check]:
    """Without credentials or a region no AWS call can be made: the checks that need one are
    not run (each would fail with the same cause) and this section's line names them."""
    session = boto3.session.Session(region_name=aws.region())
    credentials = session.get_credentials()
    unchecked = f": not checked: {', '.join(t for e in needing_aws for t in _needs_aws(e))}"
    return [
        Check(True, f"credentials found ({credentials.method})")
        if credentials
        else Check(False, "no AWS credentials" + unchecked),
        Check(True, f"region {session.region_name}")
        if session.region_name
        else Check(False, "no region: set AWS_DEFAULT_REGION (or AWS_REGION)" + unchecked),
    ]


def _needs_aws(env: Environment) -> list[str]:
    things = [f"RDS instance {env.rds_instance_id}"] if env.rds_instance_id else []
    if env.database_secret_id:
        things += [f"secret {env.database_secret_id}", f"the {env.name} database behind it"]
    return things


# --- one environment -----------------------------------------------------------------------


def environment_checks(env: Environment, aws_ready: bool = True) -> list[Check]:
    """``aws_ready``: AWS credentials and region resolved (else the AWS section said what is
    not checked). The secret comes first: the database behind it cannot be checked without it."""
    checks: list[Check] = []
    if env.database_secret_id and aws_ready:
        checks.append(
            _guarded(
                f"secret {env.database_secret_id} readable",
                lambda: _secret_summary(env.database_secret_id),
            )
        )
    if not env.database_secret_id or (aws_ready and checks[0].ok):
        checks += database_checks(env)
    if env.rds_instance_id and aws_ready:
        checks += rds_checks(env.rds_instance_id)
    return checks


def _secret_summary(secret_id: str) -> str:
    version = secrets_manager.current_version(secret_id)
    version.url  # noqa: B018 - refuses a secret without a url
    return f"version {version.version_id}, has a url"


def rds_checks(instance_id: str) -> list[Check]:
    since = datetime.now(UTC)
    return [
        _guarded(f"RDS instance {instance_id}", lambda: _instance_summary(instance_id)),
        _guarded(
            "its snapshots listable",
            lambda: plural(len(rds.list_snapshots(instance_id)), "snapshot"),
        ),
        _guarded(
            "its events readable",
            lambda: plural(len(rds.restore_progress(instance_id, since).events), "recent event"),
        ),
    ]


def _instance_summary(instance_id: str) -> str:
    instance = rds.describe_instance(instance_id)
    window = rds.RecoveryWindow.of(instance)
    if not window.retention_days:
        raise UserError(
            f"{instance.status}, but automated backups are off: point-in-time recovery is"
            " impossible (restore from a snapshot only)"
        )
    return f"{instance.status}, backups kept {plural(window.retention_days, 'day')}"


# --- the database ---------------------------------------------------------------------


_ROLE = """SELECT session_user, current_user, r.rolsuper,
    pg_has_role(current_user, t.tableowner, 'USAGE') AS acts_as_owner, t.tableowner
FROM pg_roles r LEFT JOIN pg_tables t ON t.tablename = '_prisma_migrations'
    AND t.schemaname = current_schema()
WHERE r.rolname = session_user"""


def database_checks(env: Environment) -> list[Check]:
    try:
        conn = database.connect(env, connect_timeout=5)
    except RollbackBotError as error:
        return [Check(False, f"database ({env.database_source}): {error}")]
    with conn:
        checks = [Check(True, f"database reachable ({env.database_source})")]
        session, current, superuser, owner_ok, owner = conn.execute(_ROLE).fetchone()
        if superuser:
            checks.append(
                Check(False, f"connects as superuser {session}: use docs/database-privileges.sql")
            )
        elif owner is None:
            # Nothing to compare the migrations directory with (Prisma has never deployed here).
            return [*checks, Check(False, "no _prisma_migrations table in this schema")]
        else:
            checks.append(
                Check(
                    bool(owner_ok),
                    f"role {session} acts as {current}; _prisma_migrations owned by {owner}"
                    + ("" if owner_ok else ": DDL will fail, see docs/database-privileges.sql"),
                )
            )
        checks += history_checks(conn, env)
    return checks


def history_checks(conn: psycopg.Connection, env: Environment) -> list[Check]:
    if env.migrations_dir is None:
        return [Check(False, "migrations_dir is not set: options 1 and 2 need it")]
    if not Path(env.migrations_dir).exists():
        return [Check(False, f"migrations_dir {env.migrations_dir} does not exist")]
    if not Path(env.migrations_dir).is_dir():
        return [Check(False, f"migrations_dir {env.migrations_dir} is not a directory")]
    try:
        status = migration_status(conn, env.migrations_dir)
    except (RollbackBotError, psycopg.Error) as error:
        return [Check(False, f"_prisma_migrations or {env.migrations_dir} unreadable: {error}")]
    checks = [Check(True, f"_prisma_migrations readable ({len(status.records)} rows)")]
    problems = [
        (status.missing, "in the database but not in the directory"),
        (status.edited, "edited after they were applied"),
        (status.unreadable, "without a readable migration.sql"),
    ]
    for names, what in problems:
        if names:
            checks.append(
                Check(False, f"{plural(len(names), 'migration')} {what}: {', '.join(names)}")
            )
    if not any(names for names, _ in problems):
        checks.append(
            Check(
                True,
                f"migrations_dir matches the database ({len(status.directory.names)} migrations,"
                f" {len(status.pending)} pending, {len(status.failed)} failed)",
            )
        )
    return checks
