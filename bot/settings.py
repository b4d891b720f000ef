"""Typed settings: Slack credentials from the environment, environments from a TOML file.

The config file's key names are public interface: ``default_environment``,
``state_db`` and one ``[environments.NAME]`` table per environment. Unknown keys, missing
required keys and wrong types raise ``ConfigError`` naming the file, the table and the key.
"""

from __future__ import annotations

import difflib
import os
import re
import tomllib
from dataclasses import dataclass, field
from datetime import time
from pathlib import Path
from typing import Any

from bot.clock import duration_seconds
from bot.errors import ConfigError
from bot.prevention.windows import DeployWindow, parse_daily, parse_window
from bot.redaction import Secret, register

CONFIG_ENV = "ROLLBACK_BOT_CONFIG"
_ENV_NAME = re.compile(r"^[a-z][a-z0-9_-]{0,39}$")
_USER_ID = re.compile(r"^[UW][A-Z0-9_]{2,}$")
_GROUP_HANDLE = re.compile(r"^@[a-z0-9][a-z0-9._-]{0,79}$")
_CHANNEL = re.compile(r"^(#[a-z0-9][a-z0-9_-]{0,79}|[CG][A-Z0-9]{2,})$")
# The runbook's "Database Backup Strategy": RDS automated backups, retention in days.
RUNBOOK_AUTOMATED_RETENTION = {"production": 30, "staging": 7}


@dataclass(frozen=True)
class VerificationQuery:
    """A named SQL check run against a database (for example the runbook's "Check recent
    records" after a restore): ``expect`` compares the first column of the first row,
    like "> 0" or "= 0"."""

    name: str
    sql: str
    expect: str | None = None


@dataclass(frozen=True)
class Environment:
    name: str
    protected: bool
    database_url: Secret | None = None
    database_url_env: str | None = None
    database_secret_id: str | None = None
    migrations_dir: Path | None = None
    approvers: tuple[str, ...] = ()
    requesters: tuple[str, ...] = ()
    # Who may tick an operation's checklists besides its requester (the before-checklist is
    # the requester's attestation; an incident commander may be named here).
    checklist_tickers: tuple[str, ...] = ()
    notify_channel: str = "#engineering"
    incident_channel: str | None = None
    rds_instance_id: str | None = None
    verification_queries: tuple[VerificationQuery, ...] = ()
    # The runbook's "Database Backup Strategy" and "Deploy during low-traffic periods".
    snapshot_retention_days: int = 90  # manual pre-migration snapshots
    automated_backup_retention_days: int | None = None  # None: the runbook's table by name
    deploy_windows: tuple[DeployWindow, ...] = ()
    pre_migration_snapshot: bool | None = None  # None: the runbook's table (production)
    deploy_guard: bool | None = None  # None: where a pre-migration snapshot is wanted
    # Incident channels the bot creates: private (default: protected environments, whose
    # plans and dry runs should not be public), and one reused per environment.
    private_incident_channel: bool = False
    reuse_incident_channel: bool = False

    @property
    def expected_automated_retention(self) -> int | None:
        """RDS automated backup retention the runbook's table asks for: production 30 days,
        staging 7, others (development) none; ``automated_backup_retention_days`` overrides."""
        if self.automated_backup_retention_days is not None:
            return self.automated_backup_retention_days
        return RUNBOOK_AUTOMATED_RETENTION.get(self.name)

    @property
    def wants_pre_migration_snapshot(self) -> bool:
        """The runbook's table: "Production | Manual Snapshot | 90 days | Before migrations";
        ``pre_migration_snapshot`` overrides."""
        if self.pre_migration_snapshot is not None:
            return self.pre_migration_snapshot
        return self.name == "production"

    @property
    def guards_deploys(self) -> bool:
        """`/rollback deploy` here needs a fresh snapshot, a reviewed check card per pending
        migration and, with deploy_windows, a time inside one (or an override)."""
        if self.deploy_guard is not None:
            return self.deploy_guard
        return self.protected and self.wants_pre_migration_snapshot

    @property
    def database_source(self) -> str:
        """Where the URL comes from, safe to show (never the URL itself)."""
        if self.database_url is not None:
            return "database_url (config file)"
        if self.database_url_env:
            return f"environment variable {self.database_url_env}"
        return f"AWS Secrets Manager secret {self.database_secret_id}"


@dataclass(frozen=True)
class BreakGlass:
    """[break_glass]: who a terminal caller is, from something they cannot simply type.
    ``users``: OS account name -> Slack user id; ``allowed_signers``: ssh-keygen's file of
    keys allowed to sign approvals (principals are Slack user ids or names in ``users``);
    ``groups``: user group handle -> members, when Slack cannot be asked."""

    users: dict[str, str] = field(default_factory=dict)
    allowed_signers: Path | None = None
    groups: dict[str, frozenset[str]] = field(default_factory=dict)


@dataclass(frozen=True)
class Config:
    path: Path
    default_environment: str
    environments: dict[str, Environment]
    # A SQLite file, or a PostgreSQL URL (a Secret: it may hold a password) shared by replicas.
    state_db: Path | Secret
    approval_expiry_seconds: float = 30 * 60
    reminder_delay_seconds: float = 30 * 60
    usergroup_cache_seconds: float = 60
    progress_edit_interval_seconds: float = 1.0
    # How long a replica's lease on an operation lasts without a heartbeat: another replica
    # resumes an operation at most this long (plus a third of it) after its walker died.
    lease_seconds: float = 15
    drill_slow_step_seconds: float = 30
    drill_progress_events: int = 30
    # [sql]: timeouts the bot sets (SET lock_timeout / statement_timeout) around any SQL it
    # runs for a runbook, and how long a requester has to answer Commit / Roll back.
    sql_lock_timeout: str = "5s"
    sql_statement_timeout: str = "60s"
    # Option 4's dry run runs before anyone approved: smaller limits by default.
    sql_dry_run_lock_timeout: str = "2s"
    sql_dry_run_statement_timeout: str = "15s"
    # ... and a budget for the whole dry run: its locks are held until it ends.
    sql_dry_run_total_timeout: str = "30s"
    sql_decision_timeout_seconds: float = 300
    # [pitr]: restore point = the harmful migration's started_at minus this margin; a
    # manual snapshot newer than snapshot_max_age is reused; RDS polled this often.
    pitr_restore_margin_minutes: float = 5
    pitr_snapshot_max_age_minutes: float = 60
    pitr_poll_seconds: float = 30
    # after a traffic switch, deleting the old instance is proposed this many days later
    pitr_cleanup_delay_days: float = 7
    # the cleanup refuses an old instance with connections within this many minutes
    pitr_connections_window_minutes: float = 15
    # "module:function" resolving host names for the cleanup's checks (bot/aws/addresses.py);
    # None: the system's resolver (DNS)
    pitr_resolver: str | None = None
    # [backups] retention_review: the daily UTC time of the snapshot retention review; None: off
    backups_retention_review: time | None = None
    # An operation waiting on a person (checklist, approval) with nothing done for this
    # long is stopped and its environment freed; approvers are reminded of a pending
    # approval this often.
    idle_timeout_seconds: float = 60 * 60
    approval_reminder_seconds: float = 10 * 60
    # [incident_channels]: drills in a thread of the notify channel, not a channel of their
    # own; channels the bot created are archived this long after their operation ends.
    drills_in_thread: bool = True
    archive_after_seconds: float = 60 * 60
    break_glass: BreakGlass = field(default_factory=BreakGlass)

    def environment(self, name: str | None) -> Environment:
        from bot.errors import UserError

        name = name or self.default_environment
        env = self.environments.get(name)
        if env is None:
            known = ", ".join(sorted(self.environments))
            guess = _closest_environment(name, self.environments)
            did_you_mean = f"Did you mean `--env {guess}`? " if guess else ""
            raise UserError(
                f"Unknown environment `{name}`.",
                f"{did_you_mean}Known environments: {known}.",
                code="env",
            )
        return env


def _closest_environment(name: str, known) -> str | None:
    """`prod` means `production`: a unique prefix first, else the closest spelling."""
    prefixed = [k for k in known if k.lower().startswith(name.lower())]
    if len(prefixed) == 1:
        return prefixed[0]
    match = difflib.get_close_matches(name.lower(), list(known), n=1, cutoff=0.5)
    return match[0] if match else None


@dataclass(frozen=True)
class SlackSettings:
    bot_token: Secret
    signing_secret: Secret
    app_token: Secret | None = None
    api_url: str | None = None

    @property
    def socket_mode(self) -> bool:
        return self.app_token is not None


# --- Slack settings from the environment -------------------------------------------


def slack_settings_from_env(environ: os._Environ | dict | None = None) -> SlackSettings:
    env = os.environ if environ is None else environ
    bot_token = _required_env(
        env, "SLACK_BOT_TOKEN", "xoxb-", "the bot token (OAuth & Permissions page of the app)"
    )
    app_token_raw = env.get("SLACK_APP_TOKEN") or None
    if app_token_raw is not None and not app_token_raw.startswith("xapp-"):
        raise ConfigError(
            "SLACK_APP_TOKEN must be an app-level token starting with xapp- (Basic Information >"
            " App-Level Tokens, scope connections:write); unset it to use HTTP mode."
        )
    signing_secret = env.get("SLACK_SIGNING_SECRET") or ""
    if not signing_secret and app_token_raw is None:
        raise ConfigError(
            "SLACK_SIGNING_SECRET is not set: copy the Signing Secret from the Slack app's"
            " Basic Information page (HTTP mode verifies every request with it)."
        )
    api_url = env.get("SLACK_API_URL") or None
    if api_url is not None:
        if not re.match(r"^https?://[^\s/]+(/[^\s]*)?$", api_url):
            raise ConfigError(
                "SLACK_API_URL must be an http(s) URL such as https://slack.com/api/,"
                f" got {api_url!r}."
            )
        if not api_url.endswith("/"):
            api_url += "/"
    register(bot_token, signing_secret, app_token_raw)
    return SlackSettings(
        bot_token=Secret(bot_token),
        signing_secret=Secret(signing_secret),
        app_token=Secret(app_token_raw) if app_token_raw else None,
        api_url=api_url,
    )


def _required_env(env, name: str, prefix: str, what: str) -> str:
    value = env.get(name) or ""
    if not value:
        raise ConfigError(f"{name} is not set: export {name} with {what}.")
    if not value.startswith(prefix):
        raise ConfigError(f"{name} must start with {prefix} ({what}); the value given does not.")
    return value


# --- The TOML config file -------------------------------------------------------------

_TOP_KEYS: dict[str, tuple[type | tuple[type, ...], bool]] = {
    "default_environment": (str, True),
    "state_db": (str, False),
    "state_db_env": (str, False),
    "environments": (dict, True),
    "approval_expiry_minutes": ((int, float), False),
    "reminder_delay_minutes": ((int, float), False),
    "usergroup_cache_seconds": ((int, float), False),
    "progress_edit_interval_seconds": ((int, float), False),
    "lease_seconds": ((int, float), False),
    "idle_timeout_minutes": ((int, float), False),
    "approval_reminder_minutes": ((int, float), False),
    "drill": (dict, False),
    "sql": (dict, False),
    "pitr": (dict, False),
    "backups": (dict, False),
    "incident_channels": (dict, False),
    "break_glass": (dict, False),
}
_BACKUPS_KEYS: dict[str, tuple[type | tuple[type, ...], bool]] = {
    "retention_review": (str, False),
}
_INCIDENT_CHANNEL_KEYS: dict[str, tuple[type | tuple[type, ...], bool]] = {
    "drills_in_thread": (bool, False),
    "archive_after_minutes": ((int, float), False),
}
_BREAK_GLASS_KEYS: dict[str, tuple[type | tuple[type, ...], bool]] = {
    "users": (dict, False),
    "allowed_signers": (str, False),
    "groups": (dict, False),
}
_SQL_KEYS: dict[str, tuple[type | tuple[type, ...], bool]] = {
    "lock_timeout": (str, False),
    "statement_timeout": (str, False),
    "dry_run_lock_timeout": (str, False),
    "dry_run_statement_timeout": (str, False),
    "dry_run_total_timeout": (str, False),
    "decision_timeout_seconds": ((int, float), False),
}
_PITR_KEYS: dict[str, tuple[type | tuple[type, ...], bool]] = {
    "restore_margin_minutes": ((int, float), False),
    "snapshot_max_age_minutes": ((int, float), False),
    "poll_seconds": ((int, float), False),
    "cleanup_delay_days": ((int, float), False),
    "connections_window_minutes": ((int, float), False),
    "resolver": (str, False),
}
_QUERY_KEYS: dict[str, tuple[type | tuple[type, ...], bool]] = {
    "name": (str, True),
    "sql": (str, True),
    "expect": (str, False),
}
_EXPECT = re.compile(r"^(=|!=|<|<=|>|>=)\s*-?\d+(\.\d+)?$")
_DRILL_KEYS: dict[str, tuple[type | tuple[type, ...], bool]] = {
    "slow_step_seconds": ((int, float), False),
    "progress_events": (int, False),
}
_ENV_KEYS: dict[str, tuple[type | tuple[type, ...], bool]] = {
    "database_url": (str, False),
    "database_url_env": (str, False),
    "database_secret_id": (str, False),
    "migrations_dir": (str, False),
    "protected": (bool, True),
    "approvers": (list, False),
    "requesters": (list, False),
    "checklist_tickers": (list, False),
    "notify_channel": (str, False),
    "incident_channel": (str, False),
    "rds_instance_id": (str, False),
    "verification_queries": (list, False),
    "snapshot_retention_days": (int, False),
    "automated_backup_retention_days": (int, False),
    "deploy_windows": (list, False),
    "pre_migration_snapshot": (bool, False),
    "deploy_guard": (bool, False),
    "private_incident_channel": (bool, False),
    "reuse_incident_channel": (bool, False),
}


def config_path(explicit: str | None = None, environ=None) -> Path:
    env = os.environ if environ is None else environ
    raw = explicit or env.get(CONFIG_ENV)
    if not raw:
        raise ConfigError(
            f"No config file: set {CONFIG_ENV} (or pass --config) to the TOML file that lists your"
            " environments; rollback.example.toml is a starting point."
        )
    return Path(raw)


def _state_db(path: Path, raw: dict, environ: dict | None = None) -> Path | Secret:
    """``state_db`` (a SQLite file, or a ``postgresql://`` URL) or ``state_db_env`` (the
    name of an environment variable holding either: keeps a password out of the file)."""
    if "state_db" in raw and "state_db_env" in raw:
        raise ConfigError(f"{path}: top level: set state_db or state_db_env, not both.")
    value = raw.get("state_db", "./rollback-bot.db")
    if "state_db_env" in raw:
        name = raw["state_db_env"]
        value = (os.environ if environ is None else environ).get(name, "")
        if not value:
            raise ConfigError(
                f"{path}: top level: state_db_env = {name!r}, but {name} is not set: export"
                f" {name} with the state database (postgresql://... or a SQLite file path)."
            )
    if value.startswith(("postgresql://", "postgres://")):
        return Secret(value)
    if "://" in value:
        raise ConfigError(
            f"{path}: top level: the state database must be a SQLite file path or a"
            " postgresql:// URL; the value given is neither."
        )
    state_db = Path(value)
    return state_db if state_db.is_absolute() else (Path.cwd() / state_db).resolve()


def load_config(path: Path) -> Config:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(
            f"{path}: config file not found. Check {CONFIG_ENV} or --config."
        ) from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read the config file ({exc.strerror}).") from None
    return parse_config(path, text)


def parse_config(path: Path, text: str) -> Config:
    """The config in ``text``, read from ``path`` (named in every error)."""
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}.") from None
    return _parse_config(path, raw)


def _parse_config(path: Path, raw: dict[str, Any]) -> Config:
    _check_table(path, "top level", raw, _TOP_KEYS)
    envs_raw = raw["environments"]
    if not envs_raw:
        raise ConfigError(f"{path}: [environments] has no environment; add [environments.staging].")
    environments = {name: _parse_environment(path, name, t) for name, t in envs_raw.items()}
    default = raw["default_environment"]
    if default not in environments:
        raise ConfigError(
            f"{path}: top level: default_environment = {default!r} is not one of the"
            f" [environments.*] tables ({', '.join(sorted(environments))})."
        )
    drill = raw.get("drill", {})
    _check_table(path, "[drill]", drill, _DRILL_KEYS)
    sql = raw.get("sql", {})
    _check_sql(path, sql)
    pitr = raw.get("pitr", {})
    _check_table(path, "[pitr]", pitr, _PITR_KEYS)
    minutes = 60.0
    return Config(
        path=path,
        default_environment=default,
        environments=environments,
        state_db=_state_db(path, raw),
        approval_expiry_seconds=_positive(path, "top level", raw, "approval_expiry_minutes", 30)
        * minutes,
        reminder_delay_seconds=_positive(path, "top level", raw, "reminder_delay_minutes", 30)
        * minutes,
        usergroup_cache_seconds=_positive(path, "top level", raw, "usergroup_cache_seconds", 60),
        progress_edit_interval_seconds=_positive(
            path, "top level", raw, "progress_edit_interval_seconds", 1.0
        ),
        lease_seconds=_positive(path, "top level", raw, "lease_seconds", 15),
        drill_slow_step_seconds=_positive(path, "[drill]", drill, "slow_step_seconds", 30),
        drill_progress_events=int(_positive(path, "[drill]", drill, "progress_events", 30)),
        sql_lock_timeout=sql.get("lock_timeout", "5s"),
        sql_statement_timeout=sql.get("statement_timeout", "60s"),
        sql_dry_run_lock_timeout=sql.get("dry_run_lock_timeout", "2s"),
        sql_dry_run_statement_timeout=sql.get("dry_run_statement_timeout", "15s"),
        sql_dry_run_total_timeout=sql.get("dry_run_total_timeout", "30s"),
        sql_decision_timeout_seconds=_positive(path, "[sql]", sql, "decision_timeout_seconds", 300),
        pitr_restore_margin_minutes=_positive(path, "[pitr]", pitr, "restore_margin_minutes", 5),
        pitr_snapshot_max_age_minutes=_positive(
            path, "[pitr]", pitr, "snapshot_max_age_minutes", 60
        ),
        pitr_poll_seconds=_positive(path, "[pitr]", pitr, "poll_seconds", 30),
        pitr_cleanup_delay_days=_positive(path, "[pitr]", pitr, "cleanup_delay_days", 7),
        pitr_connections_window_minutes=_positive(
            path, "[pitr]", pitr, "connections_window_minutes", 15
        ),
        pitr_resolver=_resolver(path, pitr.get("resolver")),
        backups_retention_review=_retention_review(path, raw.get("backups", {})),
        **_people(path, raw),
    )


def _check_sql(path: Path, sql: dict) -> None:
    _check_table(path, "[sql]", sql, _SQL_KEYS)
    durations = ("lock_timeout", "statement_timeout")
    for key in (*durations, *(f"dry_run_{d}" for d in (*durations, "total_timeout"))):
        if key in sql and not _is_duration(sql[key]):
            raise ConfigError(
                f'{path}: [sql]: {key} must be a PostgreSQL duration such as "5s",'
                f' "500ms" or "2min", got {sql[key]!r}.'
            )
    if duration_seconds(sql.get("dry_run_total_timeout", "30s")) == 0:
        raise ConfigError(
            f"{path}: [sql]: dry_run_total_timeout must be more than 0: every dry run would"
            " stop at once."
        )


def _is_duration(value: str) -> bool:
    try:
        duration_seconds(value)
    except ValueError:
        return False
    return True


def _people(path: Path, raw: dict) -> dict[str, Any]:
    """The keys about reaching people and freeing environments: idle timeout, reminders,
    incident channels, the break-glass identity."""
    channels = raw.get("incident_channels", {})
    _check_table(path, "[incident_channels]", channels, _INCIDENT_CHANNEL_KEYS)
    minutes = 60.0
    return {
        "idle_timeout_seconds": _positive(path, "top level", raw, "idle_timeout_minutes", 60)
        * minutes,
        "approval_reminder_seconds": _positive(
            path, "top level", raw, "approval_reminder_minutes", 10
        )
        * minutes,
        "drills_in_thread": channels.get("drills_in_thread", True),
        "archive_after_seconds": _positive(
            path, "[incident_channels]", channels, "archive_after_minutes", 60
        )
        * minutes,
        "break_glass": _break_glass(path, raw.get("break_glass", {})),
    }


def _break_glass(path: Path, raw: dict) -> BreakGlass:
    table = "[break_glass]"
    _check_table(path, table, raw, _BREAK_GLASS_KEYS)
    users = raw.get("users", {})
    for account, user in users.items():
        if not isinstance(user, str) or not _USER_ID.match(user):
            raise ConfigError(
                f"{path}: {table}: users maps OS account names to Slack user ids"
                f' ({account} = "U012ABCDEF"), got {account} = {user!r}.'
            )
    groups = {}
    for handle, members in raw.get("groups", {}).items():
        if not isinstance(members, list) or not all(
            isinstance(m, str) and _USER_ID.match(m) for m in members
        ):
            raise ConfigError(
                f"{path}: {table}: groups maps a user group handle to Slack user ids"
                f' (db-approvers = ["U012BOB"]), got {handle} = {members!r}.'
            )
        groups[handle.lstrip("@")] = frozenset(members)
    signers = raw.get("allowed_signers")
    return BreakGlass(
        users=dict(users),
        allowed_signers=_relative_to(path, signers) if signers else None,
        groups=groups,
    )


def _retention_review(path: Path, backups: dict) -> time | None:
    _check_table(path, "[backups]", backups, _BACKUPS_KEYS)
    try:
        return parse_daily(backups.get("retention_review", "off"))
    except ValueError as error:
        raise ConfigError(f"{path}: [backups]: retention_review: {error}.") from None


def _resolver(path: Path, spec: str | None) -> str | None:
    if spec is not None and not re.fullmatch(r"[A-Za-z_][\w.]*:[A-Za-z_]\w*", spec):
        raise ConfigError(f'{path}: [pitr]: resolver must be "module:function", got {spec!r}.')
    return spec


def _positive(path: Path, table: str, raw: dict, key: str, default: float) -> float:
    value = raw.get(key, default)
    if value <= 0:
        raise ConfigError(f"{path}: {table}: {key} must be greater than 0, got {value!r}.")
    return float(value)


def _parse_environment(path: Path, name: str, raw: Any) -> Environment:
    table = f"[environments.{name}]"
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: {table} must be a table.")
    if not _ENV_NAME.match(name):
        raise ConfigError(
            f"{path}: {table}: environment names are lowercase letters, digits, - and _ (max 40)."
        )
    _check_table(path, table, raw, _ENV_KEYS)
    sources = [k for k in ("database_url", "database_url_env", "database_secret_id") if k in raw]
    if len(sources) != 1:
        found = ", ".join(sources) or "none"
        raise ConfigError(
            f"{path}: {table}: set exactly one of database_url, database_url_env or"
            f" database_secret_id (found: {found})."
        )
    approvers = _principals(path, table, raw, "approvers")
    if raw["protected"] and not approvers:
        raise ConfigError(
            f"{path}: {table}: protected = true needs approvers (Slack user ids such as"
            ' "U012ABCDEF" or user group handles such as "@db-approvers").'
        )
    notify = raw.get("notify_channel", "#engineering")
    for key in ("notify_channel", "incident_channel"):
        if key in raw and not _CHANNEL.match(raw[key]):
            raise ConfigError(
                f'{path}: {table}: {key} must be a channel name such as "#engineering" or a'
                f' channel id such as "C012ABCDEF", got {raw[key]!r}.'
            )
    url = raw.get("database_url")
    register(url)  # masked in every log line, Slack payload and audit record from now on
    migrations = raw.get("migrations_dir")
    return Environment(
        name=name,
        protected=raw["protected"],
        database_url=Secret(url) if url is not None else None,
        database_url_env=raw.get("database_url_env"),
        database_secret_id=raw.get("database_secret_id"),
        migrations_dir=_relative_to(path, migrations) if migrations else None,
        approvers=approvers,
        requesters=_principals(path, table, raw, "requesters"),
        checklist_tickers=_principals(path, table, raw, "checklist_tickers"),
        notify_channel=notify,
        incident_channel=raw.get("incident_channel"),
        rds_instance_id=raw.get("rds_instance_id"),
        verification_queries=_verification_queries(
            path, table, raw.get("verification_queries", [])
        ),
        **_prevention_keys(path, table, raw),
        private_incident_channel=raw.get("private_incident_channel", raw["protected"]),
        reuse_incident_channel=raw.get("reuse_incident_channel", False),
    )


def _prevention_keys(path: Path, table: str, raw: dict) -> dict:
    keys: dict[str, Any] = {}
    for key in ("snapshot_retention_days", "automated_backup_retention_days"):
        if key in raw:
            if raw[key] < 0 or (key == "snapshot_retention_days" and raw[key] == 0):
                raise ConfigError(f"{path}: {table}: {key} must be a positive number of days.")
            keys[key] = raw[key]
    for key in ("pre_migration_snapshot", "deploy_guard"):
        if key in raw:
            keys[key] = raw[key]
    windows = []
    for text in raw.get("deploy_windows", []):
        try:
            windows.append(parse_window(text if isinstance(text, str) else repr(text)))
        except ValueError as error:
            raise ConfigError(f"{path}: {table}: deploy_windows: {error}.") from None
    if windows:
        keys["deploy_windows"] = tuple(windows)
    return keys


def _verification_queries(path: Path, table: str, raw: list) -> tuple[VerificationQuery, ...]:
    queries = []
    for n, item in enumerate(raw):
        where = f"{table} verification_queries[{n}]"
        if not isinstance(item, dict):
            raise ConfigError(f"{path}: {where} must be a table with name, sql and expect.")
        _check_table(path, where, item, _QUERY_KEYS)
        if "expect" in item and not _EXPECT.match(item["expect"].strip()):
            raise ConfigError(
                f'{path}: {where}: expect must be a comparison such as "> 0" or "= 0",'
                f" got {item['expect']!r}."
            )
        queries.append(VerificationQuery(item["name"], item["sql"], item.get("expect")))
    return tuple(queries)


def _relative_to(config: Path, value: str) -> Path:
    p = Path(value)
    return p if p.is_absolute() else (config.parent / p).resolve()


def _principals(path: Path, table: str, raw: dict, key: str) -> tuple[str, ...]:
    values = raw.get(key, [])
    for v in values:
        if not isinstance(v, str) or not (_USER_ID.match(v) or _GROUP_HANDLE.match(v)):
            raise ConfigError(
                f'{path}: {table}: {key} entries must be Slack user ids ("U012ABCDEF") or user'
                f' group handles ("@db-approvers"), got {v!r}.'
            )
    return tuple(values)


def _check_table(path: Path, table: str, raw: dict, schema: dict) -> None:
    for key, value in raw.items():
        if key not in schema:
            known = ", ".join(schema)
            raise ConfigError(f"{path}: {table}: unknown key {key!r}. Known keys: {known}.")
        expected, _ = schema[key]
        # bool is an int in Python; a number key must not accept true/false.
        if isinstance(value, bool) and expected is not bool:
            ok = False
        else:
            ok = isinstance(value, expected)
        if not ok:
            raise ConfigError(
                f"{path}: {table}: {key} must be {_type_name(expected)},"
                f" got {type(value).__name__} {value!r}."
            )
    for key, (_, required) in schema.items():
        if required and key not in raw:
            raise ConfigError(f"{path}: {table}: missing required key {key!r}.")


def _type_name(expected) -> str:
    names = {str: "a string", bool: "a boolean (true or false)", list: "a list", dict: "a table"}
    if isinstance(expected, tuple):
        return "a number"
    return names.get(expected, expected.__name__)


@dataclass
class Settings:
    """Everything the app needs: Slack credentials and the parsed config file."""

    slack: SlackSettings
    config: Config
    extra: dict[str, Any] = field(default_factory=dict)
